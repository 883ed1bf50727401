// The Redis store: key names, types and encodings of liner_broker 1.3.1, values written by hand,
// AUTH/SELECT from the URL, and reconnecting after Redis restarts. What every store does is
// checked in store_conformance_test.cpp.
#include <gtest/gtest.h>

#include <map>

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
  ASSERT_TRUE(store->delete_topic_addresses("t"));
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_topic:t:addr"}), "0");
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

TEST_F(RedisStoreTest, NonNumericKeyIsAnErrorNotANewKey) {
  redis().cli({"SET", "lnr_connection:U:S:L:key", "garbage"});
  int32_t ck = 0;
  bool found = false;
  Status s = store->connection_key("U", "S", "L", true, &ck, &found);
  EXPECT_EQ(s.code, Err::store);
  EXPECT_EQ(redis().cli({"GET", "lnr_connection:U:S:L:key"}), "garbage");
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_unique_key"}), "0");
}

TEST_F(RedisStoreTest, TheAckCounterAndSenderTopicAreDecimalAndPlainText) {
  AckCounter c;
  // A listener reads without creating: a made-up connection key leaves no key behind.
  ASSERT_TRUE(store->read_ack(5, false, &c));
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_connection:5:mess_number"}), "0");
  // A sender creates it, as liner_broker does.
  ASSERT_TRUE(store->read_ack(5, true, &c));
  EXPECT_EQ(redis().cli({"GET", "lnr_connection:5:mess_number"}), "0");
  ASSERT_TRUE(store->set_last_mess_number(5, 18446744073709551615ull));
  EXPECT_EQ(redis().cli({"GET", "lnr_connection:5:mess_number"}), "18446744073709551615");
  ASSERT_TRUE(store->set_sender_topic(5, "topic_client1"));
  EXPECT_EQ(redis().cli({"GET", "lnr_connection:5:sender"}), "topic_client1");
}

TEST_F(RedisStoreTest, RememberedListenersKeepTheTopicAsLinerBroker131WritesIt) {
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

TEST_F(RedisStoreTest, TheOfflineQueueIsAListOfFrames) {
  std::string frame = testing_support::numbered_frame(1);
  ASSERT_TRUE(store->push_messages(9, {&frame}, {}));
  EXPECT_EQ(redis().cli({"TYPE", "lnr_connection:9:messages"}), "list");
  EXPECT_EQ(redis().cli({"LLEN", "lnr_connection:9:messages"}), "1");
  ASSERT_TRUE(store->clear_channel(9));
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_connection:9:messages"}), "0");
}

// Places are frame numbers. A push that failed and was made again repeats frames: a read goes on
// after the first copy of the frame read last, and a drop takes only what is placed at or before
// its place, whatever order the copies are in.
TEST_F(RedisStoreTest, PlacesAreNumbersAndCopiesOfAPushMadeAgainAreReadAndDroppedInTurn) {
  std::vector<std::string> frames;
  for (uint64_t n : {1, 2, 3, 1, 2, 3, 4}) frames.push_back(testing_support::numbered_frame(n));
  std::vector<const std::string*> refs;
  for (auto& f : frames) refs.push_back(&f);
  ASSERT_TRUE(store->push_messages(9, refs, {}));
  auto other = open(redis().url());  // no hint of where reads ended: it searches
  std::vector<QueuedFrame> got;
  ASSERT_TRUE(other->read_messages_after(9, 3, 10, &got));
  std::vector<uint64_t> places;
  for (auto& f : got) places.push_back(f.place);
  EXPECT_EQ(places, (std::vector<uint64_t>{1, 2, 3, 4}));
  bool empty = true;
  ASSERT_TRUE(store->drop_messages_through(9, 2, &empty));  // 1, 2, then 3 is above
  EXPECT_FALSE(empty);
  EXPECT_EQ(redis().cli({"LLEN", "lnr_connection:9:messages"}), "5");
  ASSERT_TRUE(store->drop_messages_through(9, 4, &empty));
  EXPECT_TRUE(empty);
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_connection:9:messages"}), "0");
}

// A drop trims what this instance read from the head only while the element it read last
// there is still where it was read; when one before it left (handed over), it takes elements one
// by one while they are at or before its place.
TEST_F(RedisStoreTest, ADropTrimsWhatWasReadOnlyWhereNothingBeforeItLeft) {
  std::vector<std::string> frames;
  for (uint64_t n = 1; n <= 10; ++n) frames.push_back(testing_support::numbered_frame(n));
  std::vector<const std::string*> refs;
  for (auto& f : frames) refs.push_back(&f);
  ASSERT_TRUE(store->push_messages(9, refs, {}));
  std::vector<QueuedFrame> got;
  ASSERT_TRUE(store->read_messages_after(9, 0, 10, &got));
  ASSERT_TRUE(open(redis().url())->remove_messages(9, {frames[1]}, nullptr));  // 2, by another
  ASSERT_TRUE(store->drop_messages_through(9, 5, nullptr));
  EXPECT_EQ(redis().cli({"LLEN", "lnr_connection:9:messages"}), "5");
  got.clear();
  ASSERT_TRUE(store->read_messages_after(9, 0, 1, &got));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].place, 6u);
  // From the head again, nothing removed meanwhile: trimmed.
  ASSERT_TRUE(store->read_messages_after(9, 0, 5, &got));
  ASSERT_TRUE(store->drop_messages_through(9, 8, nullptr));
  EXPECT_EQ(redis().cli({"LLEN", "lnr_connection:9:messages"}), "2");
}

// Ranges as "first-last" text in a list beside the queue; the key goes with the queue's last frame.
TEST_F(RedisStoreTest, HandoverMarksAreAListOfRangesDeletedWithTheQueue) {
  std::string frame = testing_support::numbered_frame(1);
  ASSERT_TRUE(store->push_messages(5, {&frame}, {{1, 1}, {3, 4}}));
  EXPECT_EQ(redis().cli({"LRANGE", "lnr_connection:5:handover", "0", "-1"}), "1-1\n3-4");
  ASSERT_TRUE(store->remove_messages(5, {frame}, nullptr));
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_connection:5:messages", "lnr_connection:5:handover"}), "0");
}

TEST_F(RedisStoreTest, HandoverMarksThatAreNotRangesAreAStoreError) {
  redis().cli({"RPUSH", "lnr_connection:5:handover", "7-x"});
  NumberRanges marks;
  EXPECT_EQ(store->handover_marks(5, &marks).code, Err::store);
}

// Failing fast with Err::store is every store's (store_conformance_test.cpp); the wording is Redis's.
TEST(RedisStoreDown, AnUnreachableRedisIsSaidToBeUnreachable) {
  auto store = open("redis://127.0.0.1:" + std::to_string(testing_support::free_port()) + "/0");
  Status s = store->ping();
  EXPECT_EQ(s.code, Err::store);
  EXPECT_NE(s.message.find("unreachable"), std::string::npos) << s.message;
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
