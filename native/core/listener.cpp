#include "core/listener.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
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

}  // namespace

Listener::Listener(Delivery* delivery, uint32_t max_body_size, std::chrono::milliseconds stall_timeout)
    : delivery_(delivery), max_body_(max_body_size), stall_timeout_(stall_timeout) {}

Listener::~Listener() {
  stop();
  close_connections();
}

Status Listener::bind(const std::string& localhost, std::string* bound) {
  return listen_on(localhost, &listen_fd_, bound);
}

Status Listener::start() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0 || waker_.fd() < 0) return Status(Err::startup, "listener: epoll/eventfd failed");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;  // waker
  epoll_ctl(epfd_, EPOLL_CTL_ADD, waker_.fd(), &ev);
  ev.data.u64 = UINT64_MAX;  // listening socket
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
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
        log_line(std::string("accept: ") + std::strerror(errno));
      return;
    }
    set_nodelay(fd);
    auto c = std::make_unique<Connection>(max_body_);
    c->fd = fd;
    c->id = next_id_++;
    c->last_progress = Clock::now();
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = c->id;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    conns_[c->id] = std::move(c);
  }
}

void Listener::drop(Connection* c, InboundBatch& batch, const std::string& why) {
  if (!why.empty()) log_line("closing connection from a sender: " + why);
  epoll_ctl(epfd_, EPOLL_CTL_DEL, c->fd, nullptr);
  ::shutdown(c->fd, SHUT_RD);
  ::close(c->fd);
  Inbound marker;
  marker.conn_id = c->id;
  marker.closed = true;
  batch.items.push_back(std::move(marker));
  conns_.erase(c->id);
}

void Listener::read_from(Connection* c, InboundBatch& batch) {
  size_t burst = 0;
  while (burst < kReadBurst) {
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
    // arrived.
    const char* lo = block_.get();
    const char* end = lo + n;
    const char* hi = size_t(n) >= kZeroCopyRead ? end : lo;
    bool block_used = false;
    bool ok = c->decoder.feed(reinterpret_cast<const uint8_t*>(lo), size_t(n),
                              [&](const FrameHeader& h, const uint8_t* data) {
      Inbound in;
      in.conn_id = c->id;
      in.header = h;
      const char* d = reinterpret_cast<const char*>(data);
      bool assembled = d < lo || d >= end;
      if (!assembled && d < hi) {
        in.payload = d;
        block_used = true;
      } else if (assembled && h.data_len >= kKeepAssembled &&
                 c->decoder.reserved() <= 2 * (kFrameOverhead + h.data_len)) {
        // Not when the buffer is much bigger than the frame (left from a bigger one).
        batch.frames.push_back(std::make_unique<std::string>(c->decoder.take_frame()));
        const std::string& frame = *batch.frames.back();
        in.payload = frame.data() + kFrameOverhead;
        batch.bytes += frame.capacity();
      } else {
        batch.copies.emplace_back(new char[h.data_len ? h.data_len : 1]);
        std::memcpy(batch.copies.back().get(), d, h.data_len);
        in.payload = batch.copies.back().get();
        batch.bytes += h.data_len;
      }
      batch.bytes += sizeof(Inbound);
      batch.items.push_back(std::move(in));
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

void Listener::loop() {
  InboundBatch batch;
  epoll_event events[128];
  auto last_stall_check = Clock::now();
  const size_t batch_bytes = delivery_->max_batch_bytes();
  while (!stopping_) {
    int n = wait_for_events(events, 128, delivery_->until_ack_due());
    for (int i = 0; i < n && !stopping_; ++i) {
      uint64_t id = events[i].data.u64;
      if (id == 0) {
        waker_.drain();
      } else if (id == UINT64_MAX) {
        accept_all();
      } else {
        auto it = conns_.find(id);
        if (it != conns_.end()) read_from(it->second.get(), batch);
      }
      if (batch.bytes >= batch_bytes) deliver(batch);
    }
    // deliver() flushes acks that fell due; a pass with nothing to deliver checks them alone.
    if (!batch.empty()) deliver(batch);
    else delivery_->tick();
    auto now = Clock::now();
    if (now - last_stall_check >= std::chrono::seconds(1)) {
      last_stall_check = now;
      std::vector<Connection*> stalled;
      for (auto& kv : conns_)
        if (kv.second->decoder.mid_frame() && now - kv.second->last_progress > stall_timeout_)
          stalled.push_back(kv.second.get());
      for (Connection* c : stalled) {
        ++rejected_;
        drop(c, batch, "frame stalled for more than " + std::to_string(stall_timeout_.count()) + " ms");
      }
      if (!batch.empty()) deliver(batch);
    }
  }
  // Stopping: what was read is delivered (best-effort frames have no second chance).
  if (!batch.empty()) deliver(batch);
}

}  // namespace liner
