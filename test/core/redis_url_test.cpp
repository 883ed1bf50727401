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
                          "redis://h:12ab", "redis://h/x", "redis://[::1", "unix://relative", "rediss://"}) {
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

TEST(RedisUrl, ParsesTlsSettingsFromTheQuery) {
  RedisEndpoint e;
  ASSERT_TRUE(parse_redis_url("rediss://app:pw@redis.example.com:6380/2?ca=/etc/ssl/ca.pem&cert=/c%20d.pem"
                              "&key=/k.pem&sni=name.example.com", &e));
  EXPECT_EQ(e.topology, RedisTopology::server);
  EXPECT_TRUE(e.tls.on);
  EXPECT_EQ(e.host, "redis.example.com");
  EXPECT_EQ(e.port, 6380);
  EXPECT_EQ(e.db, 2);
  EXPECT_EQ(e.password, "pw");
  EXPECT_EQ(e.tls.ca_file, "/etc/ssl/ca.pem");
  EXPECT_EQ(e.tls.cert_file, "/c d.pem");
  EXPECT_EQ(e.tls.key_file, "/k.pem");
  EXPECT_EQ(e.tls.sni, "name.example.com");
  ASSERT_TRUE(parse_redis_url("rediss://host", &e));  // the system's trust store
  EXPECT_TRUE(e.tls.on);
  EXPECT_EQ(e.tls.ca_file, "");
  ASSERT_TRUE(parse_redis_url("redis://host", &e));
  EXPECT_FALSE(e.tls.on);
}

TEST(RedisUrl, RefusesTlsSettingsThatCannotWork) {
  RedisEndpoint e;
  for (const char* url : {"redis://host?ca=/ca.pem",          // TLS settings without TLS
                          "rediss://host?cert=/c.pem",         // a certificate without its key
                          "rediss://host?key=/k.pem",
                          "rediss://host?ca=",                 // empty value
                          "rediss://host?verify=none",         // nothing turns verification off
                          "rediss://host?db=1"}) {
    Status s = parse_redis_url(url, &e);
    EXPECT_FALSE(s) << url;
    EXPECT_EQ(s.code, Err::invalid_arg) << url;
  }
}

TEST(RedisUrl, ParsesSentinelUrls) {
  RedisEndpoint e;
  ASSERT_TRUE(parse_redis_url("redis+sentinel://u:p@s1:26380,s2,[::1]:26390/mymaster/3", &e));
  EXPECT_EQ(e.topology, RedisTopology::sentinel);
  ASSERT_EQ(e.nodes.size(), 3u);
  EXPECT_EQ(e.nodes[0].host, "s1");
  EXPECT_EQ(e.nodes[0].port, 26380);
  EXPECT_EQ(e.nodes[1].port, 26379);  // the sentinels' default port
  EXPECT_EQ(e.nodes[2].host, "::1");
  EXPECT_EQ(e.master_name, "mymaster");
  EXPECT_EQ(e.db, 3);
  EXPECT_EQ(e.user, "u");
  EXPECT_EQ(e.password, "p");
  ASSERT_TRUE(parse_redis_url("rediss+sentinel://s1/m?ca=/ca.pem", &e));
  EXPECT_TRUE(e.tls.on);
  EXPECT_EQ(e.db, 0);
  EXPECT_FALSE(parse_redis_url("redis+sentinel://s1", &e));      // no master name
  EXPECT_FALSE(parse_redis_url("redis+sentinel://s1/", &e));
  EXPECT_FALSE(parse_redis_url("redis+sentinel://s1,/m", &e));   // an empty host
}

TEST(RedisUrl, ParsesClusterUrls) {
  RedisEndpoint e;
  ASSERT_TRUE(parse_redis_url("redis+cluster://:pw@n1:7000,n2:7001", &e));
  EXPECT_EQ(e.topology, RedisTopology::cluster);
  ASSERT_EQ(e.nodes.size(), 2u);
  EXPECT_EQ(e.nodes[1].host, "n2");
  EXPECT_EQ(e.nodes[1].port, 7001);
  EXPECT_EQ(e.password, "pw");
  ASSERT_TRUE(parse_redis_url("rediss+cluster://n1/0?ca=/ca.pem", &e));
  EXPECT_TRUE(e.tls.on);
  EXPECT_FALSE(parse_redis_url("redis+cluster://n1/1", &e));     // a cluster has db 0 only
  EXPECT_FALSE(parse_redis_url("redis://n1,n2", &e));            // several hosts need a topology
}

TEST(RedisUrl, ErrorsOfNewFormsHideThePassword) {
  RedisEndpoint e;
  for (const char* url : {"redis+sentinel://u:hunter2@s1", "rediss://:hunter2@h?bogus=1",
                          "redis+cluster://:hunter2@n1/5"}) {
    Status s = parse_redis_url(url, &e);
    ASSERT_FALSE(s) << url;
    EXPECT_EQ(s.message.find("hunter2"), std::string::npos) << s.message;
  }
}
