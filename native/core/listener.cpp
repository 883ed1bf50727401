#include "core/listener.hpp"

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/log.hpp"
#include "core/thread.hpp"

namespace liner {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kReadBurst = size_t(1) << 20;     // per connection per wake-up, for fairness
constexpr size_t kZeroCopyRead = BlockPool::kBlockSize / 4;  // a read at least this full is kept
constexpr size_t kKeepAssembled = 16 * 1024;  // a frame this big is not copied out of the decoder

// The default cap. A liner listener holds one connection per peer that sends to it (a Sender
// keeps one per destination), so 4,096 serves a mesh of 4,096 peers; beyond that, a peer is
// more likely a leak or an attack than a member. Under a lower descriptor limit the cap is
// half the soft RLIMIT_NOFILE: a liner process is a sender too, and in a mesh it holds about
// as many outgoing connections as incoming ones, besides its store connections and whatever
// the application itself opens. (Redis caps at 10,000 and rlimit - 32; nginx at its
// worker_connections; both keep descriptors back for the rest of the process likewise.)
constexpr size_t kMaxConnections = 4096;
// Accept back-off after EMFILE and the like: short enough that a descriptor freed elsewhere
// is used soon, long enough that a process at its limit spends nothing on retries.
constexpr auto kAcceptBackoffFirst = std::chrono::milliseconds(100);
constexpr auto kAcceptBackoffMax = std::chrono::milliseconds(1000);
// Connections accepted per wake-up, so that a connect flood cannot starve the reads.
constexpr int kAcceptBurst = 128;
// epoll data of the two eventfds; connection ids count up from 1 and never reach them.
constexpr uint64_t kWakerId = 0;
constexpr uint64_t kStoreCompletionsId = UINT64_MAX - 1;
constexpr uint64_t kListeningId = UINT64_MAX;
// At most one line per kind of repeated event per this period.
// The stall and idle checks run this often (or four times per idle timeout, if shorter).
constexpr auto kSweepPeriod = std::chrono::milliseconds(1000);
constexpr auto kSweepPeriodMin = std::chrono::milliseconds(10);

// A non-negative integer from the environment; a malformed one is reported and ignored.
bool env_number(const char* name, uint64_t* out) {
  const char* text = std::getenv(name);
  if (!text || !*text) return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || text[0] == '-' || text[0] == '+' || text[0] == ' ') {
    log_line(std::string("ignoring ") + name + "=" + text + ": not a non-negative integer");
    return false;
  }
  *out = uint64_t(v);
  return true;
}

size_t default_max_connections() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return kMaxConnections;
  return std::max<size_t>(1, std::min<size_t>(kMaxConnections, size_t(rl.rlim_cur / 2)));
}

std::chrono::microseconds until(Clock::time_point deadline, Clock::time_point now) {
  using std::chrono::microseconds;
  return std::max(microseconds(0), std::chrono::ceil<microseconds>(deadline - now));
}

}  // namespace

Listener::Listener(Delivery* delivery, uint32_t max_body_size,
                   std::chrono::milliseconds stall_timeout, ListenerOptions options)
    : delivery_(delivery), max_body_(max_body_size), stall_timeout_(stall_timeout),
      options_(options) {}

Listener::~Listener() {
  stop();
  close_connections();
}

Status Listener::bind(const std::string& localhost, std::string* bound) {
  return listen_on(localhost, &listen_fd_, bound);
}

Status Listener::start() {
  uint64_t v = 0;
  size_t cap = options_.max_connections ? options_.max_connections : default_max_connections();
  if (env_number("LINER_LISTENER_MAX_CONNECTIONS", &v)) {
    if (v > 0) cap = size_t(v);
    else log_line("ignoring LINER_LISTENER_MAX_CONNECTIONS=0: the cap must be at least 1");
  }
  max_connections_ = cap;
  idle_timeout_ = options_.idle_timeout;
  // Capped at ten years, which is "never" and keeps clock arithmetic far from overflow.
  if (env_number("LINER_LISTENER_IDLE_MS", &v))
    idle_timeout_ = std::chrono::milliseconds(std::min<uint64_t>(v, uint64_t(315360000000)));
  sweep_period_ = kSweepPeriod;
  if (idle_timeout_.count() > 0)
    sweep_period_ = std::clamp<std::chrono::milliseconds>(idle_timeout_ / 4, kSweepPeriodMin,
                                                          kSweepPeriod);
  accepting_ = true;
  accept_backoff_ = std::chrono::milliseconds(0);

  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0 || waker_.fd() < 0) return Status(Err::startup, "listener: epoll/eventfd failed");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakerId;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, waker_.fd(), &ev);
  ev.data.u64 = kStoreCompletionsId;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, delivery_->store_completions_fd(), &ev) != 0)
    return Status(Err::startup, "listener: cannot watch the store completions");
  ev.data.u64 = kListeningId;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  stopping_ = false;
  return start_thread(&thread_, "lnr-listener", [this] { loop(); });
}

void Listener::stop() {
  stopping_ = true;
  waker_.wake();
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
}

void Listener::close_connections() {
  for (auto& kv : conns_) {
    ::shutdown(kv.second->fd, SHUT_RD);
    ::close(kv.second->fd);
  }
  conns_.clear();
  if (epfd_ >= 0) {
    ::close(epfd_);
    epfd_ = -1;
  }
}

void Listener::accept_all() {
  for (int i = 0; i < kAcceptBurst; ++i) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) return;
      if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        pause_accepting(e);
        return;
      }
      // EINTR, ECONNABORTED and the network errors Linux passes on (accept(2)) concern one
      // pending connection, which is gone: go on with the next.
      if (e != EINTR && e != ECONNABORTED) {
        accept_errno_ = e;
        ++accept_failed_log_.pending;
      }
      continue;
    }
    accept_backoff_ = std::chrono::milliseconds(0);
    if (conns_.size() >= max_connections_.load(std::memory_order_relaxed)) {
      refuse(fd);
      continue;
    }
    set_nodelay(fd);
    auto c = std::make_unique<Connection>(max_body_);
    c->fd = fd;
    c->id = next_id_++;
    c->last_progress = Clock::now();
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = c->id;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      // ENOMEM, or ENOSPC (fs.epoll.max_user_watches): a connection never watched would
      // never be read. Refuse it and give the kernel time, as for EMFILE.
      int e = errno;
      refuse(fd);
      pause_accepting(e);
      return;
    }
    conns_[c->id] = std::move(c);
  }
}

void Listener::refuse(int fd) {
  // A reset rather than an orderly close: the peer learns at once, and nothing of a connection
  // that was never served lingers in TIME_WAIT here.
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(fd);
  ++rejected_;
  ++refused_log_.pending;
}

void Listener::pause_accepting(int err) {
  accept_errno_ = err;
  ++accept_failed_log_.pending;
  accept_backoff_ = accept_backoff_.count() == 0 ? kAcceptBackoffFirst
                                                 : std::min(accept_backoff_ * 2, kAcceptBackoffMax);
  accept_resume_at_ = Clock::now() + accept_backoff_;
  // MOD to no events rather than DEL: re-arming then allocates nothing, which matters when
  // memory is what ran out. A listening socket reports neither EPOLLHUP nor EPOLLERR, the two
  // events epoll reports regardless of the mask.
  if (accepting_) watch_listening(false);
}

void Listener::watch_listening(bool accepting) {
  epoll_event ev{};
  ev.events = accepting ? uint32_t(EPOLLIN) : 0u;
  ev.data.u64 = kListeningId;
  epoll_ctl(epfd_, EPOLL_CTL_MOD, listen_fd_, &ev);
  accepting_ = accepting;
}

void Listener::resume_accepting_if_due(Clock::time_point now) {
  if (accepting_ || now < accept_resume_at_) return;
  watch_listening(true);
  accept_all();  // at once: a pending connection would otherwise wait for the next epoll pass
}

void Listener::drop(Connection* c, InboundBatch& batch, const std::string& why) {
  if (!why.empty()) log_line("closing connection from a sender: " + why);
  epoll_ctl(epfd_, EPOLL_CTL_DEL, c->fd, nullptr);  // ENOENT when parked: harmless
  ::shutdown(c->fd, SHUT_RD);
  ::close(c->fd);
  // Held frames are discarded (never verified, never acknowledged); their memory goes with
  // the batch, which may hold frames released from it before.
  InboundBatch& held = c->held;
  for (auto& block : held.blocks) batch.blocks.push_back(std::move(block));
  for (auto& copy : held.copies) batch.copies.push_back(std::move(copy));
  for (auto& frame : held.frames) batch.frames.push_back(std::move(frame));
  batch.bytes += held.bytes;
  Inbound marker;
  marker.conn_id = c->id;
  marker.closed = true;
  batch.items.push_back(std::move(marker));
  conns_.erase(c->id);
}

void Listener::read_from(Connection* c, InboundBatch& batch) {
  size_t burst = 0;
  while (burst < kReadBurst && !c->parked) {
    if (!block_) block_ = pool_.take();
    ssize_t n = ::read(c->fd, block_.get(), BlockPool::kBlockSize);
    if (n == 0) {
      if (c->decoder.mid_frame()) {
        ++rejected_;
        drop(c, batch, "stream ended in the middle of a frame");
      } else {
        drop(c, batch, "");
      }
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      drop(c, batch, std::string("read: ") + std::strerror(errno));
      return;
    }
    burst += size_t(n);
    c->last_progress = Clock::now();
    // Whole frames of a well-filled read are delivered from the block itself. A frame that
    // straddled two reads is completed in the decoder's own buffer: a big one keeps that
    // buffer, a small one is copied. A short read (a quiet or slow peer) has its frames copied
    // too, so that a few bytes never pin a whole block: memory stays in proportion to what
    // arrived. Frames of a parked connection are copied as well (into `held`): the block goes
    // on to the batch, they stay behind.
    const char* lo = block_.get();
    const char* end = lo + n;
    const char* hi = size_t(n) >= kZeroCopyRead ? end : lo;
    bool block_used = false;
    bool parked_now = false;
    bool ok = c->decoder.feed(reinterpret_cast<const uint8_t*>(lo), size_t(n),
                              [&](const FrameHeader& h, const uint8_t* data) {
      if (!c->parked && !c->is_verified(h.connection_key)) {
        // The look-up starts once the decoder is done with this read (park()).
        c->parked = parked_now = true;
        c->looking_up = h.connection_key;
      }
      InboundBatch& into = c->parked ? c->held : batch;
      Inbound in;
      in.conn_id = c->id;
      in.header = h;
      if (!data) {  // above our max message size: its body is being skipped (frame.hpp)
        in.oversize = true;
        into.bytes += sizeof(Inbound);
        into.items.push_back(std::move(in));
        return;
      }
      const char* d = reinterpret_cast<const char*>(data);
      bool assembled = d < lo || d >= end;
      if (!assembled && d < hi && !c->parked) {
        in.payload = d;
        block_used = true;
      } else if (assembled && h.data_len >= kKeepAssembled &&
                 c->decoder.reserved() <= 2 * (kFrameOverhead + h.data_len)) {
        // Not when the buffer is much bigger than the frame (left from a bigger one).
        into.frames.push_back(std::make_unique<std::string>(c->decoder.take_frame()));
        const std::string& frame = *into.frames.back();
        in.payload = frame.data() + kFrameOverhead;
        into.bytes += frame.capacity();
      } else {
        into.copies.emplace_back(new char[h.data_len ? h.data_len : 1]);
        std::memcpy(into.copies.back().get(), d, h.data_len);
        in.payload = into.copies.back().get();
        into.bytes += h.data_len;
      }
      into.bytes += sizeof(Inbound);
      into.items.push_back(std::move(in));
    });
    if (block_used) {
      batch.bytes += BlockPool::kBlockSize;
      batch.blocks.push_back(std::move(block_));
    }
    if (!ok) {
      ++rejected_;
      drop(c, batch, c->decoder.error());
      return;
    }
    if (parked_now) {
      park(c, batch);  // may drop it: c is not touched after
      return;
    }
  }
}

void Listener::park(Connection* c, InboundBatch& batch) {
  if (!delivery_->look_up(c->looking_up, c->id)) {  // refused (Delivery logged why)
    ++rejected_;
    drop(c, batch, "");
    return;
  }
  epoll_ctl(epfd_, EPOLL_CTL_DEL, c->fd, nullptr);
}

void Listener::take_look_up_answers(InboundBatch& batch) {
  answers_.clear();
  delivery_->run_store_completions(answers_);
  for (const LookUpAnswer& a : answers_) {
    auto it = conns_.find(a.conn_id);
    if (it == conns_.end()) continue;  // dropped meanwhile (Delivery refused it)
    Connection* c = it->second.get();
    if (!c->parked || c->looking_up != a.connection_key) continue;
    if (!a.accepted) {  // Delivery logged and reported why
      ++rejected_;
      drop(c, batch, "");
      continue;
    }
    c->verified.push_back(a.connection_key);
    release_held(c, batch);
  }
}

void Listener::release_held(Connection* c, InboundBatch& batch) {
  InboundBatch& held = c->held;
  for (; c->held_released < held.items.size(); ++c->held_released) {
    const Inbound& in = held.items[c->held_released];
    if (!c->is_verified(in.header.connection_key)) {
      // Another channel on the same connection: still parked, until that one is answered.
      c->looking_up = in.header.connection_key;
      if (!delivery_->look_up(c->looking_up, c->id)) {
        ++rejected_;
        drop(c, batch, "");
      }
      return;
    }
    batch.items.push_back(in);
  }
  // Every held frame is in a batch now, pointing into `held`'s memory: that memory goes with
  // this batch, which is delivered after (or with) the batches that took the earlier ones.
  for (auto& copy : held.copies) batch.copies.push_back(std::move(copy));
  for (auto& frame : held.frames) batch.frames.push_back(std::move(frame));
  for (auto& block : held.blocks) batch.blocks.push_back(std::move(block));
  batch.bytes += held.bytes;
  held = InboundBatch();  // frees its vectors: a connection is seldom parked twice
  c->held_released = 0;
  c->parked = false;
  c->last_progress = Clock::now();  // its wait was the store's, not the peer's
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u64 = c->id;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
    // ENOMEM or ENOSPC: a connection never watched again would never be read.
    ++rejected_;
    drop(c, batch, std::string("cannot watch it again: ") + std::strerror(errno));
  }
}

int Listener::wait_for_events(epoll_event* events, int max, std::chrono::microseconds timeout) {
  // Ack flushes fall due at sub-millisecond gaps: epoll_pwait2 takes a timespec. Kernels before
  // 5.11 lack it; epoll_wait then sleeps whole milliseconds, rounded up (rounding down would
  // spin until the flush is due).
  if (have_pwait2_) {
    timespec ts{time_t(timeout.count() / 1000000), long(timeout.count() % 1000000) * 1000};
    int n = epoll_pwait2(epfd_, events, max, &ts, nullptr);
    if (n >= 0 || errno != ENOSYS) return n;
    have_pwait2_ = false;
  }
  return epoll_wait(epfd_, events, max, int((timeout.count() + 999) / 1000));
}

void Listener::deliver(InboundBatch& batch) {
  delivery_->deliver(batch);
  std::vector<uint64_t> refused;
  refused.swap(batch.refused);
  for (auto& block : batch.blocks) pool_.give(std::move(block));
  batch.clear();
  // Connections whose stream Delivery refused (delivery.hpp): closed, so that their sender
  // keeps the messages and tries again. Their closed markers go out with the next batch.
  for (uint64_t id : refused) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    ++rejected_;
    drop(it->second.get(), batch, "");
  }
}

void Listener::sweep(InboundBatch& batch, Clock::time_point now) {
  std::vector<Connection*> stalled, idle;
  for (auto& kv : conns_) {
    Connection* c = kv.second.get();
    if (c->parked) continue;  // waiting for the store, not for its peer
    auto quiet = now - c->last_progress;
    if (c->decoder.mid_frame()) {
      if (quiet > stall_timeout_) stalled.push_back(c);
    } else if (idle_timeout_.count() > 0 && quiet > idle_timeout_) {
      idle.push_back(c);
    }
  }
  for (Connection* c : stalled) {
    ++rejected_;
    drop(c, batch, "frame stalled for more than " + std::to_string(stall_timeout_.count()) + " ms");
  }
  for (Connection* c : idle) drop(c, batch, "");
  idle_closed_ += idle.size();
  idle_log_.pending += idle.size();
}

void Listener::log_due(Clock::time_point now) {
  if (refused_log_.due(now)) {
    uint64_t n = refused_log_.take(now);
    log_line("refused " + std::to_string(n) + " connection(s) since the last such line: " +
             std::to_string(conns_.size()) + " open, the cap is " +
             std::to_string(max_connections_.load()) + " (LINER_LISTENER_MAX_CONNECTIONS)");
  }
  if (accept_failed_log_.due(now)) {
    uint64_t n = accept_failed_log_.take(now);
    std::string line = std::string("accept: ") + std::strerror(accept_errno_) + " (" +
                       std::to_string(n) + " failure(s) since the last such line), " +
                       std::to_string(conns_.size()) + " connections open";
    if (!accepting_)
      line += "; not accepting for " + std::to_string(accept_backoff_.count()) + " ms";
    log_line(line);
  }
  if (idle_log_.due(now)) {
    uint64_t n = idle_log_.take(now);
    log_line("closed " + std::to_string(n) + " connection(s) that carried nothing for " +
             std::to_string(idle_timeout_.count()) +
             " ms (LINER_LISTENER_IDLE_MS), since the last such line");
  }
}

void Listener::loop() {
  InboundBatch batch;
  epoll_event events[128];
  auto next_sweep = Clock::now() + sweep_period_;
  const size_t batch_bytes = delivery_->max_batch_bytes();
  while (!stopping_) {
    // Sleep until an ack flush, the next sweep or the end of an accept back-off is due.
    auto now = Clock::now();
    auto timeout = std::min(delivery_->until_ack_due(), until(next_sweep, now));
    if (!accepting_) timeout = std::min(timeout, until(accept_resume_at_, now));
    int n = wait_for_events(events, 128, timeout);
    for (int i = 0; i < n && !stopping_; ++i) {
      uint64_t id = events[i].data.u64;
      if (id == kWakerId) {
        waker_.drain();
      } else if (id == kStoreCompletionsId) {
        take_look_up_answers(batch);
      } else if (id == kListeningId) {
        if (accepting_) accept_all();
      } else {
        auto it = conns_.find(id);
        if (it != conns_.end()) read_from(it->second.get(), batch);
      }
      if (batch.bytes >= batch_bytes) deliver(batch);
    }
    // deliver() flushes acks that fell due; a pass with nothing to deliver checks them alone.
    if (!batch.empty()) deliver(batch);
    else delivery_->tick();
    now = Clock::now();
    resume_accepting_if_due(now);
    if (now >= next_sweep) {
      next_sweep = now + sweep_period_;
      sweep(batch, now);
      if (!batch.empty()) deliver(batch);
    }
    log_due(now);
  }
  // Stopping: what was read is delivered (best-effort frames have no second chance).
  if (!batch.empty()) deliver(batch);
}

}  // namespace liner
