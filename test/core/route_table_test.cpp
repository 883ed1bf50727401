// RouteTable (native/core/route_table.hpp): what a send is told about a topic, round-robin
// over its peers, and when the epoch that remembered routes trust moves.
#include <gtest/gtest.h>

#include <thread>

#include "core/route_table.hpp"

using namespace liner;
using Pick = RouteTable::Pick;

namespace {

std::vector<TopicAddress> peers(std::initializer_list<const char*> addrs) {
  std::vector<TopicAddress> out;
  for (const char* a : addrs) out.push_back({a, std::string("u") + a});
  return out;
}

std::string pick_next(RouteTable& t, const std::string& topic) {
  std::vector<TopicAddress> targets;
  RouteTable::Lookup found = t.pick(topic, Pick::next, &targets);
  EXPECT_TRUE(found.served());
  EXPECT_EQ(targets.size(), 1u);
  return targets.empty() ? "" : targets[0].addr;
}

}  // namespace

TEST(RouteTable, AnUnknownTopicIsNeitherRoutedNorKeyed) {
  RouteTable t;
  std::vector<TopicAddress> targets;
  RouteTable::Lookup found = t.pick("t", Pick::next, &targets);
  EXPECT_FALSE(found.route);
  EXPECT_FALSE(found.key);
  EXPECT_FALSE(found.served());
  EXPECT_TRUE(targets.empty());
}

TEST(RouteTable, SendToGoesRoundRobinAndSendAllEverywhere) {
  RouteTable t;
  t.cache("t", 7, peers({"a", "b", "c"}));
  EXPECT_EQ(pick_next(t, "t"), "a");
  EXPECT_EQ(pick_next(t, "t"), "b");
  EXPECT_EQ(pick_next(t, "t"), "c");
  EXPECT_EQ(pick_next(t, "t"), "a");
  std::vector<TopicAddress> targets;
  RouteTable::Lookup found = t.pick("t", Pick::all, &targets);
  EXPECT_EQ(found.topic_key, 7);
  EXPECT_EQ(found.addresses, 3u);
  EXPECT_EQ(targets, peers({"a", "b", "c"}));
}

// Candidates come in round-robin's order without moving it; settle() moves it past the peer
// the send chose (the caller skipped an unreachable one).
TEST(RouteTable, CandidatesLeaveTheChoiceToTheCallerAndSettleMovesOn) {
  RouteTable t;
  t.cache("t", 7, peers({"a", "b", "c"}));
  EXPECT_EQ(pick_next(t, "t"), "a");
  std::vector<TopicAddress> targets;
  t.pick("t", Pick::candidates, &targets);
  EXPECT_EQ(targets, peers({"b", "c", "a"}));
  t.settle("t", "c");  // b was unreachable
  EXPECT_EQ(pick_next(t, "t"), "a");
  t.settle("t", "gone");  // the route changed meanwhile: nothing to move
  EXPECT_EQ(pick_next(t, "t"), "b");
}

TEST(RouteTable, NobodyServingIsRememberedAsLately) {
  RouteTable t;
  t.cache("t", 7, {});
  std::vector<TopicAddress> targets;
  RouteTable::Lookup found = t.pick("t", Pick::next, &targets);
  EXPECT_TRUE(found.route);
  EXPECT_TRUE(found.key);
  EXPECT_FALSE(found.served());
  EXPECT_TRUE(found.unserved_lately);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // route_table.cpp's kUnservedFor is 200 ms
  EXPECT_FALSE(t.pick("t", Pick::next, &targets).unserved_lately);
}

TEST(RouteTable, OnlyARealChangeMovesTheEpoch) {
  RouteTable t;
  t.cache("t", 7, peers({"a"}));
  uint64_t before = RouteTable::epoch();
  t.store("t", peers({"a"}));  // the directory watch's read, every second: the same
  EXPECT_EQ(RouteTable::epoch(), before);
  t.store("t", peers({"a", "b"}));
  EXPECT_GT(RouteTable::epoch(), before);
  before = RouteTable::epoch();
  t.clear_addresses();
  EXPECT_GT(RouteTable::epoch(), before);
}

TEST(RouteTable, KeysAndWatchedTopicsOutliveTheAddresses) {
  RouteTable t;
  t.cache("t", 7, peers({"a"}));
  t.watch("listed");
  t.clear_addresses();
  int32_t key = 0;
  EXPECT_TRUE(t.key_of("t", &key));
  EXPECT_EQ(key, 7);
  EXPECT_EQ(t.keys(), (std::vector<std::pair<std::string, int32_t>>{{"t", 7}}));
  EXPECT_TRUE(t.watches("t"));
  EXPECT_TRUE(t.watches("listed"));
  std::vector<TopicAddress> addrs;
  EXPECT_FALSE(t.cached("t", &addrs, &key));
  std::vector<TopicAddress> targets;
  RouteTable::Lookup found = t.pick("t", Pick::next, &targets);
  EXPECT_FALSE(found.route);
  EXPECT_TRUE(found.key);
}
