// The sender thread's loop: sleep in epoll until a socket, a send or a store answer needs it,
// then run each channel's due work; and on stop, drain what is queued within the budget.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "core/sender.hpp"
#include "core/sender_channel.hpp"

namespace liner {
using namespace sender_tuning;

namespace {

using std::chrono::milliseconds;

// While a caller streams messages faster than they go out one pass at a time, the thread waits
// this long before taking them, so that they leave in one write (and wake the listener once)
// instead of a write per handful. Only when the previous pass took less than kCoalesceBytes:
// a lone message, or the first after a pause, goes out at once.
constexpr long kCoalesceNs = 50 * 1000;
// Given back once the channel has been quiet for this long (kSegmentPoolBytes).
constexpr auto kPoolIdle = std::chrono::seconds(5);

}  // namespace

void Sender::on_socket_event(Channel* ch, uint32_t e) {
  if (ch->state == State::connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(ch->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err || (e & (EPOLLERR | EPOLLHUP))) on_failure(ch, std::strerror(err ? err : ECONNREFUSED));
    else if (e & EPOLLOUT) on_connected(ch);
  } else if (ch->state == State::connected || ch->state == State::opening) {
    // A reset while writes wait for room: the write that was due fails, and says why.
    if ((e & EPOLLOUT) && (e & (EPOLLHUP | EPOLLERR)) && ch->state == State::connected) flush(ch);
    // A listener never writes: readability means EOF or reset.
    if (ch->state != State::connected && ch->state != State::opening) return;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_failure(ch, "connection closed by peer");
    else if (e & EPOLLOUT) flush(ch);
  }
}

void Sender::on_events(const epoll_event* events, int n) {
  for (int i = 0; i < n; ++i) {
    Channel* ch = static_cast<Channel*>(events[i].data.ptr);
    if (ch) on_socket_event(ch, events[i].events);
    else waker_.drain();  // the waker's own event
  }
}

void Sender::loop() {
  epoll_event events[64];
  for (;;) {
    auto now = Clock::now();
    int timeout_ms = ready_.empty() ? 1000 : 0;
    bool queued;
    {
      YieldingLock lock(mu_);
      for (auto& kv : channels_) {
        Channel* ch = kv.second.get();
        Clock::time_point next{};
        if (ch->state == State::connecting || ch->state == State::backoff) next = ch->deadline;
        else if (ch->state == State::connected && !ch->store_busy && (!ch->unacked.empty() || ch->queue.has_unpopped))
          next = next_ack_poll(ch);
        else continue;
        auto ms = std::chrono::duration_cast<milliseconds>(next - now).count();
        timeout_ms = int(std::max<long long>(0, std::min<long long>(timeout_ms, ms + 1)));
      }
      queued = !dirty_.empty();  // queued while we were busy
    }
    if (stopping_) break;
    if (!queued && timeout_ms > 0) {
      // About to sleep. parked_ goes up first and the queue is looked at again: a message
      // queued in between is either seen here or its sender sees parked_ and wakes us. Only
      // here is it written, not twice per pass: every send reads it, and each write makes the
      // sending core fetch its line again.
      parked_ = true;
      YieldingLock lock(mu_);
      queued = !dirty_.empty();
      if (queued) parked_ = false;
    }
    if (queued) timeout_ms = 0;
    if (queued && ready_.empty() && taken_bytes_ > 0 && taken_bytes_ < kCoalesceBytes) {
      // A stream of small messages: let more gather (see kCoalesceNs). Not parked, so
      // enqueue does not wake us for each of them; a socket event still does.
      pollfd pfd{epfd_, POLLIN, 0};
      timespec pause{0, kCoalesceNs};
      ::ppoll(&pfd, 1, &pause, nullptr);
    }
    taken_bytes_ = 0;
    int n = epoll_wait(epfd_, events, 64, timeout_ms);
    if (parked_.load(std::memory_order_relaxed)) parked_ = false;  // unless a sender took it down
    if (stopping_) break;
    on_events(events, n);
    // The store's answers (the waker woke us for them, or they came meanwhile).
    store_->run_completions();
    std::vector<Channel*> dirty;
    {
      YieldingLock lock(mu_);
      dirty.swap(dirty_);
    }
    for (Channel* ch : dirty) take_incoming(ch);
    std::vector<Channel*> ready;
    ready.swap(ready_);
    for (Channel* ch : ready)
      if (ch->state == State::connected) flush(ch);

    now = Clock::now();
    std::vector<Channel*> all;
    {
      YieldingLock lock(mu_);
      for (auto& kv : channels_) all.push_back(kv.second.get());
    }
    for (Channel* ch : all) {
      if (ch->state == State::connecting && now >= ch->deadline) {
        on_failure(ch, "connect timed out");
      } else if (ch->state == State::backoff && now >= ch->deadline) {
        if (has_work(ch)) {
          start_connect(ch);
        } else {
          ch->state = State::idle;  // the next send tries again
          YieldingLock lock(mu_);
          mark_unreachable_locked(ch, false);
        }
      } else if (ch->state == State::connected && !ch->store_busy &&
                 (!ch->unacked.empty() || ch->queue.has_unpopped) && now >= next_ack_poll(ch)) {
        poll_acks(ch);
      }
      bool room = false;
      bool quiet = now - ch->last_taken >= kPoolIdle;
      if (quiet) ch->returned.clear();  // a quiet channel keeps no buffers
      {
        YieldingLock lock(mu_);
        // After the acks of this pass: room they free is announced now, not a poll period
        // later (the caller may be waiting for exactly this event).
        settle_locked(ch);
        if (quiet) ch->spare.clear();
        size_t count_cap = queue_count_cap();
        room = ch->busy_reported && ch->held_bytes.get() <= queue_bytes_cap() / 2 &&
               (!count_cap || ch->held_count.get() <= count_cap / 2);
        if (room) ch->busy_reported = false;
      }
      if (room) emit(StatusKind::writable, ch, "send queue has room again");
    }
  }
  drain_and_close(Clock::now() + milliseconds(stop_deadline_ms_));
}

void Sender::drain_and_close(Clock::time_point deadline) {
  std::vector<Channel*> all;
  {
    YieldingLock lock(mu_);
    for (auto& kv : channels_) all.push_back(kv.second.get());
  }
  // Waits up to `ms` for a store answer (and runs what came), not for socket events.
  auto await_store = [this](int ms) {
    pollfd pfd{waker_.fd(), POLLIN, 0};
    if (::poll(&pfd, 1, ms) > 0) waker_.drain();
    store_->run_completions();
  };
  // 1. Write what is queued to peers that are connected (or about to be).
  epoll_event events[64];
  for (;;) {
    for (Channel* ch : all) take_incoming(ch);
    store_->run_completions();
    bool busy = false;
    for (Channel* ch : all) {
      if (ch->state == State::connected && (!ch->pending.empty() || !ch->backlog.empty())) {
        flush(ch);
        busy = busy || !ch->pending.empty();
      }
      if (ch->state == State::connecting || ch->state == State::opening || ch->state == State::settling)
        busy = true;
    }
    if (!busy || Clock::now() >= deadline) break;
    int n = epoll_wait(epfd_, events, 64, 10);
    on_events(events, n);
  }
  // 2. Wait until listeners acknowledged what was written, so that a restart of this sender
  //    never reuses a number a listener already delivered (liner_broker 1.3.1 could). Closing
  //    our write side first makes a liner listener write its acks at once.
  for (Channel* ch : all)
    if (ch->state == State::connected && ch->fd >= 0) ::shutdown(ch->fd, SHUT_WR);
  auto ack_deadline = std::max(deadline, Clock::now() + milliseconds(1500));
  for (;;) {
    bool waiting = false;
    for (Channel* ch : all) {
      if (ch->state != State::connected || ch->last_written <= ch->acked) continue;
      waiting = true;
      if (!ch->store_busy && Clock::now() - ch->last_ack_poll >= milliseconds(20)) poll_acks(ch);
    }
    if (!waiting || Clock::now() >= ack_deadline) break;
    await_store(20);
  }
  // 3. Whatever is still unacknowledged goes to the offline queue: each channel's spill waits
  //    for its job in flight, and the worker runs them all before it stops.
  auto store_deadline = std::max(ack_deadline, Clock::now() + milliseconds(5000));
  for (Channel* ch : all) {
    close_socket(ch);
    ch->state = State::idle;
    requeue_unacked(ch);
  }
  std::set<Channel*> spilled;  // once each: a store that refuses is not asked again
  for (;;) {
    bool left = false;
    for (Channel* ch : all) {
      if (ch->pending.empty() || spilled.count(ch)) continue;
      if (ch->store_busy) {
        left = true;
      } else {
        spill(ch, true);
        spilled.insert(ch);
        left = left || ch->store_busy;
      }
    }
    if (!left || Clock::now() >= store_deadline) break;
    await_store(20);
  }
  store_->finish(store_deadline);
  for (Channel* ch : all) {
    {
      YieldingLock lock(mu_);
      settle_locked(ch);
    }
    forget_backlog(ch);
  }
}

}  // namespace liner
