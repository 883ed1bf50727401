// lnr_send_to_many: a batch arrives whole and in order (also between single sends, and from
// inside a receive callback); a full queue stops it part-way with LNR_ERR_BUSY and *queued
// saying how many went in, and sending the rest later loses and repeats nothing.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "liner.h"
#include "capi_inbox.hpp"
#include "test_support.hpp"

using testing_support::CapiInbox;
using testing_support::capi_inbox_receive;
using testing_support::redis;
using testing_support::wait_for;

namespace {

// A batch as the C API takes it: pointers into `texts` and their sizes.
struct Batch {
  std::vector<std::string> texts;
  std::vector<const char*> data;
  std::vector<size_t> sizes;
  explicit Batch(std::vector<std::string> t) : texts(std::move(t)) {
    for (const auto& s : texts) {
      data.push_back(s.data());
      sizes.push_back(s.size());
    }
  }
};

std::vector<std::string> numbered(const std::string& prefix, size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

class SendToMany : public ::testing::Test {
 protected:
  void SetUp() override {
    receiver = lnr_new_client_redis("stm_rx", "stm_rx_topic", "127.0.0.1:0", redis().url().c_str());
    sender = lnr_new_client_redis("stm_tx", "stm_tx_topic", "127.0.0.1:0", redis().url().c_str());
    ASSERT_NE(receiver, nullptr);
    ASSERT_NE(sender, nullptr);
    ASSERT_EQ(lnr_run(receiver, capi_inbox_receive, &inbox), TRUE);
    ASSERT_EQ(lnr_run(sender, capi_inbox_receive, &sender_inbox), TRUE);
  }
  void TearDown() override {
    lnr_delete_client(sender);
    lnr_delete_client(receiver);
  }
  CapiInbox inbox, sender_inbox;
  lnr_hClient receiver = nullptr;
  lnr_hClient sender = nullptr;
};

}  // namespace

TEST_F(SendToMany, BatchesAndSingleSendsArriveInCallOrder) {
  std::vector<std::string> want;
  for (int round = 0; round < 20; ++round) {
    Batch batch(numbered("r" + std::to_string(round) + ".", size_t(round % 5)));
    size_t queued = 99;
    ASSERT_EQ(lnr_send_to_many(sender, "stm_rx_topic", batch.data.data(), batch.sizes.data(), batch.texts.size(),
                               round % 2 ? TRUE : FALSE, &queued),
              TRUE)
        << lnr_last_error_message(sender);
    EXPECT_EQ(queued, batch.texts.size());
    want.insert(want.end(), batch.texts.begin(), batch.texts.end());
    std::string one = "single" + std::to_string(round);
    ASSERT_EQ(lnr_send_to(sender, "stm_rx_topic", one.data(), one.size(), TRUE), TRUE);
    want.push_back(one);
  }
  ASSERT_TRUE(wait_for([&] { return inbox.size() >= want.size(); }, std::chrono::seconds(10)));
  std::lock_guard<std::mutex> l(inbox.mu);
  EXPECT_EQ(inbox.got, want);
}

TEST_F(SendToMany, AFullQueueStopsTheBatchAndTheRestGoesLater) {
  // At-least-once messages count until acknowledged, and one call holds the queue for its
  // whole batch: the first call queues exactly the cap.
  size_t saved = lnr_get_max_send_queue();
  ASSERT_EQ(lnr_set_max_send_queue(32), TRUE);
  Batch batch(numbered("m", 100));
  size_t queued = 0;
  EXPECT_EQ(lnr_send_to_many(sender, "stm_rx_topic", batch.data.data(), batch.sizes.data(), 100, TRUE, &queued), FALSE);
  EXPECT_EQ(lnr_last_error_code(sender), LNR_ERR_BUSY);
  EXPECT_EQ(queued, 32u);
  size_t sent = queued;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (sent < 100 && std::chrono::steady_clock::now() < deadline) {
    size_t n = 0;
    BOOL ok = lnr_send_to_many(sender, "stm_rx_topic", batch.data.data() + sent, batch.sizes.data() + sent, 100 - sent,
                               TRUE, &n);
    if (!ok) {
      ASSERT_EQ(lnr_last_error_code(sender), LNR_ERR_BUSY) << lnr_last_error_message(sender);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    sent += n;
  }
  ASSERT_EQ(sent, 100u);
  ASSERT_TRUE(wait_for([&] { return inbox.size() >= 100; }, std::chrono::seconds(10)));
  {
    std::lock_guard<std::mutex> l(inbox.mu);
    EXPECT_EQ(inbox.got, batch.texts);  // all of them, in order, none twice
  }
  ASSERT_EQ(lnr_set_max_send_queue(saved), TRUE);
}

TEST_F(SendToMany, FromInsideAReceiveCallback) {
  // The callback answers every message with a batch of two: a nested call on the delivery
  // thread keeps its own copy of the batch.
  struct Echo {
    lnr_hClient self;
  };
  lnr_hClient echo = lnr_new_client_redis("stm_echo", "stm_echo_topic", "127.0.0.1:0", redis().url().c_str());
  ASSERT_NE(echo, nullptr);
  Echo ctx{echo};
  ASSERT_EQ(lnr_run(echo,
                    [](const char*, const char*, const char* data, size_t size, lnr_uData u) {
                      auto* e = static_cast<Echo*>(u);
                      std::string a = std::string(data, size) + "/1", b = std::string(data, size) + "/2";
                      const char* d[] = {a.data(), b.data()};
                      size_t z[] = {a.size(), b.size()};
                      size_t q = 0;
                      lnr_send_to_many(e->self, "stm_rx_topic", d, z, 2, TRUE, &q);
                    },
                    &ctx),
            TRUE);
  Batch batch(numbered("e", 10));
  ASSERT_EQ(lnr_send_to_many(sender, "stm_echo_topic", batch.data.data(), batch.sizes.data(), 10, TRUE, nullptr), TRUE);
  ASSERT_TRUE(wait_for([&] { return inbox.size() >= 20; }, std::chrono::seconds(10)));
  std::vector<std::string> want;
  for (const auto& t : batch.texts) {
    want.push_back(t + "/1");
    want.push_back(t + "/2");
  }
  {
    std::lock_guard<std::mutex> l(inbox.mu);
    EXPECT_EQ(inbox.got, want);
  }
  lnr_delete_client(echo);
}
