#include "core/store_worker.hpp"

#include "core/log.hpp"
#include "core/thread.hpp"

namespace liner {

StoreWorker::StoreWorker(std::unique_ptr<Store> store, size_t capacity, std::function<void()> notify)
    : store_(std::move(store)), capacity_(capacity ? capacity : 1), notify_(std::move(notify)) {}

StoreWorker::~StoreWorker() {
  // An owner that did not call finish(): its completions would touch what is being destroyed,
  // so they are dropped with the queued jobs.
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.clear();
    stopping_ = finished_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status StoreWorker::start(const char* thread_name) {
  return start_thread(&thread_, thread_name, [this] { loop(); });
}

bool StoreWorker::post(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_ || outstanding_ >= capacity_) return false;
    ++outstanding_;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

size_t StoreWorker::outstanding() const {
  std::lock_guard<std::mutex> lock(mu_);
  return outstanding_;
}

void StoreWorker::emit(Completion partial) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_.emplace_back(std::move(partial), false);
  }
  if (notify_) notify_();
}

size_t StoreWorker::run_completions() {
  std::vector<std::pair<Completion, bool>> ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ready.swap(done_);
    for (const auto& c : ready) outstanding_ -= c.second;
  }
  // Outside the lock: a completion may post the channel's next job.
  for (auto& c : ready)
    if (c.first) c.first();
  return ready.size();
}

void StoreWorker::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) break;  // stopping, nothing left
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    running_job_ = true;
    lock.unlock();
    Completion done;
    try {
      done = job(*store_);
    } catch (const std::exception& e) {
      // A job only talks to the store; nothing of it should throw but allocation.
      log_line(std::string("store job failed: ") + e.what());
    }
    lock.lock();
    running_job_ = false;
    done_.emplace_back(std::move(done), true);
    if (jobs_.empty()) idle_cv_.notify_all();
    lock.unlock();
    if (notify_) notify_();
    lock.lock();
  }
}

void StoreWorker::finish(std::chrono::steady_clock::time_point deadline) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!thread_.joinable() && finished_) return;
    idle_cv_.wait_until(lock, deadline, [this] { return jobs_.empty() && !running_job_; });
    // Past the deadline: what is still queued is dropped (store_worker.hpp).
    outstanding_ -= jobs_.size();
    jobs_.clear();
    stopping_ = true;
    finished_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  run_completions();
}

}  // namespace liner
