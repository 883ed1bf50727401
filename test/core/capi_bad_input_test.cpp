// Every C entry point with bad input: a clear error code, no crash, nothing changed.
#include <gtest/gtest.h>

#include <chrono>

#include "liner.h"
#include "test_support.hpp"

using testing_support::redis;

namespace {

void ignore(const char*, const char*, const char*, size_t, lnr_uData) {}

const char* kBadUtf8 = "bad\xff\xfe";
const char* kOverlong = "\xc0\xaf";

class CapiBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    redis().flush();
    c = lnr_new_client_redis("bad_u", "bad_topic", "127.0.0.1:0", redis().url().c_str());
    ASSERT_NE(c, nullptr) << lnr_last_create_error();
  }
  void TearDown() override {
    if (c) EXPECT_EQ(lnr_delete_client(c), TRUE);
  }
  lnr_hClient c = nullptr;
};

}  // namespace

TEST(CapiCreate, RefusesNullEmptyAndInvalidUtf8Arguments) {
  std::string url = redis().url();
  const char* u = url.c_str();
  struct Case {
    const char *name, *topic, *host, *url;
  } cases[] = {
      {nullptr, "t", "127.0.0.1:0", u}, {"n", nullptr, "127.0.0.1:0", u}, {"n", "t", nullptr, u},
      {"n", "t", "127.0.0.1:0", nullptr}, {"", "t", "127.0.0.1:0", u},     {"n", "", "127.0.0.1:0", u},
      {"n", "t", "", u},                  {"n", "t", "127.0.0.1:0", ""},   {kBadUtf8, "t", "127.0.0.1:0", u},
      {"n", kOverlong, "127.0.0.1:0", u}, {"n", "t", "no-port", u},        {"n", "t", "127.0.0.1:0", "http://x"},
      {"n", "__#internal_channel", "127.0.0.1:0", u},
  };
  for (const auto& k : cases) {
    EXPECT_EQ(lnr_new_client_redis(k.name, k.topic, k.host, k.url), nullptr);
    EXPECT_STRNE(lnr_last_create_error(), "");
  }
  // The SQLite constructor: the same names, then its path and liner_broker's receivers_json.
  EXPECT_EQ(lnr_new_client_sqlite("n", "t", "127.0.0.1:0", "/nonexistent-dir/x.db", ""), nullptr);
  EXPECT_NE(std::string(lnr_last_create_error()).find("/nonexistent-dir/x.db"), std::string::npos);
  EXPECT_EQ(lnr_new_client_sqlite("n", "t", "127.0.0.1:0", ":memory:", ""), nullptr);
  EXPECT_NE(std::string(lnr_last_create_error()).find(":memory:"), std::string::npos);
}

TEST(CapiCreate, UnreachableRedisReturnsNullWithinAboutTwoSeconds) {
  std::string url = "redis://127.0.0.1:" + std::to_string(testing_support::free_port()) + "/0";
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(lnr_new_client_redis("n", "t", "127.0.0.1:0", url.c_str()), nullptr);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2500));
  EXPECT_NE(std::string(lnr_last_create_error()).find("unreachable"), std::string::npos);
}

TEST(CapiHandles, NullAndDeletedHandlesAreRefusedEverywhere) {
  lnr_hClient c = lnr_new_client_redis("h_u", "h_t", "127.0.0.1:0", redis().url().c_str());
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(lnr_delete_client(c), TRUE);
  for (lnr_hClient h : {lnr_hClient(nullptr), c, lnr_hClient(reinterpret_cast<void*>(0xdead))}) {
    EXPECT_EQ(lnr_run(h, ignore, nullptr), FALSE);
    EXPECT_EQ(lnr_send_to(h, "x", "d", 1, TRUE), FALSE);
    EXPECT_EQ(lnr_send_all(h, "x", "d", 1, TRUE), FALSE);
    EXPECT_EQ(lnr_subscribe(h, "x"), FALSE);
    EXPECT_EQ(lnr_unsubscribe(h, "x"), FALSE);
    EXPECT_EQ(lnr_refresh_address_topic(h, "x"), FALSE);
    EXPECT_EQ(lnr_clear_stored_messages(h), FALSE);
    EXPECT_EQ(lnr_clear_addresses_of_topic(h), FALSE);
    EXPECT_EQ(lnr_delete_client(h), FALSE);  // double delete is detected
    EXPECT_EQ(lnr_last_error_code(h), LNR_OK);
    EXPECT_EQ(lnr_last_error_message(h), nullptr);
    EXPECT_EQ(lnr_bound_listen_addr(h), nullptr);
  }
}

TEST_F(CapiBadInput, TopicArgumentsAreChecked) {
  for (const char* t : {(const char*)nullptr, "", kBadUtf8, kOverlong}) {
    EXPECT_EQ(lnr_subscribe(c, t), FALSE);
    EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_INVALID_ARG);
    EXPECT_STRNE(lnr_last_error_message(c), "");
    EXPECT_EQ(lnr_unsubscribe(c, t), FALSE);
    EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_INVALID_ARG);
    EXPECT_EQ(lnr_refresh_address_topic(c, t), FALSE);
    EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_INVALID_ARG);
    EXPECT_EQ(lnr_send_to(c, t, "d", 1, TRUE), FALSE);
    EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_INVALID_ARG);
    EXPECT_EQ(lnr_send_all(c, t, "d", 1, FALSE), FALSE);
    EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_INVALID_ARG);
  }
  EXPECT_EQ(lnr_subscribe(c, "bad_topic"), FALSE);
  EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_SELF_TOPIC);
  EXPECT_EQ(lnr_subscribe(c, "__#internal_channel"), FALSE);
  EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_INTERNAL_TOPIC);
  EXPECT_EQ(lnr_subscribe(c, "fine"), TRUE);
  EXPECT_EQ(lnr_last_error_code(c), LNR_OK);
  EXPECT_STREQ(lnr_last_error_message(c), "");
}

TEST_F(CapiBadInput, SendChecksDataSizeStateAndOwnTopic) {
  EXPECT_EQ(lnr_send_to(c, "other", "d", 1, TRUE), FALSE);
  EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_NOT_RUNNING);
  EXPECT_EQ(lnr_run(c, nullptr, nullptr), FALSE);
  EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_INVALID_ARG);
  ASSERT_EQ(lnr_run(c, ignore, nullptr), TRUE);
  EXPECT_EQ(lnr_run(c, ignore, nullptr), TRUE);  // idempotent
  EXPECT_EQ(lnr_send_to(c, "other", "d", 0, TRUE), FALSE);
  EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_INVALID_ARG);
  EXPECT_EQ(lnr_send_to(c, "other", nullptr, 5, TRUE), FALSE);
  EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_INVALID_ARG);
  EXPECT_EQ(lnr_send_to(c, "bad_topic", "d", 1, TRUE), FALSE);
  EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_SELF_TOPIC);
  EXPECT_EQ(lnr_send_all(c, "bad_topic", "d", 1, TRUE), FALSE);
  EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_SELF_TOPIC);
  EXPECT_EQ(lnr_send_to(c, "nobody_here", "d", 1, TRUE), FALSE);
  EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_NO_ADDR);
  EXPECT_NE(std::string(lnr_last_error_message(c)).find("nobody_here"), std::string::npos);
  EXPECT_EQ(lnr_clear_stored_messages(c), FALSE);
  EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_CLEAR_WHILE_RUNNING);
  EXPECT_EQ(lnr_clear_addresses_of_topic(c), FALSE);
  EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_CLEAR_WHILE_RUNNING);
}

TEST_F(CapiBadInput, BindFailureLeavesNothingRegistered) {
  lnr_hClient first = lnr_new_client_redis("b1", "bind_t1", "127.0.0.1:0", redis().url().c_str());
  ASSERT_EQ(lnr_run(first, ignore, nullptr), TRUE);
  std::string taken = lnr_bound_listen_addr(first);
  lnr_hClient second = lnr_new_client_redis("b2", "bind_t2", taken.c_str(), redis().url().c_str());
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(lnr_run(second, ignore, nullptr), FALSE);
  EXPECT_EQ(lnr_last_error_code(second), LNR_ERR_BIND);
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_topic:bind_t2:addr"}), "0");
  EXPECT_EQ(lnr_delete_client(second), TRUE);
  EXPECT_EQ(lnr_delete_client(first), TRUE);
}

TEST_F(CapiBadInput, AtLeastOnceFlagReadsOnlyTheLowByte) {
  // 0x100 has a zero low byte: liner_broker's one-byte bool reads it as false.
  ASSERT_EQ(lnr_run(c, ignore, nullptr), TRUE);
  lnr_hClient peer = lnr_new_client_redis("lb_peer", "lb_peer_t", "127.0.0.1:0", redis().url().c_str());
  ASSERT_EQ(lnr_run(peer, ignore, nullptr), TRUE);
  EXPECT_EQ(lnr_send_to(c, "lb_peer_t", "x", 1, static_cast<BOOL>(0x100)), TRUE);
  EXPECT_EQ(lnr_delete_client(peer), TRUE);
}
