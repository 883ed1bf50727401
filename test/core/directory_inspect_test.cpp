// Reading and purging the directory for tools (core/directory_inspect.hpp) on the Redis store:
// what `liner topics`, `inspect` and `purge` see is what peers wrote, under liner_broker
// 1.3.1's key names, and a forgotten peer leaves no key behind.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/directory_inspect.hpp"
#include "core/frame.hpp"
#include "test_support.hpp"

using namespace liner;
using testing_support::redis;

namespace {

class DirectoryInspectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis().flush();
    ASSERT_TRUE(open_store(redis().url(), &store));
    ASSERT_TRUE(store->ping());
  }

  // A channel as a sender opens it: its key, its sender topic, its ack counter.
  int32_t open_channel(const std::string& u, const std::string& s, const std::string& l) {
    int32_t ck = 0;
    bool found = false;
    EXPECT_TRUE(store->connection_key(u, s, l, true, &ck, &found));
    EXPECT_TRUE(store->set_sender_topic(ck, s));
    AckCounter ack;
    EXPECT_TRUE(store->read_ack(ck, true, &ack));
    return ck;
  }

  // Queues `n` frames to the topic with key `tk` on channel `ck`.
  void queue(int32_t ck, int32_t tk, int n) {
    std::vector<std::string> frames(n);
    std::vector<const std::string*> views;
    for (int i = 0; i < n; ++i) {
      FrameHeader h;
      h.number_mess = uint64_t(i + 1);
      h.connection_key = ck;
      h.topic_key = tk;
      h.flags = kFlagAtLeastOnce;
      encode_frame(frames[i], h, "x", 1);
      views.push_back(&frames[i]);
    }
    ASSERT_TRUE(store->push_messages(ck, views, {}));
  }

  std::vector<std::string> all_keys() {
    std::vector<std::string> keys;
    std::string text = redis().cli({"KEYS", "*"});
    for (size_t at = 0; at < text.size();) {
      size_t end = text.find('\n', at);
      if (end == std::string::npos) end = text.size();
      if (end > at) keys.push_back(text.substr(at, end - at));
      at = end + 1;
    }
    std::sort(keys.begin(), keys.end());
    return keys;
  }

  std::unique_ptr<Store> store;
};

}  // namespace

TEST_F(DirectoryInspectTest, TopicsAreEveryDirectoryAndKeySortedWithTheirAddresses) {
  ASSERT_TRUE(store->register_address("jobs", "127.0.0.1:2002", "worker-2", DirectoryEvent::join));
  ASSERT_TRUE(store->register_address("jobs", "127.0.0.1:2001", "worker-1", DirectoryEvent::join));
  int32_t jobs = 0, idle = 0;
  ASSERT_TRUE(store->topic_key("jobs", &jobs));
  ASSERT_TRUE(store->topic_key("idle", &idle));  // used once, nobody serves it now
  ASSERT_TRUE(store->register_address("news", "127.0.0.1:2001", "worker-1", DirectoryEvent::subscribe));

  std::vector<TopicView> topics;
  ASSERT_TRUE(inspect_topics(*store, &topics));
  ASSERT_EQ(topics.size(), 3u);
  EXPECT_EQ(topics[0].topic, "idle");
  EXPECT_TRUE(topics[0].has_key);
  EXPECT_EQ(topics[0].key, idle);
  EXPECT_TRUE(topics[0].addresses.empty());
  EXPECT_EQ(topics[1].topic, "jobs");
  EXPECT_EQ(topics[1].key, jobs);
  EXPECT_EQ(topics[1].addresses, (std::vector<TopicAddress>{{"127.0.0.1:2001", "worker-1"}, {"127.0.0.1:2002", "worker-2"}}));
  EXPECT_EQ(topics[2].topic, "news");
  EXPECT_FALSE(topics[2].has_key);  // reading allocates nothing
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_topic:news:key"}), "0");

  ASSERT_TRUE(inspect_topic(*store, "news", &topics));
  ASSERT_EQ(topics.size(), 1u);
  EXPECT_EQ(topics[0].addresses.size(), 1u);
  ASSERT_TRUE(inspect_topic(*store, "nosuch", &topics));
  EXPECT_TRUE(topics.empty());
}

TEST_F(DirectoryInspectTest, ChannelsCarryTheirCountersAndWhereTheirQueueGoes) {
  int32_t tk = 0;
  ASSERT_TRUE(store->topic_key("audit", &tk));
  int32_t a = open_channel("clerk", "clerk", "audit");
  int32_t b = open_channel("boss", "boss", "worker-1");
  ASSERT_TRUE(store->set_last_mess_number(b, 5));
  queue(a, tk, 2);

  std::vector<ChannelView> channels;
  ASSERT_TRUE(inspect_channels(*store, "", &channels));
  ASSERT_EQ(channels.size(), 2u);
  const ChannelView& first = channels[0].name.key == a ? channels[0] : channels[1];
  EXPECT_LT(channels[0].name.key, channels[1].name.key);
  EXPECT_EQ(first.name.sender_unique, "clerk");
  EXPECT_EQ(first.name.listener_unique, "audit");
  EXPECT_TRUE(first.state.has_sender_topic);
  EXPECT_EQ(first.state.sender_topic, "clerk");
  EXPECT_EQ(first.state.queue_length, 2u);
  EXPECT_TRUE(first.has_queued_topic_key);
  EXPECT_EQ(first.queued_topic_key, tk);
  EXPECT_TRUE(first.state.head.empty());

  ASSERT_TRUE(inspect_channels(*store, "boss", &channels));
  ASSERT_EQ(channels.size(), 1u);
  EXPECT_EQ(channels[0].state.ack.number, 5u);
  EXPECT_FALSE(channels[0].has_queued_topic_key);

  std::vector<ChannelState> sampled;
  ASSERT_TRUE(store->read_channels({a, b}, false, &sampled));
  EXPECT_EQ(sampled[0].queue_length, 2u);
  EXPECT_EQ(sampled[1].ack.number, 5u);
}

// A name is part of a SCAN pattern: its glob characters match only themselves.
TEST_F(DirectoryInspectTest, SenderNamesAreGlobEscaped) {
  open_channel("a*", "t", "l");
  open_channel("ab", "t", "l");
  std::vector<ChannelView> channels;
  ASSERT_TRUE(inspect_channels(*store, "a*", &channels));
  ASSERT_EQ(channels.size(), 1u);
  EXPECT_EQ(channels[0].name.sender_unique, "a*");
  std::vector<std::string> topics;
  ASSERT_TRUE(store->source_topics_of_sender("a*", &topics));
  EXPECT_EQ(topics, std::vector<std::string>{"t"});
}

TEST_F(DirectoryInspectTest, SourceTopicsComeFromChannelsAndSenderMaps) {
  open_channel("u", "s1", "l");
  ASSERT_TRUE(store->save_listener_for_sender("u", "s2", "127.0.0.1:1", "t", "l"));
  std::vector<std::string> topics;
  ASSERT_TRUE(store->source_topics_of_sender("u", &topics));
  EXPECT_EQ(topics, (std::vector<std::string>{"s1", "s2"}));
  ASSERT_TRUE(store->source_topics_of_sender("nobody", &topics));
  EXPECT_TRUE(topics.empty());
}

TEST_F(DirectoryInspectTest, QueuesWithoutANameAreReportedOnTheirOwn) {
  int32_t ck = open_channel("u", "s", "l");
  queue(ck, 1, 1);
  redis().cli({"RPUSH", "lnr_connection:999:messages", "frame"});
  std::vector<std::pair<int32_t, uint64_t>> unnamed;
  ASSERT_TRUE(unnamed_queues(*store, {ck}, &unnamed));
  EXPECT_EQ(unnamed, (std::vector<std::pair<int32_t, uint64_t>>{{999, 1}}));
}

TEST_F(DirectoryInspectTest, AForgottenPeerLeavesNoKeyBehind) {
  int32_t tk = 0;
  ASSERT_TRUE(store->topic_key("rx", &tk));
  ASSERT_TRUE(store->register_address("rx", "127.0.0.1:3000", "rx-1", DirectoryEvent::join));
  ASSERT_TRUE(store->topic_key("once", &tk));  // the one-off peer's own topic
  int32_t ck = open_channel("once", "once", "rx-1");
  ASSERT_TRUE(store->save_listener_for_sender("once", "once", "127.0.0.1:3000", "rx", "rx-1"));
  queue(ck, tk, 3);
  uint64_t stored = 0;
  ASSERT_TRUE(stored_message_count(*store, "once", "once", &stored));
  EXPECT_EQ(stored, 3u);

  ASSERT_TRUE(forget_peer(*store, "once", "once"));
  ASSERT_TRUE(stored_message_count(*store, "once", "once", &stored));
  EXPECT_EQ(stored, 0u);
  EXPECT_EQ(all_keys(), (std::vector<std::string>{"lnr_topic:rx:addr", "lnr_topic:rx:key", "lnr_unique_key"}));
  // A topic someone serves keeps its key.
  ASSERT_TRUE(forget_peer(*store, "rx-1", "rx"));
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_topic:rx:key"}), "1");
}

TEST_F(DirectoryInspectTest, RecordNamesAreTheKeyNames) {
  EXPECT_EQ(store->record_name(StoreRecord::topic_addresses, "t"), "lnr_topic:t:addr");
  EXPECT_EQ(store->record_name(StoreRecord::topic_key, "t"), "lnr_topic:t:key");
  EXPECT_EQ(store->record_name(StoreRecord::channel_name, "U", "*", "*"), "lnr_connection:U:*:*:key");
  EXPECT_EQ(store->record_name(StoreRecord::channel_sender, "7"), "lnr_connection:7:sender");
  EXPECT_EQ(store->record_name(StoreRecord::channel_ack, "7"), "lnr_connection:7:mess_number");
  EXPECT_EQ(store->record_name(StoreRecord::channel_queue, "7"), "lnr_connection:7:messages");
  EXPECT_EQ(store->record_name(StoreRecord::sender_listeners, "U", "S"), "lnr_sender:U:S:listener");
  EXPECT_EQ(store->record_name(StoreRecord::sender_listener_names, "U", "S"), "lnr_sender:U:S:listener_name");
}
