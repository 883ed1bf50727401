// WaitingSends (native/core/waiting_sends.hpp): messages are flushed in the order they were
// added, each after its key's store work; a key's store work that fails is retried while its
// messages wait; a full key refuses (Err::busy) once per episode and says when it ended; a
// flush that fails for good drops the message with a report; stop() drops what the store never
// let through, with a report.
#include "core/waiting_sends.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "unused_store.hpp"

using liner::Err;
using liner::Status;
using liner::Store;
using liner::WaitingSends;
using std::chrono::milliseconds;
using testing_support::wait_for;
using Clock = std::chrono::steady_clock;

namespace {

// Records what the worker does; `failures` store-work attempts fail before one succeeds.
struct Recorder {
  std::mutex mu;
  std::vector<std::string> resolved, flushed, dropped, ended;
  std::atomic<int> failures{0};
  std::atomic<bool> refuse_flush{false};
  std::unique_ptr<WaitingSends> waiting;

  Recorder() {
    waiting.reset(new WaitingSends(
        std::make_unique<testing_support::UnusedStore>(),
        [this](Store&, const WaitingSends::Key& k, const WaitingSends::Message&) {
          if (failures > 0) {
            --failures;
            return Status(Err::store, "store down");
          }
          std::lock_guard<std::mutex> lock(mu);
          resolved.push_back(k.name);
          return Status();
        },
        [this](const WaitingSends::Key& k, const WaitingSends::Message& m) {
          if (refuse_flush) return Status(Err::no_addr, "nobody");
          std::lock_guard<std::mutex> lock(mu);
          flushed.push_back(k.name + ":" + m.data);
          return Status();
        },
        [this](const WaitingSends::Key& k, size_t n, const std::string& why) {
          std::lock_guard<std::mutex> lock(mu);
          dropped.push_back(k.name + ":" + std::to_string(n) + ":" + why);
        },
        [this](const WaitingSends::Key& k) {
          std::lock_guard<std::mutex> lock(mu);
          ended.push_back(k.name);
        }));
  }
  Status add(const std::string& key, const std::string& data, size_t max_messages = 100, bool* first = nullptr) {
    bool f = false;
    WaitingSends::Message m;
    m.data = data;
    auto lock = waiting->lock();
    Status s = waiting->add_locked({WaitingSends::KeyKind::channel, key}, m, max_messages, 1 << 20, &f);
    if (first) *first = f;
    return s;
  }
  size_t count(std::vector<std::string>& v) {
    std::lock_guard<std::mutex> lock(mu);
    return v.size();
  }
};

TEST(WaitingSends, FlushesInTheOrderAddedAfterEachKeysStoreWork) {
  Recorder r;
  ASSERT_TRUE(r.add("a", "1").ok());  // before start: they wait for the worker
  ASSERT_TRUE(r.add("b", "2").ok());
  ASSERT_TRUE(r.add("a", "3").ok());
  EXPECT_TRUE(r.waiting->active());
  EXPECT_EQ(r.waiting->waiting_messages(), 3u);
  ASSERT_TRUE(r.waiting->start().ok());
  ASSERT_TRUE(wait_for([&] { return r.count(r.flushed) == 3; }, milliseconds(5000)));
  EXPECT_EQ(r.flushed, (std::vector<std::string>{"a:1", "b:2", "a:3"}));
  EXPECT_EQ(r.resolved, (std::vector<std::string>{"a", "b"}));  // once per key
  ASSERT_TRUE(wait_for([&] { return !r.waiting->active(); }, milliseconds(5000)));
  EXPECT_EQ(r.waiting->waiting_messages(), 0u);
  r.waiting->stop(Clock::now());
}

TEST(WaitingSends, StoreWorkThatFailsIsRetriedWhileTheMessagesWait) {
  Recorder r;
  r.failures = 3;  // 200 + 400 + 800 ms of back-off
  ASSERT_TRUE(r.waiting->start().ok());
  auto t0 = Clock::now();
  ASSERT_TRUE(r.add("a", "1").ok());
  ASSERT_TRUE(wait_for([&] { return r.count(r.flushed) == 1; }, milliseconds(10000)));
  EXPECT_GE(Clock::now() - t0, milliseconds(1000));
  EXPECT_EQ(r.waiting->dropped(), 0u);
  r.waiting->stop(Clock::now());
}

TEST(WaitingSends, AFullKeyRefusesOncePerEpisodeAndSaysWhenItEnded) {
  Recorder r;
  bool first = false;
  ASSERT_TRUE(r.add("a", "1", 2).ok());
  ASSERT_TRUE(r.add("a", "2", 2).ok());
  Status s = r.add("a", "3", 2, &first);
  EXPECT_EQ(s.code, Err::busy);
  EXPECT_TRUE(first);
  EXPECT_EQ(r.add("a", "4", 2, &first).code, Err::busy);
  EXPECT_FALSE(first);  // the same episode
  EXPECT_TRUE(r.add("b", "5", 2).ok());  // another key has its own room
  ASSERT_TRUE(r.waiting->start().ok());
  ASSERT_TRUE(wait_for([&] { return r.count(r.ended) == 1; }, milliseconds(5000)));
  EXPECT_EQ(r.ended, (std::vector<std::string>{"a"}));
  EXPECT_EQ(r.flushed, (std::vector<std::string>{"a:1", "a:2", "b:5"}));
  r.waiting->stop(Clock::now());
}

TEST(WaitingSends, AFlushThatFailsForGoodDropsTheMessageWithOneReport) {
  Recorder r;
  r.refuse_flush = true;
  ASSERT_TRUE(r.add("a", "1").ok());
  ASSERT_TRUE(r.add("a", "2").ok());
  ASSERT_TRUE(r.waiting->start().ok());
  ASSERT_TRUE(wait_for([&] { return r.waiting->dropped() == 2; }, milliseconds(5000)));
  ASSERT_TRUE(wait_for([&] { return r.count(r.dropped) == 1; }, milliseconds(5000)));
  EXPECT_EQ(r.dropped, (std::vector<std::string>{"a:2:nobody"}));
  r.waiting->stop(Clock::now());
}

TEST(WaitingSends, StopDropsWhatTheStoreNeverLetThroughWithAReport) {
  Recorder r;
  r.failures = 1000;
  ASSERT_TRUE(r.waiting->start().ok());
  ASSERT_TRUE(r.add("a", "1").ok());
  ASSERT_TRUE(r.add("b", "2").ok());
  auto t0 = Clock::now();
  r.waiting->stop(Clock::now() + milliseconds(300));
  EXPECT_LT(Clock::now() - t0, milliseconds(3000));
  EXPECT_EQ(r.waiting->dropped(), 2u);
  EXPECT_EQ(r.dropped, (std::vector<std::string>{"a:1:the client stopped before the store answered",
                                                 "b:1:the client stopped before the store answered"}));
  EXPECT_FALSE(r.waiting->active());
}

}  // namespace
