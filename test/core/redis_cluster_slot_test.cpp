// Redis Cluster key slots (RedisCluster::key_slot) against the values the Redis Cluster
// specification and redis-server itself give (CLUSTER KEYSLOT), and the key each command routes by.
#include <gtest/gtest.h>

#include "core/redis_cluster.hpp"

using namespace liner;

TEST(RedisClusterSlot, Crc16IsXmodem) {
  // The specification's check value: CRC16 of "123456789" is 0x31C3.
  EXPECT_EQ(RedisCluster::crc16("123456789"), 0x31C3);
  EXPECT_EQ(RedisCluster::crc16(""), 0);
}

TEST(RedisClusterSlot, MatchesClusterKeyslot) {
  // Values from CLUSTER KEYSLOT on redis-server 7.0.
  EXPECT_EQ(RedisCluster::key_slot("foo"), 12182);
  EXPECT_EQ(RedisCluster::key_slot("bar"), 5061);
  EXPECT_EQ(RedisCluster::key_slot("123456789"), 12739);  // 0x31C3 % 16384
  EXPECT_EQ(RedisCluster::key_slot("lnr_unique_key"), 6300);
}

TEST(RedisClusterSlot, HashTagsFollowTheSpec) {
  // Only the first {...} counts, and only when it is not empty.
  EXPECT_EQ(RedisCluster::key_slot("{user1000}.following"), RedisCluster::key_slot("user1000"));
  EXPECT_EQ(RedisCluster::key_slot("{user1000}.followers"), RedisCluster::key_slot("user1000"));
  EXPECT_EQ(RedisCluster::key_slot("foo{}{bar}"), RedisCluster::crc16("foo{}{bar}") % 16384);
  EXPECT_EQ(RedisCluster::key_slot("foo{{bar}}zap"), RedisCluster::key_slot("{bar"));
  EXPECT_EQ(RedisCluster::key_slot("foo{{bar}}zap"), 4015);  // CLUSTER KEYSLOT
  EXPECT_EQ(RedisCluster::key_slot("foo{bar}{zap}"), RedisCluster::key_slot("bar"));
  EXPECT_EQ(RedisCluster::key_slot("{"), RedisCluster::crc16("{") % 16384);
}

TEST(RedisClusterSlot, RoutesByTheCommandsKey) {
  std::string_view key;
  ASSERT_TRUE(RedisCluster::key_of({"GET", "lnr_topic:a:key"}, &key));
  EXPECT_EQ(key, "lnr_topic:a:key");
  ASSERT_TRUE(RedisCluster::key_of({"EVAL", "return 1", "1", "q", "x"}, &key));
  EXPECT_EQ(key, "q");
  EXPECT_FALSE(RedisCluster::key_of({"EVAL", "return 1", "0"}, &key));
  EXPECT_FALSE(RedisCluster::key_of({"PUBLISH", "lnr_directory:0", "x"}, &key));
  EXPECT_FALSE(RedisCluster::key_of({"PING"}, &key));
  EXPECT_FALSE(RedisCluster::key_of({"SCAN", "0"}, &key));
}
