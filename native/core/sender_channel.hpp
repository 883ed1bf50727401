// Internal to the sender (sender*.cpp): one peer's channel, and the tuning its parts share.
//
// A channel's fields fall into three zones, by owner:
//  - fixed at creation (ck, listener_unique);
//  - guarded by Sender::mu_: what API threads touch (address, topics, the incoming segments,
//    the numbering, the held-bytes/count accounting and flags the sender thread picks up);
//  - the sender thread's alone: connection state, socket, what is written and unacknowledged,
//    the replay backlog; and the offline-queue view, which the store worker owns while a job
//    of this channel runs (store_busy), the sender thread otherwise.
// Invariants: frames leave in number order, stored ones (lower numbers) before RAM ones; a
// written at-least-once segment is retained (unacked) until the listener's ack covers its last
// number, then released; held_bytes/held_count count every RAM frame not yet released.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <set>
#include <string>

#include "core/buffer_pool.hpp"
#include "core/cache_line.hpp"
#include "core/counter.hpp"
#include "core/offline_queue.hpp"
#include "core/sender.hpp"

namespace liner {
namespace sender_tuning {

// Bookkeeping a queued message counts against the per-peer cap on top of its frame.
constexpr size_t kPerMessageOverhead = 64;
// Frames are packed into segments of up to this many bytes (a bigger frame has one of its
// own). Written segments of at most a quarter of this are packed together while they wait for
// their ack, so a trickle of messages does not hold one buffer each.
constexpr size_t kSegmentBytes = 64 * 1024;
// Buffers kept for reuse, per channel and each way: an at-least-once stream holds a few
// milliseconds of traffic until its ack, and recycling that much spares malloc the page faults
// of fresh memory.
constexpr size_t kSegmentPoolBytes = size_t(8) << 20;
// Buffers up to this size go round: a stream of frames a little over a segment (64 KiB
// messages) reuses its buffers too, instead of a fresh, page-faulting one per message.
constexpr size_t kPooledBuffer = 2 * kSegmentBytes;
// After a failed ack poll or spill: the store is down, do not ask it at every send.
constexpr auto kAckPollRetry = std::chrono::milliseconds(100);
// A pass that took less than this coalesces the next one (sender_loop.cpp).
constexpr size_t kCoalesceBytes = 32 * 1024;
// Offline-queue frames read at a time.
constexpr uint64_t kBacklogChunk = 1024;

}  // namespace sender_tuning

struct Sender::Channel {
  // Fixed at creation.
  int32_t ck = 0;
  std::string listener_unique;

  // Guarded by Sender::mu_.
  std::string addr;
  std::set<std::string> topics;
  std::set<std::string> forgotten;  // unsubscribed: a send racing the directory must not re-add
  std::string last_topic;           // cheap check before touching `topics` on every send
  int32_t last_topic_key = 0;       // its key, cheaper still (0: compare the names)
  std::string first_topic;
  uint64_t last_number = 0;  // last number_mess handed out
  bool busy_reported = false;  // a busy event went out; a writable one follows when there is room
  bool connected = false;      // mirror of state, for introspection
  std::deque<Segment> incoming;
  bool dirty = false;
  bool unreachable = false;
  bool readdress = false;
  bool announced = false;
  bool release = false;  // the peer left the directory: release_peer()
  // The caller is streaming (a segment filled up, or the last pass took a coalesced batch):
  // new segments start at full size. Growing one from kFirstSegmentReserve by doubling would
  // fault in and copy nearly twice its bytes, and a stream's segments fill up anyway.
  bool streaming = false;
  // Added to by enqueue on every send and settled by the sender thread once per pass, both
  // under Sender::mu_; read without it where a moment-old value will do. On a cache line of
  // their own, so that the sender thread's per-message work does not bounce it.
  alignas(kCacheLine) RelaxedCounter held_bytes;
  RelaxedCounter held_count;
  BufferPool spare{sender_tuning::kSegmentPoolBytes, sender_tuning::kPooledBuffer};  // for enqueue to fill

  // Sender thread only.
  alignas(kCacheLine) State state = State::idle;
  size_t released_bytes = 0;  // released since the last settle_locked(): held_* still count them
  size_t released_count = 0;
  int fd = -1;
  uint32_t events = 0;
  Clock::time_point deadline{};  // connect timeout or end of back-off
  int backoff_ms = 0;
  Clock::time_point connected_at{};
  std::deque<Segment> pending;  // RAM messages not yet written, in number order
  size_t write_offset = 0;      // bytes of the front segment (of pending or backlog) written
  size_t frame_offset = 0;      // where its first frame not completely written starts
  std::deque<Segment> backlog;  // frames read from the offline queue, not yet written
  size_t backlog_frames = 0;    // frames in backlog not yet completely written
  std::deque<Segment> unacked;  // written segments holding at-least-once RAM messages
  size_t unacked_bytes = 0;       // their size
  bool ack_poll_failed = false;   // the last poll could not reach the store
  bool ack_unreadable_reported = false;  // the counter held garbage, and we said so
  uint64_t acked = 0;              // listener's ack as last read
  uint64_t last_written = 0;
  // What waits in the store, and what of it this connection read. Touched by one thread at a
  // time: the store worker while a job of this channel runs (store_busy), else this thread.
  OfflineQueue offline;
  bool store_busy = false;  // a store job of this channel is in flight
  // Bumped when the view of `offline` is dropped (forget_backlog); the worker reads it to stop
  // a replay read whose connection is gone.
  std::atomic<uint64_t> view_gen{0};
  // `offline` as of the last job's answer: what the sender thread reads while one runs.
  struct QueueView {
    bool may_have_backlog = true;
    bool has_unread = false;
    bool has_unpopped = false;
    uint64_t read_count = 0;
  } queue;
  Clock::time_point spill_failed_at{};  // the last spill the store refused
  Clock::time_point last_ack_poll{};
  BufferPool returned{sender_tuning::kSegmentPoolBytes, sender_tuning::kPooledBuffer};  // moved to `spare` under mu_
  Clock::time_point last_taken{};  // when take_incoming last found messages
};

// Under mu_: the sender thread looks at `ch` on its next pass (take_incoming).
inline void Sender::mark_dirty_locked(Channel* ch) {
  if (ch->dirty) return;
  ch->dirty = true;
  dirty_.push_back(ch);
}

}  // namespace liner
