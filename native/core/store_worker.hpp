// A thread that does a socket thread's store round trips, so that a slow or dead store never
// stalls the sockets that thread serves (the sender's writes, the listener's reads).
//
// A job runs on the worker thread against the worker's own store connection and returns its
// completion; completions run on the owner's thread, when it calls run_completions(), in the
// order their jobs ran. The owner is told that completions wait by `notify` (it wakes the
// owner's loop). The worker's store is touched by the worker thread only.
//
// Invariants:
// - Jobs run one at a time, in the order they were posted: a job posted after another sees
//   what that one wrote (a listener's ack write before a later channel look-up, a sender's
//   spill before the read of the queue it spilled to).
// - At most `capacity` jobs are outstanding (queued, running, or with a completion not run
//   yet): post() refuses beyond that, and the owner decides what waits (nothing is queued
//   without bound). Owners keep at most one job per channel or connection in flight, so the
//   capacity is their count of those plus a few.
// - Each job costs at most the store's own timeouts (a few seconds on a dead store).
// - finish() runs what is queued, up to a deadline, and then the completions, on the caller's
//   thread: the owner's last acks and spills are written before it closes. Jobs still queued
//   at the deadline are dropped with their completions (the store was too slow to take them
//   anyway; what they would have written is what a crash at that moment leaves).
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.hpp"
#include "core/store.hpp"

namespace liner {

class StoreWorker {
 public:
  using Completion = std::function<void()>;
  using Job = std::function<Completion(Store&)>;

  // `notify` is called on the worker thread after each job's completion was queued.
  StoreWorker(std::unique_ptr<Store> store, size_t capacity, std::function<void()> notify);
  ~StoreWorker();
  StoreWorker(const StoreWorker&) = delete;
  StoreWorker& operator=(const StoreWorker&) = delete;

  Status start(const char* thread_name);
  // Queues a job. False when `capacity` jobs are outstanding, or after finish().
  bool post(Job job);
  // Worker thread, from inside a job: queues a completion ahead of the job's own, so that the
  // owner can use part of a long job's result while the job goes on (a replay read chunk by
  // chunk). It runs on the owner's thread like the others, in order.
  void emit(Completion partial);
  // Owner thread: runs the completions that are ready. Returns how many ran.
  size_t run_completions();
  // Any thread, once the owner's loop stopped: waits until the queued jobs ran (or the
  // deadline passed), stops the thread and runs the completions on the caller's thread.
  void finish(std::chrono::steady_clock::time_point deadline);
  // Destroying a worker that was not finished drops its queued jobs and completions.
  // Jobs outstanding (queued, running or with a completion not yet run).
  size_t outstanding() const;

 private:
  void loop();

  std::unique_ptr<Store> store_;
  const size_t capacity_;
  std::function<void()> notify_;
  mutable std::mutex mu_;
  std::condition_variable cv_;        // jobs to run, or stop
  std::condition_variable idle_cv_;   // the queue emptied (finish waits for it)
  std::deque<Job> jobs_;
  // Completions ready, with whether each ends its job (partial ones from emit() do not).
  std::vector<std::pair<Completion, bool>> done_;
  size_t outstanding_ = 0;
  bool running_job_ = false;
  bool stopping_ = false;
  bool finished_ = false;
  std::thread thread_;
};

}  // namespace liner
