// Writing a channel's segments to its socket, on the sender thread: stored frames before RAM
// ones, frames this connection already carried skipped by number, written at-least-once
// segments retained until the listener's ack covers them, buffers handed back for reuse.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/frame.hpp"
#include "core/sender.hpp"
#include "core/sender_channel.hpp"

namespace liner {
using namespace sender_tuning;

namespace {

using std::chrono::milliseconds;

constexpr size_t kWriteBurst = size_t(4) << 20;  // bytes per channel before yielding
constexpr int kMaxIov = 64;

}  // namespace

void Sender::flush(Channel* ch) {
  size_t burst = 0;
  iovec iov[kMaxIov];
  for (;;) {
    // The next chunk of the offline queue is read while the last one is written (so at most
    // two chunks wait in RAM); with none left to write, the read's answer flushes again.
    if (ch->queue.has_unread && ch->backlog_frames < kBacklogChunk) load_backlog(ch);
    if (ch->backlog.empty() && ch->queue.has_unread) return;
    // Stored messages always go first: they carry lower numbers than anything in RAM.
    bool from_backlog = !ch->backlog.empty();
    std::deque<Segment>& q = from_backlog ? ch->backlog : ch->pending;
    skip_written(ch, q);
    if (q.empty()) {
      if (!from_backlog) return;
      continue;
    }
    int n = 0;
    size_t bytes = 0;
    for (size_t i = 0; i < q.size() && n < kMaxIov && bytes < (size_t(1) << 20); ++i) {
      const Segment& seg = q[i];
      size_t off = i == 0 ? ch->write_offset : 0;
      iov[n].iov_base = const_cast<char*>(seg.bytes.data()) + off;
      iov[n].iov_len = seg.bytes.size() - off;
      bytes += iov[n].iov_len;
      ++n;
    }
    // sendmsg with MSG_NOSIGNAL, not writev: a peer that resets the connection must give this
    // thread EPIPE, not kill the host process with SIGPIPE (C programs rarely ignore it).
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = size_t(n);
    ssize_t w = ::sendmsg(ch->fd, &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        set_events(ch, EPOLLRDHUP | EPOLLOUT);
        return;
      }
      std::string why = std::string("write: ") + std::strerror(errno);
      emit(StatusKind::send_error, ch, why);
      on_failure(ch, why);
      return;
    }
    uint64_t written = advance(ch, q, size_t(w));
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.sent += written;
      stats_.bytes_sent += size_t(w);
    }
    burst += size_t(w);
    if (size_t(w) < bytes) {
      set_events(ch, EPOLLRDHUP | EPOLLOUT);
      return;
    }
    set_events(ch, EPOLLRDHUP);
    if (burst >= kWriteBurst) {
      ready_.push_back(ch);  // let other peers have their turn
      return;
    }
  }
}

void Sender::skip_written(Channel* ch, std::deque<Segment>& q) {
  // Only at a frame boundary: a frame that started going out is finished, whatever its number.
  while (!q.empty() && ch->write_offset == ch->frame_offset) {
    Segment& seg = q.front();
    while (ch->frame_offset < seg.bytes.size()) {
      const char* f = seg.bytes.data() + ch->frame_offset;
      if (frame_number_at(f) > ch->last_written) break;
      ch->frame_offset += frame_size_at(f);
      if (seg.from_store) --ch->backlog_frames;
    }
    ch->write_offset = ch->frame_offset;
    if (ch->write_offset < seg.bytes.size()) return;
    finish_front(ch, q);
  }
}

uint64_t Sender::advance(Channel* ch, std::deque<Segment>& q, size_t written) {
  uint64_t frames = 0;
  while (written > 0) {
    Segment& seg = q.front();
    size_t take = std::min(written, seg.bytes.size() - ch->write_offset);
    ch->write_offset += take;
    written -= take;
    while (ch->frame_offset < ch->write_offset) {
      const char* f = seg.bytes.data() + ch->frame_offset;
      size_t len = frame_size_at(f);
      if (ch->frame_offset + len > ch->write_offset) break;
      ch->last_written = frame_number_at(f);
      ch->frame_offset += len;
      ++frames;
      if (seg.from_store) --ch->backlog_frames;
    }
    if (ch->write_offset == seg.bytes.size()) finish_front(ch, q);
  }
  return frames;
}

void Sender::finish_front(Channel* ch, std::deque<Segment>& q) {
  Segment seg = std::move(q.front());
  q.pop_front();
  ch->write_offset = ch->frame_offset = 0;
  if (seg.at_least_once && !seg.from_store && seg.last > ch->acked) retain(ch, std::move(seg));
  else release(ch, seg);
}

void Sender::retain(Channel* ch, Segment&& seg) {
  ch->unacked_bytes += seg.bytes.size();
  if (!ch->unacked.empty() && seg.bytes.size() <= kSegmentBytes / 4 &&
      ch->unacked.back().bytes.size() + seg.bytes.size() <= kSegmentBytes &&
      ch->unacked.back().handover == seg.handover) {
    Segment& back = ch->unacked.back();
    back.bytes.append(seg.bytes.data(), seg.bytes.size());
    back.last = seg.last;
    back.frames += seg.frames;
    back.cost += seg.cost;
    ch->returned.give(std::move(seg.bytes));
    return;
  }
  ch->unacked.push_back(std::move(seg));
}

void Sender::release_acked(Channel* ch) {
  while (!ch->unacked.empty() && ch->unacked.front().last <= ch->acked) {
    ch->unacked_bytes -= ch->unacked.front().bytes.size();
    release(ch, ch->unacked.front());
    ch->unacked.pop_front();
  }
}

void Sender::release(Channel* ch, Segment& s) {
  if (!s.from_store) {
    ch->released_bytes += s.cost;
    ch->released_count += s.frames;
  }
  ch->returned.give(std::move(s.bytes));
}

void Sender::settle_locked(Channel* ch) {
  if (ch->released_count == 0) return;
  ch->held_bytes.subtract(ch->released_bytes);
  ch->held_count.subtract(ch->released_count);
  ch->released_bytes = ch->released_count = 0;
}

}  // namespace liner
