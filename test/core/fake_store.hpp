// An in-memory Store for unit tests (STYLE.md: "a fake that can delay, fail and answer
// late"). It implements what the listener's Delivery, the Sender and the OfflineQueue ask of a
// store; every other operation fails as "not used by this test" (UnusedStore).
//
// Faults, per call, from a script (for every operation, or for one kind) or at random:
//  - fail:        the call does nothing and fails (the store did not answer);
//  - late_reply:  the call runs, then fails (its reply came after the caller gave up);
//  - runs_later:  the call fails and runs on the "server" a few calls later (it reached the
//                 server after the caller gave up; only the queue operations have a delayed
//                 form, others just fail).
// Timing, outside the lock so that the test can look in meanwhile: a delay per kind (and
// connection key), or a hold that keeps every call of a kind waiting until release().
//
// Ownership: a unit takes a std::unique_ptr<Store>; give it one made with make(), keep the
// pointer, and look at it while the unit lives (a unit keeps its store until it is
// destroyed). Fields are guarded by lock() while a unit's thread may call in; a
// single-threaded test uses them directly.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <algorithm>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/frame.hpp"
#include "core/store.hpp"
#include "unused_store.hpp"

namespace testing_support {

class FakeStore : public UnusedStore {
 public:
  using AckCounter = liner::AckCounter;
  using NumberRanges = liner::NumberRanges;
  using milliseconds = std::chrono::milliseconds;

  enum class Op {
    sender_topic, read_ack, ack_write, report_refused, connection_key, last_stored,
    save_listener, set_sender_topic, queue_length, read_messages, pop, push, handover_marks, remove,
  };
  enum class Fault { none, fail, late_reply, runs_later };
  static constexpr int32_t kAnyKey = INT32_MIN;

  // --- What the store holds (lnr_connection:{ck}:... and friends).
  std::map<int32_t, std::string> senders;       // :sender
  std::map<int32_t, uint64_t> acks;             // :mess_number
  std::set<int32_t> unreadable_acks;            // :mess_number holds garbage
  std::map<int32_t, std::deque<std::string>> queues;  // :messages, whole frames
  std::map<int32_t, NumberRanges> handover;     // :handover
  std::map<std::string, int32_t> connection_keys;  // "U:S:L" -> ck
  int32_t next_key = 100;
  struct Report {
    int32_t ck;
    uint64_t number;
    std::string reason;
  };
  std::vector<Report> reports;  // report_refused calls that went through
  struct Push {
    int32_t ck;
    std::vector<uint64_t> numbers;
    NumberRanges handover;
  };
  std::vector<Push> pushes;  // push_messages calls that went through
  struct Call {
    Op op;
    int32_t ck;
    uint64_t number;  // the number written (ack_write), else 0
  };
  std::vector<Call> calls;  // every call, in the order it reached the store, faults included

  // --- Faults.
  std::deque<Fault> script;                 // for the next calls of any kind, in order
  std::map<Op, std::deque<Fault>> op_script;  // for the next calls of one kind (before `script`)
  std::mt19937_64* rng = nullptr;           // with fault_percent: random faults
  int fault_percent = 0;
  int delay_ops = 1;  // how many calls later a runs_later call runs (random 1..3 with rng)
  struct Delayed {
    int after;
    std::function<void()> op;
  };
  std::vector<Delayed> delayed;

  // Called on the calling thread before each call reaches the store (outside the lock).
  std::function<void(Op, int32_t ck, uint64_t number)> before_call;

  // A fake for a unit to own (*out: the same object, for the test).
  static std::unique_ptr<liner::Store> make(FakeStore** out) {
    auto s = std::make_unique<FakeStore>();
    *out = s.get();
    return s;
  }

  std::unique_lock<std::mutex> lock() const { return std::unique_lock<std::mutex>(mu_); }

  // The next `n` calls of `op` fail.
  void fail_next(Op op, int n) {
    auto l = lock();
    for (int i = 0; i < n; ++i) op_script[op].push_back(Fault::fail);
  }
  // Calls of `op` (on channel `ck`, or any) take this long.
  void set_delay(Op op, milliseconds d, int32_t ck = kAnyKey) {
    auto l = lock();
    delays_[{op, ck}] = d;
  }
  // Calls of `op` wait until release(op).
  void hold(Op op) {
    auto l = lock();
    held_.insert(op);
  }
  void release(Op op) {
    {
      auto l = lock();
      held_.erase(op);
    }
    cv_.notify_all();
  }
  // Calls of `op` now waiting in a hold.
  int waiting(Op op) const {
    auto l = lock();
    auto it = waiting_.find(op);
    return it == waiting_.end() ? 0 : it->second;
  }
  // Calls now delayed or held (any kind).
  int paused() const { return paused_.load(); }

  uint64_t ack(int32_t ck) const {
    auto l = lock();
    auto it = acks.find(ck);
    return it == acks.end() ? 0 : it->second;
  }
  bool has_ack(int32_t ck) const {
    auto l = lock();
    return acks.count(ck) != 0;
  }
  size_t count(Op op, int32_t ck = kAnyKey) const {
    auto l = lock();
    size_t n = 0;
    for (const auto& c : calls) n += c.op == op && (ck == kAnyKey || c.ck == ck);
    return n;
  }
  std::vector<Report> reports_made() const {
    auto l = lock();
    return reports;
  }
  std::vector<Push> pushes_made() const {
    auto l = lock();
    return pushes;
  }
  // Numbers of the frames stored for `ck`, oldest first.
  std::vector<uint64_t> stored_numbers(int32_t ck) const {
    auto l = lock();
    std::vector<uint64_t> out;
    auto it = queues.find(ck);
    if (it != queues.end())
      for (const auto& f : it->second) out.push_back(liner::stored_frame_number(f));
    return out;
  }

  // --- The operations.
  Status sender_topic(int32_t ck, std::string* topic, bool* found) override {
    return run(Op::sender_topic, ck, 0, [&] {
      auto it = senders.find(ck);
      *found = it != senders.end();
      if (*found) *topic = it->second;
    });
  }
  Status read_ack(int32_t ck, bool create, AckCounter* out) override {
    return run(Op::read_ack, ck, 0, [&] {
      *out = AckCounter();
      auto it = acks.find(ck);
      out->existed = it != acks.end() || unreadable_acks.count(ck);
      if (unreadable_acks.count(ck)) out->unreadable = true;
      else if (it != acks.end()) out->number = it->second;
      else if (create) acks[ck] = 0;
    });
  }
  Status set_last_mess_number(int32_t ck, uint64_t number) override {
    return run(Op::ack_write, ck, number, [&] {
      acks[ck] = number;
      unreadable_acks.erase(ck);
    });
  }
  Status report_refused(int32_t ck, uint64_t number, const std::string& reason) override {
    return run(Op::report_refused, ck, number, [&] { reports.push_back({ck, number, reason}); });
  }
  Status connection_key(const std::string& u, const std::string& s, const std::string& l, bool allocate,
                        int32_t* ck, bool* found) override {
    return run(Op::connection_key, 0, 0, [&] {
      std::string name = u + ":" + s + ":" + l;
      auto it = connection_keys.find(name);
      *found = it != connection_keys.end();
      if (*found) *ck = it->second;
      else if (allocate) *ck = connection_keys[name] = next_key++, *found = true;
    });
  }
  Status last_stored_message(int32_t ck, std::string* frame, bool* found) override {
    return run(Op::last_stored, ck, 0, [&] {
      auto it = queues.find(ck);
      *found = it != queues.end() && !it->second.empty();
      if (*found) *frame = it->second.back();
    });
  }
  Status save_listener_for_sender(const std::string&, const std::string&, const std::string&,
                                  const std::string&, const std::string&) override {
    return run(Op::save_listener, 0, 0, [] {});
  }
  Status set_sender_topic(int32_t ck, const std::string& topic) override {
    return run(Op::set_sender_topic, ck, 0, [&] { senders[ck] = topic; });
  }
  Status queue_length(int32_t ck, uint64_t* length) override {
    return run(Op::queue_length, ck, 0, [&] { *length = queues[ck].size(); });
  }
  // Places as Redis gives them (redis_store.hpp): a frame's number; an element that is not a
  // frame takes the place of the frame before it.
  Status read_messages_after(int32_t ck, uint64_t after, uint64_t count,
                             std::vector<liner::QueuedFrame>* out) override {
    return run(Op::read_messages, ck, 0, [&] {
      out->clear();
      const auto& list = queues[ck];
      size_t at = 0;  // after the frame numbered `after`, or from the first placed after it
      while (after > 0 && at < list.size()) {
        uint64_t number = liner::stored_frame_number(list[at]);
        if (number > after) break;
        ++at;
        if (number == after) break;
      }
      uint64_t place = after;
      for (; at < list.size() && out->size() < count; ++at) {
        uint64_t number = liner::stored_frame_number(list[at]);
        if (number) place = number;
        out->push_back({place, list[at]});
      }
    });
  }
  // LREM's: the oldest copy of each.
  Status remove_messages(int32_t ck, const std::vector<std::string>& frames, uint64_t* removed) override {
    return run(Op::remove, ck, 0, [&] {
      auto& list = queues[ck];
      uint64_t n = 0;
      for (const auto& f : frames) {
        auto it = std::find(list.begin(), list.end(), f);
        if (it != list.end()) list.erase(it), ++n;
      }
      if (list.empty()) handover.erase(ck);
      if (removed) *removed = n;
    });
  }
  Status drop_messages_through(int32_t ck, uint64_t through, bool* empty) override {
    auto work = [this, ck, through] {
      auto& list = queues[ck];
      while (!list.empty() && liner::stored_frame_number(list.front()) <= through) list.pop_front();
      if (list.empty()) handover.erase(ck);
    };
    return run(Op::pop, ck, 0, [&] {
      work();
      if (empty) *empty = queues[ck].empty();
    }, work);
  }
  Status push_messages(int32_t ck, const std::vector<const std::string*>& frames,
                       const NumberRanges& ranges) override {
    std::vector<std::string> copy;
    for (auto* f : frames) copy.push_back(*f);
    auto work = [this, ck, copy, ranges] {
      Push p{ck, {}, ranges};
      for (const auto& f : copy) {
        queues[ck].push_back(f);
        p.numbers.push_back(liner::stored_frame_number(f));
      }
      auto& marks = handover[ck];
      marks.insert(marks.end(), ranges.begin(), ranges.end());
      pushes.push_back(std::move(p));
    };
    return run(Op::push, ck, 0, work, work);
  }
  Status handover_marks(int32_t ck, NumberRanges* out) override {
    return run(Op::handover_marks, ck, 0, [&] {
      auto it = handover.find(ck);
      *out = it == handover.end() ? NumberRanges() : it->second;
    });
  }

 private:
  Fault next_fault(Op op) {
    auto it = op_script.find(op);
    if (it != op_script.end() && !it->second.empty()) {
      Fault f = it->second.front();
      it->second.pop_front();
      return f;
    }
    if (!script.empty()) {
      Fault f = script.front();
      script.pop_front();
      return f;
    }
    if (!rng || fault_percent == 0 || int((*rng)() % 100) >= fault_percent) return Fault::none;
    return Fault(1 + (*rng)() % 3);
  }

  // Waits as the delays and holds say, outside the lock.
  void pause(Op op, int32_t ck) {
    milliseconds d{0};
    bool held = false;
    {
      auto l = lock();
      auto it = delays_.find({op, ck});
      if (it == delays_.end()) it = delays_.find({op, kAnyKey});
      if (it != delays_.end()) d = it->second;
      held = held_.count(op) != 0;
    }
    if (d.count() == 0 && !held) return;
    ++paused_;
    if (d.count()) std::this_thread::sleep_for(d);
    if (held) {
      auto l = lock();
      ++waiting_[op];
      cv_.wait(l, [&] { return !held_.count(op); });
      --waiting_[op];
    }
    --paused_;
  }

  // Runs `op` as the fault says. A delayed call runs `later` (its own copy of the work, which
  // may not touch the caller's outputs: the caller is gone by then).
  Status run(Op kind, int32_t ck, uint64_t number, const std::function<void()>& op,
             const std::function<void()>& later = nullptr) {
    pause(kind, ck);
    if (before_call) before_call(kind, ck, number);
    auto l = lock();
    calls.push_back({kind, ck, number});
    for (auto it = delayed.begin(); it != delayed.end();) {  // what reaches the server before this
      if (--it->after > 0) {
        ++it;
        continue;
      }
      it->op();
      it = delayed.erase(it);
    }
    switch (next_fault(kind)) {
      case Fault::none:
        op();
        return Status();
      case Fault::fail:
        return Status(liner::Err::store, "redis did not answer");
      case Fault::late_reply:
        op();
        return Status(liner::Err::store, "redis did not answer in time");
      case Fault::runs_later:
        if (later) delayed.push_back({rng ? int(1 + (*rng)() % 3) : delay_ops, later});
        return Status(liner::Err::store, "redis did not answer in time");
    }
    return Status();
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::pair<Op, int32_t>, milliseconds> delays_;
  std::set<Op> held_;
  std::map<Op, int> waiting_;
  std::atomic<int> paused_{0};
};

}  // namespace testing_support
