// Store URL forms accepted by liner_broker (redis-rs syntax).
#include <gtest/gtest.h>

#include "core/redis_url.hpp"

using namespace liner;

TEST(RedisUrl, ParsesHostPortAndDb) {
  RedisEndpoint e;
  ASSERT_TRUE(parse_redis_url("redis://127.0.0.1:6390/3", &e));
  EXPECT_FALSE(e.is_unix);
  EXPECT_EQ(e.host, "127.0.0.1");
  EXPECT_EQ(e.port, 6390);
  EXPECT_EQ(e.db, 3);
  ASSERT_TRUE(parse_redis_url("redis://localhost", &e));
  EXPECT_EQ(e.port, 6379);
  EXPECT_EQ(e.db, 0);
  ASSERT_TRUE(parse_redis_url("redis://localhost/", &e));
  EXPECT_EQ(e.db, 0);
}

TEST(RedisUrl, ParsesCredentialsAndIpv6) {
  RedisEndpoint e;
  ASSERT_TRUE(parse_redis_url("redis://user:p%40ss@[::1]:7000/1", &e));
  EXPECT_EQ(e.user, "user");
  EXPECT_EQ(e.password, "p@ss");
  EXPECT_EQ(e.host, "::1");
  EXPECT_EQ(e.port, 7000);
  EXPECT_EQ(e.db, 1);
  ASSERT_TRUE(parse_redis_url("redis://:secret@host", &e));
  EXPECT_EQ(e.user, "");
  EXPECT_EQ(e.password, "secret");
}

TEST(RedisUrl, ParsesUnixSockets) {
  RedisEndpoint e;
  ASSERT_TRUE(parse_redis_url("unix:///run/redis.sock", &e));
  EXPECT_TRUE(e.is_unix);
  EXPECT_EQ(e.path, "/run/redis.sock");
  ASSERT_TRUE(parse_redis_url("redis+unix:///tmp/r.sock?db=2", &e));
  EXPECT_EQ(e.path, "/tmp/r.sock");
  EXPECT_EQ(e.db, 2);
}

TEST(RedisUrl, RejectsMalformedUrls) {
  RedisEndpoint e;
  for (const char* bad : {"", "http://x", "redis://", "redis://:6379", "redis://h:0", "redis://h:70000",
                          "redis://h:12ab", "redis://h/x", "redis://[::1", "unix://relative", "rediss://h"}) {
    Status s = parse_redis_url(bad, &e);
    EXPECT_FALSE(s) << bad;
    EXPECT_EQ(s.code, Err::invalid_arg) << bad;
  }
}

TEST(RedactRedisUrl, HidesThePasswordWholeAndNothingElse) {
  EXPECT_EQ(liner::redact_redis_url("redis://u:p@ss@h:1/0"), "redis://u:***@h:1/0");
  EXPECT_EQ(liner::redact_redis_url("redis://:s3cr3t@127.0.0.1:6379/2"), "redis://:***@127.0.0.1:6379/2");
  EXPECT_EQ(liner::redact_redis_url("redis://user@host:1/0"), "redis://user@host:1/0");
  EXPECT_EQ(liner::redact_redis_url("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
  liner::RedisEndpoint ep;
  liner::Status s = liner::parse_redis_url("redis://user:Pw-SECRET@host:notaport/0", &ep);
  EXPECT_FALSE(s);
  EXPECT_EQ(s.message.find("Pw-SECRET"), std::string::npos) << s.message;
}
