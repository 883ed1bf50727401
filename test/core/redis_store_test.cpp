// The Redis store: key names, types and encodings of liner_broker 1.3.1, race-free key
// allocation, the offline queue, and behaviour when Redis is down or restarts.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <thread>

#include "core/store.hpp"
#include "test_support.hpp"

using namespace liner;
using testing_support::redis;

namespace {

std::unique_ptr<Store> open(const std::string& url) {
  std::unique_ptr<Store> s;
  EXPECT_TRUE(open_store(url, &s));
  return s;
}

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis().flush();
    store = open(redis().url());
    ASSERT_TRUE(store->ping());
  }
  std::unique_ptr<Store> store;
};

}  // namespace

TEST_F(RedisStoreTest, DirectoryIsAHashOfAddressToUniqueName) {
  ASSERT_TRUE(store->register_address("t", "127.0.0.1:1000", "u1", DirectoryEvent::join));
  ASSERT_TRUE(store->register_address("t", "127.0.0.1:1001", "u2", DirectoryEvent::subscribe));
  EXPECT_EQ(redis().cli({"TYPE", "lnr_topic:t:addr"}), "hash");
  EXPECT_EQ(redis().cli({"HGET", "lnr_topic:t:addr", "127.0.0.1:1001"}), "u2");
  std::vector<TopicAddress> addrs;
  ASSERT_TRUE(store->addresses_of_topic("t", &addrs));
  ASSERT_EQ(addrs.size(), 2u);
  ASSERT_TRUE(store->unregister_address("t", "127.0.0.1:1000", DirectoryEvent::leave));
  ASSERT_TRUE(store->addresses_of_topic("t", &addrs));
  ASSERT_EQ(addrs.size(), 1u);
  EXPECT_EQ(addrs[0].unique_name, "u2");
  ASSERT_TRUE(store->delete_topic_addresses("t"));
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_topic:t:addr"}), "0");
}

// Leaving a topic by unsubscribing is remembered (senders stop waiting for that peer); leaving
// by stopping is not (its messages keep waiting); registering the address again clears it.
TEST_F(RedisStoreTest, AnUnsubscribeIsMarkedUntilTheAddressRegistersAgain) {
  ASSERT_TRUE(store->register_address("t", "127.0.0.1:1000", "u1", DirectoryEvent::subscribe));
  ASSERT_TRUE(store->register_address("t", "127.0.0.1:1001", "u2", DirectoryEvent::subscribe));
  ASSERT_TRUE(store->unregister_address("t", "127.0.0.1:1000", DirectoryEvent::unsubscribe));
  ASSERT_TRUE(store->unregister_address("t", "127.0.0.1:1001", DirectoryEvent::leave));
  std::vector<std::string> gone;
  ASSERT_TRUE(store->unsubscribed_from_topic("t", &gone));
  EXPECT_EQ(gone, std::vector<std::string>{"127.0.0.1:1000"});
  ASSERT_TRUE(store->register_address("t", "127.0.0.1:1000", "u3", DirectoryEvent::join));
  ASSERT_TRUE(store->unsubscribed_from_topic("t", &gone));
  EXPECT_TRUE(gone.empty());
}

TEST_F(RedisStoreTest, KeysComeFromTheGlobalCounterAsDecimalText) {
  int32_t tk = 0, ck = 0;
  bool found = false;
  ASSERT_TRUE(store->topic_key("topic_a", &tk));
  EXPECT_EQ(tk, 1);
  EXPECT_EQ(redis().cli({"GET", "lnr_topic:topic_a:key"}), "1");
  ASSERT_TRUE(store->connection_key("U", "S", "L", false, &ck, &found));
  EXPECT_FALSE(found);
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_connection:U:S:L:key"}), "0");
  ASSERT_TRUE(store->connection_key("U", "S", "L", true, &ck, &found));
  EXPECT_TRUE(found);
  EXPECT_EQ(ck, 2);
  EXPECT_EQ(redis().cli({"GET", "lnr_connection:U:S:L:key"}), "2");
  EXPECT_EQ(redis().cli({"GET", "lnr_unique_key"}), "2");
  ASSERT_TRUE(store->topic_key("topic_a", &tk));
  EXPECT_EQ(tk, 1);
}

TEST_F(RedisStoreTest, ConcurrentAllocationAgreesOnOneKey) {
  constexpr int kThreads = 8;
  std::vector<int32_t> keys(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      auto s = open(redis().url());
      EXPECT_TRUE(s->topic_key("raced", &keys[i]));
    });
  for (auto& t : threads) t.join();
  for (int32_t k : keys) EXPECT_EQ(k, keys[0]);
}

TEST_F(RedisStoreTest, NonNumericKeyIsAnErrorNotANewKey) {
  redis().cli({"SET", "lnr_connection:U:S:L:key", "garbage"});
  int32_t ck = 0;
  bool found = false;
  Status s = store->connection_key("U", "S", "L", true, &ck, &found);
  EXPECT_EQ(s.code, Err::store);
  EXPECT_EQ(redis().cli({"GET", "lnr_connection:U:S:L:key"}), "garbage");
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_unique_key"}), "0");
}

TEST_F(RedisStoreTest, ChannelMetadataAndAckCounter) {
  AckCounter c;
  c.number = 99;
  // A listener reads without creating: a made-up connection key leaves no key behind.
  ASSERT_TRUE(store->read_ack(5, false, &c));
  EXPECT_EQ(c.number, 0u);
  EXPECT_FALSE(c.existed);
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_connection:5:mess_number"}), "0");
  // A sender creates it, as liner_broker does.
  ASSERT_TRUE(store->read_ack(5, true, &c));
  EXPECT_EQ(c.number, 0u);
  EXPECT_EQ(redis().cli({"GET", "lnr_connection:5:mess_number"}), "0");
  ASSERT_TRUE(store->set_last_mess_number(5, 18446744073709551615ull));
  ASSERT_TRUE(store->read_ack(5, true, &c));
  EXPECT_EQ(c.number, 18446744073709551615ull);
  EXPECT_TRUE(c.existed);
  EXPECT_FALSE(c.unreadable);
  ASSERT_TRUE(store->set_sender_topic(5, "topic_client1"));
  std::string from;
  bool found = false;
  ASSERT_TRUE(store->sender_topic(5, &from, &found));
  EXPECT_TRUE(found);
  EXPECT_EQ(from, "topic_client1");
  ASSERT_TRUE(store->sender_topic(6, &from, &found));
  EXPECT_FALSE(found);
  ASSERT_TRUE(store->save_listener_for_sender("U", "S", "127.0.0.1:5", "T", "L"));
  // The plain topic, as liner_broker 1.3.1 reads it; the name beside it, in a key of liner's.
  EXPECT_EQ(redis().cli({"HGET", "lnr_sender:U:S:listener", "127.0.0.1:5"}), "T");
  EXPECT_EQ(redis().cli({"HGET", "lnr_sender:U:S:listener_name", "127.0.0.1:5"}), "L");
  // liner_broker >= 1.3.2 appends "\x1f<listener>"; 1.3.1 writes the topic alone.
  redis().cli({"HSET", "lnr_sender:U:S:listener", "127.0.0.1:6", std::string("T2\x1fL2")});
  redis().cli({"HSET", "lnr_sender:U:S:listener", "127.0.0.1:7", "T3"});
  std::vector<RememberedListener> listeners;
  ASSERT_TRUE(store->listeners_of_sender("U", "S", &listeners));
  ASSERT_EQ(listeners.size(), 3u);
  std::map<std::string, std::pair<std::string, std::string>> by_addr;
  for (auto& l : listeners) by_addr[l.addr] = {l.topic, l.unique_name};
  EXPECT_EQ(by_addr["127.0.0.1:5"], std::make_pair(std::string("T"), std::string("L")));
  EXPECT_EQ(by_addr["127.0.0.1:6"], std::make_pair(std::string("T2"), std::string("L2")));
  EXPECT_EQ(by_addr["127.0.0.1:7"], std::make_pair(std::string("T3"), std::string()));
  ASSERT_TRUE(store->delete_listeners_of_sender("U", "S"));
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_sender:U:S:listener", "lnr_sender:U:S:listener_name"}), "0");
}

TEST_F(RedisStoreTest, OfflineQueueKeepsWholeFramesInOrder) {
  std::vector<std::string> frames;
  for (int i = 0; i < 3000; ++i) frames.push_back("frame-" + std::to_string(i) + std::string(1, '\0'));
  std::vector<const std::string*> refs;
  for (auto& f : frames) refs.push_back(&f);
  ASSERT_TRUE(store->push_messages(9, refs, {}));
  EXPECT_EQ(redis().cli({"TYPE", "lnr_connection:9:messages"}), "list");
  uint64_t len = 0;
  ASSERT_TRUE(store->queue_length(9, &len));
  EXPECT_EQ(len, 3000u);
  std::vector<std::string> got;
  ASSERT_TRUE(store->read_messages(9, 1000, 10, &got));
  ASSERT_EQ(got.size(), 10u);
  EXPECT_EQ(got[0], frames[1000]);
  // Elements that are not frames have the number 0 (stored_frame_number).
  uint64_t popped = 0;
  ASSERT_TRUE(store->pop_acknowledged(9, 2999, 0, 0, &popped));
  EXPECT_EQ(popped, 2999u);
  std::string last;
  bool found = false;
  ASSERT_TRUE(store->last_stored_message(9, &last, &found));
  EXPECT_TRUE(found);
  EXPECT_EQ(last, frames[2999]);
  ASSERT_TRUE(store->clear_channel(9));
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_connection:9:messages"}), "0");
}

TEST_F(RedisStoreTest, HandoverMarksGoWithTheQueueAndRemovedFramesLeaveWherever) {
  std::vector<std::string> frames;
  for (uint64_t n = 1; n <= 6; ++n) frames.push_back(testing_support::numbered_frame(n));
  std::vector<const std::string*> refs;
  for (auto& f : frames) refs.push_back(&f);
  ASSERT_TRUE(store->push_messages(5, {refs[0], refs[1], refs[2]}, {{1, 2}}));
  ASSERT_TRUE(store->push_messages(5, {refs[3], refs[4], refs[5]}, {{4, 4}, {6, 6}}));
  ASSERT_TRUE(store->push_messages(5, {}, {}));
  NumberRanges marks;
  ASSERT_TRUE(store->handover_marks(5, &marks));
  EXPECT_EQ(marks, (NumberRanges{{1, 2}, {4, 4}, {6, 6}}));
  // From the middle, the tail and nowhere (a frame removed before): the rest keeps its order.
  uint64_t removed = 0;
  ASSERT_TRUE(store->remove_messages(5, {frames[1], frames[5], testing_support::numbered_frame(9)}, &removed));
  EXPECT_EQ(removed, 2u);
  std::vector<std::string> left;
  ASSERT_TRUE(store->read_messages(5, 0, 10, &left));
  EXPECT_EQ(left, (std::vector<std::string>{frames[0], frames[2], frames[3], frames[4]}));
  ASSERT_TRUE(store->handover_marks(5, &marks));
  EXPECT_EQ(marks.size(), 3u);  // the queue still holds frames: the marks stay
  // The marks leave with the last frame, whichever way it goes.
  ASSERT_TRUE(store->remove_messages(5, {frames[0], frames[2]}, &removed));
  uint64_t popped = 0;
  ASSERT_TRUE(store->pop_acknowledged(5, 2, 5, 5, &popped));
  EXPECT_EQ(popped, 2u);
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_connection:5:messages", "lnr_connection:5:handover"}), "0");
  ASSERT_TRUE(store->push_messages(5, {refs[0]}, {{1, 1}}));
  ASSERT_TRUE(store->remove_messages(5, {frames[0]}, &removed));
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_connection:5:messages", "lnr_connection:5:handover"}), "0");
  // clear_channel deletes them too; marks that are not ranges are a store error.
  ASSERT_TRUE(store->push_messages(5, {refs[0]}, {{1, 1}}));
  ASSERT_TRUE(store->clear_channel(5));
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_connection:5:handover"}), "0");
  redis().cli({"RPUSH", "lnr_connection:5:handover", "7-x"});
  EXPECT_EQ(store->handover_marks(5, &marks).code, Err::store);
}

TEST(RedisStoreDown, UnreachableRedisFailsFastWithAStoreError) {
  int port = testing_support::free_port();
  auto store = open("redis://127.0.0.1:" + std::to_string(port) + "/0");
  auto t0 = std::chrono::steady_clock::now();
  Status s = store->ping();
  EXPECT_EQ(s.code, Err::store);
  EXPECT_NE(s.message.find("unreachable"), std::string::npos) << s.message;
  int32_t k = 0;
  EXPECT_EQ(store->topic_key("t", &k).code, Err::store);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

TEST_F(RedisStoreTest, AnUnreadableAckCounterReadsAsZeroAndSaysSo) {
  redis().cli({"SET", "lnr_connection:4:mess_number", "abc"});
  AckCounter c;
  c.number = 7;
  ASSERT_TRUE(store->read_ack(4, true, &c));
  EXPECT_TRUE(c.existed);
  EXPECT_TRUE(c.unreadable);
  EXPECT_EQ(c.number, 0u);
  EXPECT_EQ(redis().cli({"GET", "lnr_connection:4:mess_number"}), "abc");  // left for the listener to fix
}

TEST_F(RedisStoreTest, PopAcknowledgedRemovesOnlyTheHeadThatWasReadAndAcknowledged) {
  // Numbers straddle a byte boundary and the top bit of a byte, where a text, signed or
  // locale-collated comparison would go wrong.
  std::vector<uint64_t> numbers = {1, 2, 0x80, 255, 256, 257, 0x1'0000'0000ull, 0x8000'0000'0000'0001ull};
  std::vector<std::string> frames;
  for (auto n : numbers) frames.push_back(testing_support::numbered_frame(n));
  std::vector<const std::string*> refs;
  for (auto& f : frames) refs.push_back(&f);
  ASSERT_TRUE(store->push_messages(3, refs, {{1, 2}, {256, 257}}));
  uint64_t popped = 0;
  ASSERT_TRUE(store->pop_acknowledged(3, 5, 256, 255, &popped));  // 256 is not acknowledged
  EXPECT_EQ(popped, 0u);
  ASSERT_TRUE(store->pop_acknowledged(3, 5, 255, 256, &popped));  // the 5th is 256, not 255
  EXPECT_EQ(popped, 0u);
  ASSERT_TRUE(store->pop_acknowledged(3, 5, 256, 256, &popped));
  EXPECT_EQ(popped, 5u);
  // A second run (a retry, a late reply) finds another frame there and removes nothing.
  ASSERT_TRUE(store->pop_acknowledged(3, 5, 256, 256, &popped));
  EXPECT_EQ(popped, 0u);
  uint64_t len = 0;
  ASSERT_TRUE(store->queue_length(3, &len));
  EXPECT_EQ(len, 3u);
  ASSERT_TRUE(store->pop_acknowledged(3, 2, 0x1'0000'0000ull, 0x8000'0000'0000'0000ull, &popped));
  EXPECT_EQ(popped, 2u);
  ASSERT_TRUE(store->pop_acknowledged(3, 1, 0x8000'0000'0000'0001ull, 0x8000'0000'0000'0000ull, &popped));
  EXPECT_EQ(popped, 0u);  // one past the ack, by the lowest bit
  ASSERT_TRUE(store->pop_acknowledged(3, 1, 0x8000'0000'0000'0001ull, UINT64_MAX, &popped));
  EXPECT_EQ(popped, 1u);
  ASSERT_TRUE(store->pop_acknowledged(3, 1, 7, UINT64_MAX, &popped));  // empty list
  EXPECT_EQ(popped, 0u);
}

TEST(RedisStoreRestart, ReconnectsByItselfAfterRedisRestarts) {
  testing_support::RedisServer own(true);
  auto store = open(own.url());
  ASSERT_TRUE(store->set_last_mess_number(1, 7));
  own.stop();
  AckCounter c;
  EXPECT_EQ(store->read_ack(1, true, &c).code, Err::store);
  own.start();
  ASSERT_TRUE(testing_support::wait_for([&] { return bool(store->set_last_mess_number(1, 8)); },
                                        std::chrono::seconds(5)));
  ASSERT_TRUE(store->read_ack(1, true, &c));
  EXPECT_EQ(c.number, 8u);
}

TEST(RedisStoreAuth, AuthAndSelectAreDoneFromTheUrl) {
  testing_support::RedisServer own(true);
  own.cli({"CONFIG", "SET", "requirepass", "s3cret"});
  auto bad = open(own.url());
  EXPECT_EQ(bad->ping().code, Err::store);
  std::string url = "redis://:s3cret@127.0.0.1:" + std::to_string(own.port()) + "/4";
  auto store = open(url);
  ASSERT_TRUE(store->ping());
  ASSERT_TRUE(store->set_last_mess_number(3, 42));
  // Visible in db 4 only.
  std::string in_db4 = own.cli({"-a", "s3cret", "-n", "4", "GET", "lnr_connection:3:mess_number"});
  EXPECT_NE(in_db4.find("42"), std::string::npos);
  own.cli({"-a", "s3cret", "CONFIG", "SET", "requirepass", ""});
}
