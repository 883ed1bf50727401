// A channel's connection state machine, on the sender thread: idle -> connecting -> opening
// (the store says where the listener is) -> connected, and on a failure settling (a closing
// listener's last ack) -> backoff -> connecting again. Also what the thread takes from the
// channel's incoming queue each pass.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "core/log.hpp"
#include "core/net.hpp"
#include "core/sender.hpp"
#include "core/sender_channel.hpp"

namespace liner {
using namespace sender_tuning;

namespace {

using std::chrono::milliseconds;

constexpr auto kConnectTimeout = milliseconds(2000);
constexpr int kBackoffFirstMs = 100;
// A returning listener gets its backlog within this without a new send, even when no directory
// notification tells us it is back (a liner_broker peer announces nothing).
constexpr int kBackoffMaxMs = 1000;
constexpr auto kStableConnection = milliseconds(2000);  // up this long: back-off starts over

}  // namespace

void Sender::set_events(Channel* ch, uint32_t events) {
  if (ch->fd < 0 || ch->events == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = ch;
  epoll_ctl(epfd_, ch->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, ch->fd, &ev);
  ch->events = events;
}

void Sender::close_socket(Channel* ch) {
  if (ch->fd < 0) return;
  if (epfd_ >= 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, ch->fd, nullptr);
  ::shutdown(ch->fd, SHUT_WR);
  ::close(ch->fd);
  ch->fd = -1;
  ch->events = 0;
}

bool Sender::has_work(const Channel* ch) const {
  // A job in flight may find work (a spill stores what the next connection must replay).
  return !ch->pending.empty() || !ch->backlog.empty() || ch->queue.may_have_backlog || ch->store_busy;
}

void Sender::take_incoming(Channel* ch) {
  std::deque<Segment> taken;
  bool readdress = false, announced = false, release = false;
  {
    YieldingLock lock(mu_);
    taken.swap(ch->incoming);
    size_t bytes = 0;
    for (const auto& seg : taken) bytes += seg.bytes.size();
    taken_bytes_ += bytes;
    ch->streaming = bytes >= kCoalesceBytes;
    ch->dirty = false;
    // Buffers handed back since the last call: enqueue (on other threads) fills them next.
    ch->returned.move_into(ch->spare);
    std::swap(readdress, ch->readdress);
    std::swap(announced, ch->announced);
    std::swap(release, ch->release);
  }
  if (!taken.empty()) ch->last_taken = Clock::now();
  if (ch->pending.empty()) {
    ch->pending.swap(taken);
  } else {
    for (auto& seg : taken) ch->pending.push_back(std::move(seg));
  }
  if (readdress) {
    // The listener came back on another address: reconnect there at once. Nothing is dropped;
    // what was written but not acknowledged goes out again (the listener deduplicates).
    close_socket(ch);
    forget_backlog(ch);
    requeue_unacked(ch);
    ch->state = State::idle;
    ch->backoff_ms = 0;
  }
  if (announced && ch->state == State::backoff) ch->deadline = Clock::now();
  if (release && (ch->state == State::connecting || ch->state == State::opening || ch->state == State::connected)) {
    // As if the connection failed: what was written and not acknowledged, and what waits,
    // goes to the offline queue (a peer that left may never acknowledge it).
    on_failure(ch, "it left the directory");
    return;
  }
  switch (ch->state) {
    case State::idle:
      if (has_work(ch)) start_connect(ch);
      break;
    case State::backoff:
      if (!ch->pending.empty()) spill(ch);
      break;
    case State::connected:
      flush(ch);
      break;
    case State::connecting:
    case State::opening:   // writes start when the store answered
    case State::settling:  // the ack read decides
      break;
  }
}

void Sender::forget_backlog(Channel* ch) {
  ch->write_offset = ch->frame_offset = 0;
  ch->backlog.clear();  // what it held is still in the store: re-read after the next connect
  ch->backlog_frames = 0;
  ++ch->view_gen;  // a job in flight forgets the view when it answers (post_store)
  if (!ch->store_busy) ch->offline.forget();
  ch->queue.has_unread = ch->queue.has_unpopped = false;
  ch->queue.read_count = 0;
}

void Sender::requeue_unacked(Channel* ch) {
  ch->unacked_bytes = 0;
  while (!ch->unacked.empty()) {
    ch->pending.push_front(std::move(ch->unacked.back()));
    ch->unacked.pop_back();
  }
}

void Sender::start_connect(Channel* ch) {
  std::string addr;
  {
    YieldingLock lock(mu_);
    addr = ch->addr;
  }
  int fd = -1;
  Status s = liner::start_connect(addr, &fd);
  if (!s) {
    on_failure(ch, s.message);
    return;
  }
  ch->fd = fd;
  ch->state = State::connecting;
  ch->deadline = Clock::now() + kConnectTimeout;
  set_events(ch, EPOLLOUT | EPOLLRDHUP);
}

void Sender::on_connected(Channel* ch) {
  // The store says where the listener is (its ack) and what waits in the offline queue: nothing
  // is written until it answered (opened()), so stored messages go out before newer ones.
  forget_backlog(ch);
  ch->state = State::opening;
  set_events(ch, EPOLLRDHUP);
  store_step(ch);
}

void Sender::opened(Channel* ch) {
  // A new connection starts from what the listener acknowledged: anything written after that
  // may not have been read before the old connection died, so it goes out again (the listener
  // drops what it already has).
  ch->last_written = ch->acked;
  ch->state = State::connected;
  ch->connected_at = Clock::now();
  ch->last_ack_poll = Clock::now();
  {
    YieldingLock lock(mu_);
    mark_unreachable_locked(ch, false);
    ch->connected = true;
  }
  emit(StatusKind::peer_connected, ch, "connected");
  flush(ch);
}

void Sender::on_failure(Channel* ch, const std::string& why) {
  // A listener that stops gracefully acknowledges everything it delivered as it closes: read
  // that before calling what was written "in flight" (settling).
  if (ch->state == State::connected && ch->pending.empty() && !ch->unacked.empty()) {
    close_socket(ch);
    ch->state = State::settling;
    int32_t ck = ch->ck;
    bool posted = post_store(ch, [this, ch, ck, why](Store& store) -> StoreThen {
      AckCounter counter;
      Status s = store.read_ack(ck, true, &counter);
      return [=](bool) {
        if (ch->state != State::settling) return;  // readdressed meanwhile
        if (s) {
          note_ack(ch, counter);
          release_acked(ch);
        }
        fail(ch, why, true);
      };
    });
    if (posted) return;
  }
  fail(ch, why, ch->state == State::connected || ch->state == State::settling);
}

void Sender::fail(Channel* ch, const std::string& why, bool was_connected) {
  bool in_flight = !ch->pending.empty() || !ch->unacked.empty();
  if (was_connected && !in_flight && ch->backlog.empty() && !ch->queue.may_have_backlog) {
    // Closed with nothing in flight: a listener closing an idle connection, or stopping. Not a
    // failure: the peer stays reachable (a best-effort send is not dropped) and the next
    // message connects again at once; a peer that is really gone fails that connect.
    close_socket(ch);
    forget_backlog(ch);
    ch->state = State::idle;
    ch->backoff_ms = 0;
    {
      YieldingLock lock(mu_);
      ch->connected = false;
    }
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++stats_.reconnects;
    }
    emit(StatusKind::peer_disconnected, ch, why);
    return;
  }
  // A peer that accepts and then drops us at once keeps backing off; one that served us for a
  // while gets a quick retry.
  if (was_connected && Clock::now() - ch->connected_at >= kStableConnection) ch->backoff_ms = 0;
  close_socket(ch);
  ch->state = State::backoff;
  ch->backoff_ms = ch->backoff_ms ? std::min(ch->backoff_ms * 2, kBackoffMaxMs) : kBackoffFirstMs;
  ch->deadline = Clock::now() + milliseconds(ch->backoff_ms);
  forget_backlog(ch);
  {
    YieldingLock lock(mu_);
    mark_unreachable_locked(ch, true);
    ch->connected = false;
  }
  if (was_connected) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.reconnects;
  }
  bool news = (was_connected && in_flight) || (!was_connected && ch->backoff_ms == kBackoffFirstMs);
  if (news) log_line("peer " + ch->addr + " unreachable (" + why + "); retrying with back-off");
  if (was_connected) emit(StatusKind::peer_disconnected, ch, why);
  if (news) emit(StatusKind::route_lost, ch, why);
  // Written but unacknowledged at-least-once messages go back in front of the queue; spill()
  // moves them to the offline queue.
  requeue_unacked(ch);
  spill(ch, true);
}

}  // namespace liner
