// StoreWorker (native/core/store_worker.hpp): jobs run in order on the worker thread, their
// completions (and the partial ones a job emits) run on the owner's thread in that order, the
// number outstanding is bounded, and finish() runs what was queued unless the deadline passed.
#include "core/store_worker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "unused_store.hpp"

using liner::Store;
using liner::StoreWorker;
using std::chrono::milliseconds;
using testing_support::wait_for;
using Clock = std::chrono::steady_clock;

namespace {

// Counts how often the worker said completions wait.
struct Owner {
  std::atomic<int> notified{0};
  std::unique_ptr<StoreWorker> worker;
  explicit Owner(size_t capacity)
      : worker(new StoreWorker(std::make_unique<testing_support::UnusedStore>(), capacity,
                               [this] { ++notified; })) {}
};

// A job that waits until the test opens it: keeps the worker busy on purpose.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return open; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mu);
      open = true;
    }
    cv.notify_all();
  }
};

}  // namespace

TEST(StoreWorker, JobsRunInOrderOffTheOwnerThreadAndCompleteOnIt) {
  Owner o(16);
  ASSERT_TRUE(o.worker->start("test-store").ok());
  std::vector<int> ran, completed;
  std::mutex ran_mu;
  auto owner = std::this_thread::get_id();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(o.worker->post([&, i](Store&) -> StoreWorker::Completion {
      EXPECT_NE(std::this_thread::get_id(), owner);
      {
        std::lock_guard<std::mutex> lock(ran_mu);
        ran.push_back(i);
      }
      return [&, i] {
        EXPECT_EQ(std::this_thread::get_id(), owner);
        completed.push_back(i);
      };
    }));
  }
  ASSERT_TRUE(wait_for([&] {
    o.worker->run_completions();
    return completed.size() == 10;
  }, milliseconds(5000)));
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(completed, ran);
  EXPECT_GE(o.notified.load(), 1);
  EXPECT_EQ(o.worker->outstanding(), 0u);
  o.worker->finish(Clock::now());
}

TEST(StoreWorker, PartialCompletionsComeBeforeTheirJobsOwnAndCountNothing) {
  Owner o(1);
  ASSERT_TRUE(o.worker->start("test-store").ok());
  std::vector<std::string> seen;
  ASSERT_TRUE(o.worker->post([&](Store&) -> StoreWorker::Completion {
    o.worker->emit([&] { seen.push_back("part 1"); });
    o.worker->emit([&] { seen.push_back("part 2"); });
    return [&] { seen.push_back("done"); };
  }));
  ASSERT_TRUE(wait_for([&] {
    o.worker->run_completions();
    return seen.size() == 3;
  }, milliseconds(5000)));
  EXPECT_EQ(seen, (std::vector<std::string>{"part 1", "part 2", "done"}));
  // The job's slot is free again: partial completions did not count against the capacity.
  EXPECT_EQ(o.worker->outstanding(), 0u);
  EXPECT_TRUE(o.worker->post([](Store&) { return StoreWorker::Completion(); }));
  o.worker->finish(Clock::now() + milliseconds(2000));
}

TEST(StoreWorker, NoMoreThanCapacityOutstandingUntilTheirCompletionsRan) {
  Owner o(2);
  ASSERT_TRUE(o.worker->start("test-store").ok());
  Gate gate;
  auto blocked = [&](Store&) -> StoreWorker::Completion {
    gate.wait();
    return StoreWorker::Completion();
  };
  EXPECT_TRUE(o.worker->post(blocked));
  EXPECT_TRUE(o.worker->post(blocked));
  EXPECT_FALSE(o.worker->post(blocked)) << "a third job was queued beyond the capacity of 2";
  gate.release();
  // Run, but their completions not run yet: still outstanding.
  ASSERT_TRUE(wait_for([&] { return o.notified.load() >= 2; }, milliseconds(5000)));
  EXPECT_FALSE(o.worker->post(blocked));
  EXPECT_EQ(o.worker->run_completions(), 2u);
  EXPECT_TRUE(o.worker->post(blocked));
  o.worker->finish(Clock::now() + milliseconds(2000));
}

TEST(StoreWorker, FinishRunsWhatWasQueuedThenItsCompletionsOnTheCaller) {
  Owner o(8);
  ASSERT_TRUE(o.worker->start("test-store").ok());
  int completed = 0;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(o.worker->post([&](Store&) -> StoreWorker::Completion {
      std::this_thread::sleep_for(milliseconds(20));
      return [&] { ++completed; };
    }));
  }
  o.worker->finish(Clock::now() + milliseconds(5000));
  EXPECT_EQ(completed, 5);
  EXPECT_FALSE(o.worker->post([](Store&) { return StoreWorker::Completion(); })) << "posted after finish()";
}

TEST(StoreWorker, FinishDropsWhatTheDeadlineLeftQueued) {
  Owner o(8);
  ASSERT_TRUE(o.worker->start("test-store").ok());
  Gate gate;
  std::atomic<int> ran{0};
  int completed = 0;
  ASSERT_TRUE(o.worker->post([&](Store&) -> StoreWorker::Completion {
    gate.wait();
    ++ran;
    return [&] { ++completed; };
  }));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(o.worker->post([&](Store&) -> StoreWorker::Completion {
      ++ran;
      return [&] { ++completed; };
    }));
  }
  std::thread opener([&] {
    std::this_thread::sleep_for(milliseconds(300));
    gate.release();
  });
  auto started = Clock::now();
  o.worker->finish(Clock::now() + milliseconds(100));
  opener.join();
  // The running job was waited for (a store call cannot be interrupted); the three behind it
  // were dropped with their completions.
  EXPECT_GE(Clock::now() - started, milliseconds(250));
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(completed, 1);
  EXPECT_EQ(o.worker->outstanding(), 0u);
}

TEST(StoreWorker, DestroyedUnfinishedItDropsCompletionsInsteadOfRunningThem) {
  bool completed = false;
  {
    Owner o(4);
    ASSERT_TRUE(o.worker->start("test-store").ok());
    ASSERT_TRUE(o.worker->post([&](Store&) -> StoreWorker::Completion { return [&] { completed = true; }; }));
    ASSERT_TRUE(wait_for([&] { return o.notified.load() >= 1; }, milliseconds(5000)));
  }
  EXPECT_FALSE(completed);
}
