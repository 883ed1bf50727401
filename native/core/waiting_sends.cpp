#include "core/waiting_sends.hpp"

#include <algorithm>
#include <utility>

#include "core/status_event.hpp"
#include "core/thread.hpp"

namespace liner {

namespace {
using Clock = std::chrono::steady_clock;
constexpr auto kFirstRetry = std::chrono::milliseconds(200);
constexpr auto kLongestRetry = std::chrono::milliseconds(2000);
// A full send queue frees up as the sender writes: look again soon, without spinning.
constexpr auto kBusyRetry = std::chrono::milliseconds(20);
}  // namespace

WaitingSends::WaitingSends(std::unique_ptr<Store> store, Resolve resolve, Flush flush, Dropped dropped,
                           Refusing refused_ended)
    : store_(std::move(store)), resolve_(std::move(resolve)), flush_(std::move(flush)),
      dropped_report_(std::move(dropped)), refused_ended_(std::move(refused_ended)) {}

WaitingSends::~WaitingSends() { stop(Clock::now()); }

Status WaitingSends::start() {
  stopping_ = false;
  return start_thread(&thread_, "lnr-waiting", [this] { loop(); });
}

void WaitingSends::stop(Clock::time_point deadline) {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    deadline_ = deadline;
  }
  cv_.notify_all();
  thread_.join();
}

Status WaitingSends::add_locked(const Key& key, Message m, size_t max_messages, size_t max_bytes,
                                bool* first_refusal) {
  *first_refusal = false;
  KeyState& k = keys_[key];
  // A key always takes one message, as an empty send queue does: a message bigger than the
  // byte cap is never refused for good.
  if (k.count > 0 && (k.count + 1 > max_messages || k.bytes + m.data.size() > max_bytes)) {
    *first_refusal = !k.refused;
    k.refused = true;
    return Status(Err::busy, std::to_string(k.count) + " messages (" + std::to_string(k.bytes) + " bytes) to " +
                                 key.name + " wait for the store: retry later");
  }
  if (k.count == 0) {
    entries_.store(keys_.size(), std::memory_order_relaxed);
    if (queue_.empty()) cv_.notify_all();
  }
  k.count += 1;
  k.bytes += m.data.size();
  messages_ += 1;
  bytes_ += m.data.size();
  queue_.push_back(Waiting{key, std::move(m)});
  return Status();
}

size_t WaitingSends::waiting_messages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_;
}

size_t WaitingSends::waiting_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

void WaitingSends::pop_locked(std::vector<Key>* ended) {
  Waiting& w = queue_.front();
  auto k = keys_.find(w.key);
  messages_ -= 1;
  bytes_ -= w.message.data.size();
  k->second.bytes -= w.message.data.size();
  if (--k->second.count == 0) {
    if (k->second.refused && ended) ended->push_back(k->first);
    keys_.erase(k);
    entries_.store(keys_.size(), std::memory_order_relaxed);
  }
  queue_.pop_front();
}

void WaitingSends::flush_locked(Reports* reports, std::vector<Key>* ended) {
  while (!queue_.empty()) {
    Waiting& w = queue_.front();
    KeyState& k = keys_.find(w.key)->second;
    if (!k.resolved) return;
    Status s = flush_(w.key, w.message);
    if (s.code == Err::busy || s.code == Err::store) {
      // Busy: the peer's queue frees up as it is written. Store: the channel went away (the
      // peer moved): its key's store work again, first.
      if (s.code == Err::store) k.resolved = false;
      retry_at_ = Clock::now() + (s.code == Err::busy ? std::chrono::milliseconds(kBusyRetry)
                                                      : std::chrono::milliseconds(kFirstRetry));
      return;
    }
    if (!s) {
      dropped_ += 1;
      if (!reports->empty() && reports->back().key == w.key && reports->back().why == s.message)
        reports->back().count += 1;
      else
        reports->push_back({w.key, 1, s.message});
    }
    pop_locked(ended);
  }
}

void WaitingSends::report(Reports& reports) {
  for (const auto& r : reports)
    if (dropped_report_) dropped_report_(r.key, r.count, r.why);
  reports.clear();
}

void WaitingSends::loop() {
  Reports reports;
  std::vector<Key> ended;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    Clock::time_point now = Clock::now();
    if (stopping_ && (queue_.empty() || now >= deadline_)) {
      while (!queue_.empty()) {
        const Waiting& w = queue_.front();
        if (!reports.empty() && reports.back().key == w.key) reports.back().count += 1;
        else reports.push_back({w.key, 1, "the client stopped before the store answered"});
        dropped_ += 1;
        pop_locked(nullptr);
      }
      lock.unlock();
      report(reports);
      return;
    }
    if (queue_.empty() || retry_at_ > now) {
      Clock::time_point until = queue_.empty() ? Clock::time_point::max() : retry_at_;
      if (stopping_) until = std::min(until, deadline_);
      if (until == Clock::time_point::max()) cv_.wait(lock);
      else cv_.wait_until(lock, until);
      continue;
    }
    Key key = queue_.front().key;
    if (!keys_.find(key)->second.resolved) {
      Message first = queue_.front().message;
      lock.unlock();
      Status s = resolve_(*store_, key, first);
      lock.lock();
      if (!s) {  // the front is still this key's: only this thread removes messages
        backoff_ = std::min<std::chrono::milliseconds>(
            backoff_.count() ? backoff_ * 2 : std::chrono::milliseconds(kFirstRetry), kLongestRetry);
        retry_at_ = Clock::now() + backoff_;
        continue;
      }
      keys_.find(key)->second.resolved = true;
      backoff_ = std::chrono::milliseconds(0);
    }
    // The events of queueing them (busy, writable, drops) go out once the lock is released: a
    // handler may send, which takes the lock.
    {
      StatusDeferral defer;
      flush_locked(&reports, &ended);
      lock.unlock();
      report(reports);
      for (const auto& k : ended)
        if (refused_ended_) refused_ended_(k);
      ended.clear();
    }
    lock.lock();
  }
}

}  // namespace liner
