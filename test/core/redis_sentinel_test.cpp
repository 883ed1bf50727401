// The Sentinel replies liner reads (get-master-addr-by-name, +switch-master, ROLE), parsed from
// RESP text through hiredis's own reader, and the errors of a sentinel set that nobody answers.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <memory>
#include <string>

#include "core/redis_sentinel.hpp"

using namespace liner;

namespace {

struct Freed {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, Freed>;

Reply read_resp(const std::string& text) {
  redisReader* reader = redisReaderCreate();
  redisReaderFeed(reader, text.data(), text.size());
  void* raw = nullptr;
  EXPECT_EQ(redisReaderGetReply(reader, &raw), REDIS_OK);
  redisReaderFree(reader);
  return Reply(static_cast<redisReply*>(raw));
}

}  // namespace

TEST(SentinelReplies, MasterAddress) {
  RedisNode n;
  bool known = false;
  auto r = read_resp("*2\r\n$8\r\n10.0.0.2\r\n$4\r\n6380\r\n");
  ASSERT_TRUE(parse_master_addr_reply(r.get(), &n, &known));
  EXPECT_TRUE(known);
  EXPECT_EQ(n.host, "10.0.0.2");
  EXPECT_EQ(n.port, 6380);
}

TEST(SentinelReplies, UnknownMasterIsNilNotAnError) {
  RedisNode n;
  bool known = true;
  auto r = read_resp("*-1\r\n");
  ASSERT_TRUE(parse_master_addr_reply(r.get(), &n, &known));
  EXPECT_FALSE(known);
  r = read_resp("$-1\r\n");
  ASSERT_TRUE(parse_master_addr_reply(r.get(), &n, &known));
  EXPECT_FALSE(known);
}

TEST(SentinelReplies, BadShapesAreStoreErrors) {
  RedisNode n;
  bool known = false;
  for (const char* text : {"*1\r\n$4\r\nhost\r\n", "*2\r\n$4\r\nhost\r\n$5\r\n99999\r\n",
                           "*2\r\n$4\r\nhost\r\n$2\r\nxx\r\n", "*2\r\n$0\r\n\r\n$4\r\n6379\r\n", ":1\r\n",
                           "-ERR unknown command\r\n"}) {
    auto r = read_resp(text);
    Status s = parse_master_addr_reply(r.get(), &n, &known);
    EXPECT_FALSE(s) << text;
    EXPECT_EQ(s.code, Err::store) << text;
    EXPECT_FALSE(known) << text;
  }
  EXPECT_FALSE(parse_master_addr_reply(nullptr, &n, &known));
}

TEST(SentinelReplies, SwitchMaster) {
  RedisNode n;
  ASSERT_TRUE(parse_switch_master("mymaster 10.0.0.1 6379 10.0.0.2 6380", "mymaster", &n));
  EXPECT_EQ(n.host, "10.0.0.2");
  EXPECT_EQ(n.port, 6380);
  EXPECT_FALSE(parse_switch_master("other 10.0.0.1 6379 10.0.0.2 6380", "mymaster", &n));
  EXPECT_FALSE(parse_switch_master("mymaster 10.0.0.1 6379 10.0.0.2", "mymaster", &n));
  EXPECT_FALSE(parse_switch_master("mymaster 10.0.0.1 6379 10.0.0.2 port", "mymaster", &n));
  EXPECT_FALSE(parse_switch_master("", "mymaster", &n));
}

TEST(SentinelReplies, Role) {
  auto master = read_resp("*3\r\n$6\r\nmaster\r\n:100\r\n*0\r\n");
  EXPECT_EQ(parse_role_reply(master.get()), "master");
  auto replica = read_resp("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:100\r\n");
  EXPECT_EQ(parse_role_reply(replica.get()), "slave");
  auto error = read_resp("-ERR unknown command 'ROLE'\r\n");
  EXPECT_EQ(parse_role_reply(error.get()), "");
  EXPECT_EQ(parse_role_reply(nullptr), "");
}

TEST(RedisSentinel, NoSentinelReachableSaysWhichAndHidesThePassword) {
  RedisEndpoint ep;
  ASSERT_TRUE(parse_redis_url("redis+sentinel://u:pw-secret@127.0.0.1:1,127.0.0.1:2/mymaster/1", &ep));
  int opened = 0;
  RedisSentinel sentinel(ep, [&](const RedisNode& node, redisContext**) {
    ++opened;
    return Status(Err::store, "redis unreachable at " + node.host + ":" + std::to_string(node.port));
  });
  RedisNode master;
  Status s = sentinel.resolve(&master);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.code, Err::store);
  EXPECT_NE(s.message.find("no redis sentinel reachable for master 'mymaster'"), std::string::npos) << s.message;
  EXPECT_NE(s.message.find("127.0.0.1:1"), std::string::npos) << s.message;
  EXPECT_NE(s.message.find("127.0.0.1:2"), std::string::npos) << s.message;
  EXPECT_EQ(s.message.find("pw-secret"), std::string::npos) << s.message;
  EXPECT_GE(opened, 2);
  // With every sentinel down, no announcement can come: the master is not "changed".
  EXPECT_FALSE(sentinel.master_changed());
}
