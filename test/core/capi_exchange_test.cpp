// Two clients through the C API: both directions, payload sizes across the compression
// threshold, and the exact Redis keys of compat spec §2.4.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <vector>

#include "liner.h"
#include "test_support.hpp"

using testing_support::redis;
using testing_support::wait_for;

namespace {

struct Inbox {
  std::mutex mu;
  std::vector<std::tuple<std::string, std::string, std::string>> got;  // to, from, data
  size_t size() {
    std::lock_guard<std::mutex> l(mu);
    return got.size();
  }
};

void on_receive(const char* to, const char* from, const char* data, size_t size, lnr_uData ud) {
  auto* in = static_cast<Inbox*>(ud);
  std::lock_guard<std::mutex> l(in->mu);
  in->got.emplace_back(to, from, std::string(data, size));
}

class CapiExchange : public ::testing::Test {
 protected:
  void SetUp() override { redis().flush(); }
  lnr_hClient make(const char* name, const char* topic, Inbox* inbox) {
    lnr_hClient c = lnr_new_client_redis(name, topic, "127.0.0.1:0", redis().url().c_str());
    EXPECT_NE(c, nullptr) << lnr_last_create_error();
    EXPECT_EQ(lnr_run(c, on_receive, inbox), TRUE) << lnr_last_error_message(c);
    return c;
  }
};

}  // namespace

TEST_F(CapiExchange, PayloadsArriveByteIdenticalBothWays) {
  Inbox ia, ib;
  lnr_hClient a = make("client1", "topic_client1", &ia);
  lnr_hClient b = make("client2", "topic_client2", &ib);
  std::vector<size_t> sizes = {1, 1024, 1 << 20, (1 << 20) + 1, 16 << 20};
  std::vector<std::string> payloads;
  for (size_t n : sizes) {
    std::string p(n, '\0');
    for (size_t i = 0; i < n; ++i) p[i] = char((i * 2654435761u) >> 13);
    payloads.push_back(p);
  }
  for (auto& p : payloads) {
    ASSERT_EQ(lnr_send_to(a, "topic_client2", p.data(), p.size(), TRUE), TRUE) << lnr_last_error_message(a);
    ASSERT_EQ(lnr_send_to(b, "topic_client1", p.data(), p.size(), FALSE), TRUE) << lnr_last_error_message(b);
  }
  ASSERT_TRUE(wait_for([&] { return ia.size() == sizes.size() && ib.size() == sizes.size(); },
                       std::chrono::seconds(20)));
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(std::get<0>(ib.got[i]), "topic_client2");
    EXPECT_EQ(std::get<1>(ib.got[i]), "topic_client1");
    EXPECT_TRUE(std::get<2>(ib.got[i]) == payloads[i]) << "size " << sizes[i];
    EXPECT_EQ(std::get<0>(ia.got[i]), "topic_client1");
    EXPECT_EQ(std::get<1>(ia.got[i]), "topic_client2");
    EXPECT_TRUE(std::get<2>(ia.got[i]) == payloads[i]) << "size " << sizes[i];
  }
  EXPECT_EQ(lnr_delete_client(a), TRUE);
  EXPECT_EQ(lnr_delete_client(b), TRUE);
}

TEST_F(CapiExchange, TwoPeerExchangeWritesTheKeysOfSection2_4) {
  Inbox ia, ib;
  lnr_hClient b = make("client2", "topic_client2", &ib);
  lnr_hClient a = make("client1", "topic_client1", &ia);
  std::string addr_a = lnr_bound_listen_addr(a), addr_b = lnr_bound_listen_addr(b);
  ASSERT_EQ(lnr_send_to(a, "topic_client2", "hello", 5, TRUE), TRUE);
  ASSERT_TRUE(wait_for([&] { return ib.size() == 1; }, std::chrono::seconds(5)));
  ASSERT_TRUE(wait_for([&] { return redis().cli({"GET", "lnr_connection:3:mess_number"}) == "1"; },
                       std::chrono::seconds(3)));
  std::string keys = redis().cli({"--scan"});
  std::vector<std::string> sorted;
  for (size_t p = 0; p < keys.size();) {
    size_t e = keys.find('\n', p);
    sorted.push_back(keys.substr(p, e - p));
    if (e == std::string::npos) break;
    p = e + 1;
  }
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::string> expected = {
      "lnr_connection:3:mess_number", "lnr_connection:3:sender",
      "lnr_connection:client1:topic_client1:client2:key", "lnr_sender:client1:topic_client1:listener",
      "lnr_sender:client1:topic_client1:listener_name",  // liner only, beside 1.3.1's keys
      "lnr_topic:topic_client1:addr", "lnr_topic:topic_client1:key",
      "lnr_topic:topic_client1:lease",  // liner only: each running peer's lease
      "lnr_topic:topic_client2:addr", "lnr_topic:topic_client2:key",
      "lnr_topic:topic_client2:lease", "lnr_unique_key"};
  EXPECT_EQ(sorted, expected);
  EXPECT_EQ(redis().cli({"GET", "lnr_topic:topic_client2:key"}), "1");
  EXPECT_EQ(redis().cli({"GET", "lnr_topic:topic_client1:key"}), "2");
  EXPECT_EQ(redis().cli({"GET", "lnr_connection:client1:topic_client1:client2:key"}), "3");
  EXPECT_EQ(redis().cli({"GET", "lnr_unique_key"}), "3");
  EXPECT_EQ(redis().cli({"GET", "lnr_connection:3:sender"}), "topic_client1");
  EXPECT_EQ(redis().cli({"HGET", "lnr_topic:topic_client2:addr", addr_b}), "client2");
  EXPECT_EQ(redis().cli({"HGET", "lnr_topic:topic_client1:addr", addr_a}), "client1");
  EXPECT_EQ(redis().cli({"HGET", "lnr_sender:client1:topic_client1:listener", addr_b}), "topic_client2");
  EXPECT_NE(redis().cli({"HGET", "lnr_topic:topic_client2:lease", addr_b}), "");
  EXPECT_EQ(lnr_delete_client(a), TRUE);
  EXPECT_EQ(lnr_delete_client(b), TRUE);
  // A closed client leaves the directory (liner_broker 1.3.1 did not).
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_topic:topic_client1:addr"}), "0");
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_topic:topic_client2:addr"}), "0");
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_topic:topic_client2:lease"}), "0");  // and its lease
}
