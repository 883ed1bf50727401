#include "core/sender.hpp"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "core/ack_window.hpp"
#include "core/counter.hpp"
#include "core/frame.hpp"
#include "core/log.hpp"
#include "core/offline_queue.hpp"
#include "core/thread.hpp"

namespace liner {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto kConnectTimeout = milliseconds(2000);
constexpr int kBackoffFirstMs = 100;
// A returning listener gets its backlog within this without a new send, even when no directory
// notification tells us it is back (a liner_broker peer announces nothing).
constexpr int kBackoffMaxMs = 1000;
constexpr auto kAckPoll = milliseconds(1000);         // as liner_broker's sender
// A queue under pressure may be one stopped at its cap: the listener acks its pause that often.
constexpr auto kAckPollUnderPressure = kAckIdleFlushGap;
constexpr auto kAckPollRetry = milliseconds(100);  // after a failed poll: the store is down
constexpr size_t kPerMessageOverhead = 64;            // bookkeeping counted against the cap
constexpr size_t kWriteBurst = size_t(4) << 20;       // bytes per channel before yielding
constexpr uint64_t kBacklogChunk = 1024;
// One replay job reads this many chunks at most, and stops after this many bytes.
constexpr int kReadAheadChunks = 4;
constexpr size_t kReadAheadBytes = size_t(4) << 20;              // offline-queue frames read at a time
constexpr size_t kEncodeUnderLock = 64 * 1024;
// Frames are packed into segments of up to this many bytes (a bigger frame has one of its
// own). Written segments of at most a quarter of this are packed together while they wait for
// their ack, so a trickle of messages does not hold one buffer each.
constexpr size_t kSegmentBytes = 64 * 1024;
constexpr size_t kFirstSegmentReserve = 4 * 1024;
// Buffers kept for reuse, per channel and each way: an at-least-once stream holds a few
// milliseconds of traffic until its ack, and recycling that much spares malloc the page faults
// of fresh memory. Given back once the channel has been quiet for kPoolIdle.
constexpr size_t kSegmentPoolBytes = size_t(8) << 20;
constexpr auto kPoolIdle = std::chrono::seconds(5);
// Buffers up to this size go round: a stream of frames a little over a segment (64 KiB
// messages) reuses its buffers too, instead of a fresh, page-faulting one per message.
constexpr size_t kPooledBuffer = 2 * kSegmentBytes;
constexpr int kMaxIov = 64;
// While a caller streams messages faster than they go out one pass at a time, the thread waits
// this long before taking them, so that they leave in one write (and wake the listener once)
// instead of a write per handful. Only when the previous pass took less than kCoalesceBytes:
// a lone message, or the first after a pause, goes out at once.
constexpr long kCoalesceNs = 50 * 1000;
constexpr size_t kCoalesceBytes = 32 * 1024;
constexpr uint64_t kResumeGap = uint64_t(1) << 24;
constexpr auto kStableConnection = milliseconds(2000);  // up this long: back-off starts over

}  // namespace

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
  BufferPool spare{kSegmentPoolBytes, kPooledBuffer};  // for enqueue to fill

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
  BufferPool returned{kSegmentPoolBytes, kPooledBuffer};  // moved to `spare` under mu_
  Clock::time_point last_taken{};  // when take_incoming last found messages
};

// One job per channel at most (post_store), so this bounds nothing a real mesh reaches; it
// keeps the worker's queue bounded all the same.
constexpr size_t kStoreJobsMax = 65536;

Sender::Sender(SenderOptions options, std::unique_ptr<Store> store)
    : opt_(std::move(options)),
      store_(new StoreWorker(std::move(store), kStoreJobsMax, [this] { waker_.wake(); })) {}

Sender::~Sender() {
  if (thread_.joinable()) stop(milliseconds(0));
  for (auto& kv : channels_) close_socket(kv.second.get());
  if (epfd_ >= 0) ::close(epfd_);
}

Status Sender::start() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0 || waker_.fd() < 0) return Status(Err::startup, "sender: epoll/eventfd failed");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, waker_.fd(), &ev);
  stopping_ = false;
  Status s = store_->start("lnr-sstore");
  if (!s) return s;
  return start_thread(&thread_, "lnr-sender", [this] { loop(); });
}

void Sender::stop(milliseconds drain) {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<AdaptiveMutex> lock(mu_);
    stop_deadline_ms_ = drain.count();
  }
  stopping_ = true;
  waker_.wake();
  thread_.join();
}

Status Sender::open_channel(Store& store, const std::string& addr, const std::string& listener_unique,
                            const std::string& topic) {
  {
    std::lock_guard<AdaptiveMutex> lock(mu_);
    auto it = by_addr_.find(addr);
    if (it != by_addr_.end()) {
      it->second->topics.insert(topic);
      return Status();
    }
  }
  int32_t ck = 0;
  bool found = false, found_existing = false;
  Status s = store.connection_key(opt_.unique_name, opt_.source_topic, listener_unique, false, &ck, &found);
  found_existing = s && found;
  if (s && !found)
    s = store.connection_key(opt_.unique_name, opt_.source_topic, listener_unique, true, &ck, &found);
  uint64_t acked = 0;
  std::string last_frame;
  bool has_stored = false;
  AckCounter counter;
  if (s) s = store.read_ack(ck, true, &counter);
  if (s && counter.unreadable) report_unreadable_ack(ck, addr);
  acked = counter.number;
  bool counter_existed = counter.existed;
  if (s) s = store.last_stored_message(ck, &last_frame, &has_stored);
  if (s) s = store.save_listener_for_sender(opt_.unique_name, opt_.source_topic, addr, topic, listener_unique);
  if (s) s = store.set_sender_topic(ck, opt_.source_topic);
  if (!s) return s;
  uint64_t last = acked;
  if (has_stored) {
    FrameHeader h;
    const uint8_t* data = nullptr;
    std::string err;
    if (decode_stored_frame(last_frame, &h, &data, &err)) last = std::max(last, h.number_mess);
  }
  // Resuming a channel whose key and counter existed (clear_stored_messages deletes the
  // counter: a cleared channel starts over from 1): an earlier incarnation of this sender may have died
  // (even before any ack was written) with frames past the ack that the listener has yet to
  // deliver, and a listener drops any number it has already seen. Skipping ahead by more than
  // can be in flight (queue caps, socket and delivery buffers) means a restarted sender never
  // reuses one. Listeners only need numbers to grow, so the gap is harmless; u64 leaves room
  // for 2^40 restarts.
  if (found_existing && (counter_existed || has_stored)) last += kResumeGap;

  bool wake = false;
  {
    std::lock_guard<AdaptiveMutex> lock(mu_);
    if (by_addr_.count(addr)) {  // another thread won the race
      by_addr_[addr]->topics.insert(topic);
      return Status();
    }
    auto it = channels_.find(ck);
    Channel* ch;
    if (it != channels_.end()) {
      // Same listener identity on a new address: the peer moved. Keep numbering and queue.
      ch = it->second.get();
      by_addr_.erase(ch->addr);
      ch->addr = addr;
      ch->readdress = true;
      ch->unreachable = false;  // a new address deserves a fresh try
    } else {
      auto fresh = std::make_unique<Channel>();
      ch = fresh.get();
      ch->ck = ck;
      ch->listener_unique = listener_unique;
      ch->first_topic = topic;
      ch->addr = addr;
      ch->last_number = last;
      ch->acked = acked;
      ch->last_written = acked;
      ch->offline = OfflineQueue(ck);
      if (!has_stored) ch->offline.open_empty();
      ch->queue.may_have_backlog = has_stored;
      channels_[ck] = std::move(fresh);
    }
    ch->topics.insert(topic);
    by_addr_[addr] = ch;
    // A known channel is the sender thread's (readdress tells it); a new one may have a backlog.
    if (ch->readdress || (it == channels_.end() && has_stored)) {
      mark_dirty_locked(ch);
      wake = true;
    }
  }
  if (wake) waker_.wake();
  return Status();
}

std::string Sender::address_of(const std::string& listener_unique) const {
  std::lock_guard<AdaptiveMutex> lock(mu_);
  for (auto& kv : channels_)
    if (kv.second->listener_unique == listener_unique) return kv.second->addr;
  return std::string();
}

void Sender::continue_busy(const std::string& addr) {
  std::lock_guard<AdaptiveMutex> lock(mu_);
  auto it = by_addr_.find(addr);
  if (it != by_addr_.end()) it->second->busy_reported = true;
  waker_.wake();  // its loop announces the room, if there is some already
}

bool Sender::has_channel(const std::string& addr) const {
  std::lock_guard<AdaptiveMutex> lock(mu_);
  return by_addr_.count(addr) != 0;
}

inline void Sender::mark_dirty_locked(Channel* ch) {
  if (ch->dirty) return;
  ch->dirty = true;
  dirty_.push_back(ch);
}

// Inlined into enqueue: it runs for every message (a call of its own cost ~30 instructions).
[[gnu::always_inline]] inline void Sender::append_locked(Channel* ch, FrameHeader& h, const void* payload, size_t payload_size, size_t cost,
                           bool at_least_once, bool handover, Bytes& big) {
  size_t frame_size = kFrameOverhead + payload_size;
  // Append to the segment being filled, or start one (with a buffer that went round before).
  bool segment_full = !ch->incoming.empty() && ch->incoming.back().bytes.size() + frame_size > kSegmentBytes;
  if (segment_full) ch->streaming = true;
  if (ch->incoming.empty() || !big.empty() || segment_full || ch->incoming.back().handover != handover) {
    ch->incoming.emplace_back();
    Segment& fresh = ch->incoming.back();
    fresh.handover = handover;
    if (big.empty()) {
      fresh.bytes = ch->spare.take();
      // A frame bigger than a segment gets one of exactly its size: growing a buffer past
      // that would copy it and double its size.
      fresh.bytes.reserve(frame_size > kSegmentBytes ? frame_size
                          : ch->streaming      ? kSegmentBytes
                                               : std::max(frame_size, kFirstSegmentReserve));
    }
  }
  Segment& seg = ch->incoming.back();
  uint64_t number = ++ch->last_number;
  if (big.empty()) {
    h.number_mess = number;
    encode_frame_at(seg.bytes.extend(frame_size), h, payload, payload_size);
  } else {
    stamp_number(big.data(), number);
    seg.bytes.swap(big);  // the fresh segment's empty buffer: `big` is empty again
  }
  ++seg.frames;
  seg.last = number;
  seg.cost += cost;
  seg.at_least_once = seg.at_least_once || at_least_once;
  ch->held_bytes.add(cost);
  ch->held_count.add(1);
  mark_dirty_locked(ch);
}

template <bool kSingle>
[[gnu::always_inline]] inline Status Sender::enqueue_impl(const std::string& addr, const std::string& topic,
                                                          int32_t topic_key, const Payload* messages, size_t count,
                                                          bool at_least_once, bool handover, Channel** hint,
                                                          size_t* queued) {
  if (kSingle) count = 1;
  size_t done = 0;
  Status result;
  FrameHeader h;
  h.topic_key = topic_key;
  const size_t compress_above = effective(opt_.compress_threshold, limits().compress_threshold);
  std::string compressed;
  Bytes big;  // a frame too big to encode under the lock: a segment of its own
  bool first_busy = false;
  std::unique_lock<AdaptiveMutex> lock(mu_, std::defer_lock);
  Channel* ch = nullptr;
  for (; done < count; ++done) {
    h.flags = at_least_once ? kFlagAtLeastOnce : 0;
    const void* payload = messages[done].data;
    size_t payload_size = messages[done].size;
    if (payload_size > compress_above) {
      if (lock.owns_lock()) lock.unlock();  // compression takes long: not under the lock
      if (zstd_compress(payload, payload_size, compressed)) {
        h.flags |= kFlagCompress;
        payload = compressed.data();
        payload_size = compressed.size();
      } else {
        log_line("zstd compression failed; sending " + std::to_string(payload_size) + " bytes uncompressed");
      }
    }
    if (!lock.owns_lock()) lock.lock();
    if (!ch) {
      // A channel's address and by_addr_ change together: the hinted channel is the one
      // by_addr_ would find exactly when its address is still `addr`. Looked up once per
      // call: channels live as long as the sender.
      ch = hint ? *hint : nullptr;
      if (!ch || ch->addr != addr) {
        auto it = by_addr_.find(addr);
        // Client::send relies on this code meaning "open the channel first".
        if (it == by_addr_.end()) return Status(Err::no_addr, "no channel to " + addr);
        ch = it->second;
        if (hint) *hint = ch;
      }
      if (topic_key == 0 || ch->last_topic_key != topic_key) {
        if (ch->last_topic != topic && !ch->forgotten.count(topic)) {
          ch->topics.insert(topic);
          ch->last_topic = topic;
        }
        ch->last_topic_key = ch->last_topic == topic ? topic_key : 0;
      }
    }
    size_t frame_size = kFrameOverhead + payload_size;
    size_t cost = frame_size + kPerMessageOverhead;
    if (!has_room_locked(ch, cost)) {
      result = refuse_locked(ch, &first_busy);
      break;
    }
    if (ch->unreachable && !at_least_once) {
      // Best effort to a peer that is down right now: it would be dropped at the next failed
      // connect anyway; do not let it wait in RAM.
      std::lock_guard<std::mutex> slock(stats_mu_);
      ++stats_.dropped;
      continue;
    }
    h.connection_key = ch->ck;
    if (payload_size > kEncodeUnderLock) {
      lock.unlock();
      encode_frame_at(big.extend(frame_size), h, payload, payload_size);
      lock.lock();
    }
    append_locked(ch, h, payload, payload_size, cost, at_least_once, handover, big);
  }
  if (lock.owns_lock()) lock.unlock();
  if (queued) *queued = done;
  if (first_busy) report_busy(ch, result);
  // A running sender thread finds the messages on its next pass: only a parked one needs the
  // (comparatively costly) eventfd write, and only once: the first caller to see it parked
  // takes the flag down. Without that, a stream wrote once per message until the thread was
  // back on a core, and fell into a mode where it paid a syscall every ~20 messages. See the
  // matching check in loop().
  if (done > 0 && parked_.load(std::memory_order_relaxed) && parked_.exchange(false)) waker_.wake();
  if (result.ok()) return Status();  // built in place: no Status moved on success
  return result;
}

Status Sender::enqueue(const std::string& addr, const std::string& topic, int32_t topic_key,
                       const Payload* messages, size_t count, bool at_least_once, bool handover, Channel** hint,
                       size_t* queued) {
  // A single message (every lnr_send_to) gets its own copy of the body, without the batch
  // loop's bookkeeping: ~60 instructions less per message (callgrind).
  return count == 1 ? enqueue_impl<true>(addr, topic, topic_key, messages, 1, at_least_once, handover, hint, queued)
                    : enqueue_impl<false>(addr, topic, topic_key, messages, count, at_least_once, handover, hint,
                                          queued);
}

Status Sender::enqueue_handed_over(const std::string& addr, const std::string& topic, int32_t topic_key,
                                   const Payload& message, int32_t* connection_key, uint64_t* covered_by) {
  Channel* ch = nullptr;
  Status s = enqueue(addr, topic, topic_key, &message, 1, true, true, &ch);
  if (!s) return s;
  // Read after the enqueue: a send racing it may have taken a higher number since, and an ack
  // that reaches the higher one covers this message too.
  std::lock_guard<AdaptiveMutex> lock(mu_);
  *connection_key = ch->ck;
  *covered_by = ch->last_number;
  return s;
}

void Sender::release_peer(const std::string& addr) {
  {
    std::lock_guard<AdaptiveMutex> lock(mu_);
    auto it = by_addr_.find(addr);
    if (it == by_addr_.end()) return;
    Channel* ch = it->second;
    ch->release = true;
    mark_dirty_locked(ch);
  }
  waker_.wake();
}

bool Sender::has_room_locked(const Channel* ch, size_t cost) const {
  size_t count_cap = queue_count_cap();
  return ch->held_count.get() == 0 ||
         (ch->held_bytes.get() + cost <= queue_bytes_cap() && (!count_cap || ch->held_count.get() < count_cap));
}

Status Sender::refuse_locked(Channel* ch, bool* first) {
  // Only the first refusal after room was seen is news; the writable event ends the episode.
  *first = !ch->busy_reported;
  ch->busy_reported = true;
  return Status(Err::busy, "send queue to " + ch->addr + " is full (" +
                               std::to_string(ch->held_count.get()) + " messages, " +
                               std::to_string(ch->held_bytes.get()) + " bytes): retry later");
}

void Sender::report_busy(Channel* ch, const Status& busy) {
  waker_.wake();  // the loop polls acks sooner under pressure
  emit(StatusKind::busy, ch, busy.message);
}

// Acks are polled about once a second, as liner_broker does; every 0.5 ms while an ack window
// is in flight or a paused stream waits for its ack, and every 20 ms while a queue is a quarter
// full, so that at-least-once traffic is not throttled by the poll period.
Sender::Clock::time_point Sender::next_ack_poll(const Channel* ch) const {
  // Not every millisecond against a store that is down (each failure is reported).
  if (ch->ack_poll_failed) return ch->last_ack_poll + kAckPollRetry;
  // Messages written past the last ack seen (unacked holds segments, not messages). The listener
  // acks a stream every window, and a pause (nothing left here to write) after a quarter window
  // at once (ack_window.hpp): poll that often then.
  uint64_t unacked_messages = ch->last_written - ch->acked;
  bool window = reaches_ack_window(unacked_messages, ch->unacked_bytes);
  bool paused = ch->pending.empty() && reaches_ack_prompt(unacked_messages, ch->unacked_bytes);
  if (!ch->unacked.empty() && (window || paused)) return ch->last_ack_poll + kAckWindowGap;
  size_t count_cap = queue_count_cap();
  bool pressure = ch->held_bytes.get() > queue_bytes_cap() / 4 ||
                  (count_cap && ch->held_count.get() > count_cap / 4);
  return ch->last_ack_poll + (pressure ? kAckPollUnderPressure : kAckPoll);
}

size_t Sender::queue_bytes_cap() const {
  return effective(opt_.max_queue_bytes, limits().max_send_queue_bytes);
}

size_t Sender::queue_count_cap() const {
  return effective(opt_.max_queue_messages, limits().max_send_queue);
}

void Sender::emit(StatusKind kind, const Channel* ch, const std::string& message) const {
  if (!opt_.status) return;
  std::string topic, addr;
  {
    std::lock_guard<AdaptiveMutex> lock(mu_);
    topic = ch->first_topic;
    addr = ch->addr;
  }
  opt_.status->emit(kind, topic, addr, message);
}

std::vector<ChannelInfo> Sender::channels() const {
  std::lock_guard<AdaptiveMutex> lock(mu_);
  std::vector<ChannelInfo> out;
  for (auto& kv : channels_) {
    const Channel* ch = kv.second.get();
    out.push_back({ch->addr, ch->first_topic, std::vector<std::string>(ch->topics.begin(), ch->topics.end()),
                   ch->listener_unique, ch->ck, ch->connected, uint64_t(ch->held_count.get())});
  }
  return out;
}

bool Sender::reachable(const std::string& addr) const {
  std::lock_guard<AdaptiveMutex> lock(mu_);
  auto it = by_addr_.find(addr);
  return it == by_addr_.end() || !it->second->unreachable;
}

std::vector<std::string> Sender::channel_addresses(const std::string& topic) const {
  std::lock_guard<AdaptiveMutex> lock(mu_);
  std::vector<std::string> out;
  for (auto& kv : by_addr_)
    if (kv.second->topics.count(topic)) out.push_back(kv.first);
  return out;
}

void Sender::forget_topic(const std::string& topic, const std::string& addr) {
  std::lock_guard<AdaptiveMutex> lock(mu_);
  auto it = by_addr_.find(addr);
  if (it == by_addr_.end()) return;
  it->second->topics.erase(topic);
  it->second->forgotten.insert(topic);
  it->second->last_topic.clear();
  it->second->last_topic_key = 0;
}

void Sender::peer_announced(const std::string& addr, const std::string& topic) {
  {
    std::lock_guard<AdaptiveMutex> lock(mu_);
    auto it = by_addr_.find(addr);
    if (it == by_addr_.end()) return;
    Channel* ch = it->second;
    ch->forgotten.erase(topic);  // it serves the topic again
    ch->announced = true;
    mark_dirty_locked(ch);
  }
  waker_.wake();
}

SenderStats Sender::stats() const {
  SenderStats out;
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    out = stats_;
  }
  std::lock_guard<AdaptiveMutex> lock(mu_);
  for (auto& kv : channels_) {
    out.queued_messages += kv.second->held_count.get();
    out.queued_bytes += kv.second->held_bytes.get();
  }
  return out;
}

// ---- sender thread -------------------------------------------------------------------------

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
    ch->unreachable = false;
    ch->connected = true;
  }
  emit(StatusKind::peer_connected, ch, "connected");
  flush(ch);
}

bool Sender::post_store(Channel* ch, StoreJob job) {
  if (ch->store_busy) return false;
  ch->store_busy = true;
  uint64_t gen = ch->view_gen;
  bool posted = store_->post([this, ch, gen, job = std::move(job)](Store& store) -> StoreWorker::Completion {
    StoreThen then = job(store);
    return [this, ch, gen, then = std::move(then)] {
      ch->store_busy = false;
      bool stale = gen != ch->view_gen;
      if (stale) ch->offline.forget();
      mirror_queue(ch);
      if (then) then(stale);
      store_step(ch);
    };
  });
  if (!posted) ch->store_busy = false;
  return posted;
}

void Sender::store_step(Channel* ch) {
  if (ch->store_busy) return;
  switch (ch->state) {
    case State::opening: {
      int32_t ck = ch->ck;
      bool posted = post_store(ch, [this, ch, ck](Store& store) -> StoreThen {
        AckCounter counter;
        Status s = store.read_ack(ck, true, &counter);
        if (s) s = ch->offline.open(store);
        return [=](bool stale) {
          if (stale || ch->state != State::opening) return;  // that connection is gone
          if (s) note_ack(ch, counter);
          if (!s && ch->offline.may_have_backlog()) {
            // Without the offline queue's content, newer numbers would overtake stored ones
            // and the listener would drop the stored ones as duplicates. Try again later.
            on_failure(ch, "store unavailable at connect: " + s.message);
            return;
          }
          if (s) ch->ack_poll_failed = false;
          opened(ch);
        };
      });
      if (!posted) on_failure(ch, "store unavailable at connect: its request queue is full");
      break;
    }
    case State::backoff:
      if (!ch->pending.empty()) spill(ch);
      break;
    case State::idle:
      if (!stopping_ && has_work(ch)) start_connect(ch);  // stopping: drain_and_close decides
      break;
    case State::connected:
      if (ch->queue.has_unread) ready_.push_back(ch);  // flush() reads on
      break;
    case State::connecting:
    case State::settling:
      break;
  }
}

void Sender::mirror_queue(Channel* ch) {
  ch->queue.may_have_backlog = ch->offline.may_have_backlog();
  ch->queue.has_unread = ch->offline.has_unread();
  ch->queue.has_unpopped = ch->offline.has_unpopped();
  ch->queue.read_count = ch->offline.read_count();
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
    ch->unreachable = true;
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

void Sender::spill(Channel* ch, bool force) {
  // One job at a time per channel: one in flight spills what is left when it answers
  // (store_step). After a refused spill, new messages wait in RAM a moment rather than
  // retrying a store that is down at every send.
  if (ch->store_busy || ch->pending.empty()) return;
  if (!force && Clock::now() - ch->spill_failed_at < kAckPollRetry) return;
  // At-least-once frames the listener has not acknowledged go to the offline queue, one
  // element each; best-effort ones are dropped.
  // Frames of send_to are marked as such in the store (NumberRanges), for a hand-over.
  auto keep = std::make_shared<std::vector<std::string>>();
  auto marked = std::make_shared<std::vector<bool>>();
  size_t dropped = 0, kept_cost = 0;
  for (const auto& seg : ch->pending) {
    for (size_t at = 0; at < seg.bytes.size();) {
      const char* f = seg.bytes.data() + at;
      size_t len = frame_size_at(f);
      if (!frame_is_at_least_once(f)) {
        ++dropped;
      } else if (frame_number_at(f) > ch->acked) {
        keep->emplace_back(f, len);
        marked->push_back(seg.handover);
        kept_cost += len + kPerMessageOverhead;
      }
      at += len;
    }
  }
  for (auto& seg : ch->pending) release(ch, seg);
  ch->pending.clear();
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.dropped += dropped;
  }
  if (keep->empty()) return;
  // Still held (against the queue caps) until the store has them.
  size_t kept_frames = keep->size();
  ch->released_bytes -= kept_cost;
  ch->released_count -= kept_frames;
  // Frames of `keep` numbered above `above` that the store did not take go back in front of the
  // queue (newer messages may have come after them), each with its mark (a segment per run of
  // them), to be written or spilled later. They stay held: their segments release them when
  // they go. The rest of `keep` is released now.
  auto put_back = [this, ch, keep, marked, kept_cost, kept_frames](uint64_t above, const std::string& why) {
    std::deque<Segment> kept;
    size_t cost = 0, frames = 0;
    for (size_t i = 0; i < keep->size(); ++i) {
      const std::string& f = (*keep)[i];
      if (frame_number_at(f.data()) <= above) continue;
      if (kept.empty() || kept.back().handover != (*marked)[i]) {
        kept.emplace_back();
        kept.back().at_least_once = true;
        kept.back().handover = (*marked)[i];
      }
      Segment& seg = kept.back();
      ++seg.frames;
      seg.last = frame_number_at(f.data());
      seg.cost += f.size() + kPerMessageOverhead;
      seg.bytes.append(f.data(), f.size());
      cost += f.size() + kPerMessageOverhead;
      ++frames;
    }
    ch->released_bytes += kept_cost - cost;
    ch->released_count += kept_frames - frames;
    if (kept.empty()) return;
    while (!kept.empty()) {
      ch->pending.push_front(std::move(kept.back()));
      kept.pop_back();
    }
    ch->spill_failed_at = Clock::now();
    log_line("cannot store messages for " + ch->addr + " offline: " + why);
    emit(StatusKind::sender_store_error, ch, why);
  };
  int32_t ck = ch->ck;
  uint64_t acked = ch->acked;
  bool posted = post_store(ch, [this, ch, ck, acked, keep, marked, kept_cost, kept_frames, put_back](Store& store) -> StoreThen {
    // Read the ack first: what the listener acknowledged meanwhile need not be stored.
    AckCounter counter;
    Status read = store.read_ack(ck, true, &counter);
    uint64_t now_acked = read ? std::max(acked, counter.number) : acked;
    std::vector<const std::string*> frames;
    NumberRanges handover;
    bool extends = false;  // the last frame stored was marked: a marked one extends its range
    for (size_t i = 0; i < keep->size(); ++i) {
      const std::string& f = (*keep)[i];
      uint64_t number = frame_number_at(f.data());
      if (number <= now_acked) continue;
      frames.push_back(&f);
      if ((*marked)[i] && extends) handover.back().second = number;
      else if ((*marked)[i]) handover.emplace_back(number, number);
      extends = (*marked)[i];
    }
    Status s = ch->offline.push(store, frames, handover);
    size_t stored = frames.size();
    return [=](bool) {
      if (read) note_ack(ch, counter);
      if (!s) {
        put_back(now_acked, s.message);
        return;
      }
      ch->released_bytes += kept_cost;
      ch->released_count += kept_frames;
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.persisted += stored;
    };
  });
  if (!posted) put_back(0, "the store's request queue is full");  // nothing stored: all of it
}

void Sender::load_backlog(Channel* ch) {
  // The frames are packed into segments on the worker, like RAM messages (a big frame keeps
  // its own buffer): the sender thread only moves them into the backlog. Frames this
  // connection already carried are passed over by number when written (skip_written()).
  // One job reads up to kReadAheadChunks chunks (fewer once kReadAheadBytes were read), and
  // hands each over as soon as it is read (StoreWorker::emit): the worker reads the next
  // while this thread writes the last, with no hand-over in between.
  struct Loaded {
    std::deque<Segment> segments;
    size_t frames = 0;      // packed
    size_t not_frames = 0;  // elements that are not frames: skipped, popped with the acked
    size_t bytes = 0;
  };
  // Sender thread: takes one chunk (of a connection that is still the one it was read for).
  auto take = [this, ch](Loaded& loaded, uint64_t gen) {
    if (gen != ch->view_gen || ch->state != State::connected) return;  // the store keeps it
    if (loaded.not_frames) {
      log_line("offline queue of " + ch->addr + " holds " + std::to_string(loaded.not_frames) +
               " element(s) that are not frames; skipped");
      emit(StatusKind::sender_store_error, ch, "offline queue element is not a frame");
    }
    for (auto& seg : loaded.segments) ch->backlog.push_back(std::move(seg));
    ch->backlog_frames += loaded.frames;
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.reloaded += loaded.frames + loaded.not_frames;
    }
    flush(ch);
  };
  // Not posted when a job of this channel is in flight: flush() runs again when it answered.
  uint64_t gen = ch->view_gen;
  post_store(ch, [this, ch, gen, take](Store& store) -> StoreThen {
    Status error;
    OfflineQueue::Read r = OfflineQueue::Read::ok;
    size_t bytes = 0;
    for (int chunk = 0;; ++chunk) {
      auto loaded = std::make_shared<Loaded>();
      r = ch->offline.read_next(store, kBacklogChunk, [&](std::string&& f, uint64_t number) {
        loaded->bytes += f.size();
        if (number == 0) {
          ++loaded->not_frames;
          return;
        }
        std::deque<Segment>& q = loaded->segments;
        if (q.empty() || f.size() > kSegmentBytes / 4 || q.back().bytes.size() + f.size() > kSegmentBytes) {
          q.emplace_back();
          q.back().from_store = true;
          q.back().at_least_once = true;
        }
        Segment& seg = q.back();
        seg.bytes.append(f.data(), f.size());
        ++seg.frames;
        seg.last = number;
        ++loaded->frames;
      }, &error);
      bytes += loaded->bytes;
      bool more = r == OfflineQueue::Read::ok && ch->offline.has_unread() &&
                  chunk + 1 < kReadAheadChunks && bytes < kReadAheadBytes && gen == ch->view_gen;
      if (!more) {
        // The last chunk goes with the job's own completion.
        return [this, ch, loaded, r, error, take, gen](bool stale) {
          if (stale || ch->state != State::connected) return;
          if (r == OfflineQueue::Read::moved) {
            reread_store_queue(ch);
            return;
          }
          if (r == OfflineQueue::Read::failed) {
            on_failure(ch, "offline queue unreadable: " + error.message);
            return;
          }
          take(*loaded, gen);
        };
      }
      store_->emit([loaded, take, gen] { take(*loaded, gen); });  // `more`: this one read something
    }
  });
}

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

void Sender::poll_acks(Channel* ch) {
  // Frames read from the store and written (the rest of those read wait in the backlog). More
  // may be written while the job runs: popping fewer is safe.
  uint64_t read = ch->queue.read_count;
  uint64_t written = read > ch->backlog_frames ? read - ch->backlog_frames : 0;
  uint64_t acked = ch->acked;
  int32_t ck = ch->ck;
  ch->last_ack_poll = Clock::now();
  post_store(ch, [this, ch, ck, acked, written](Store& store) -> StoreThen {
    AckCounter counter;
    Status s = store.read_ack(ck, true, &counter);
    Status pop_error;
    bool popped = true;
    if (s) popped = ch->offline.pop(store, std::max(acked, counter.number), written, &pop_error);
    return [=](bool stale) {
      ch->ack_poll_failed = !s;
      if (!s) {
        emit(StatusKind::sender_store_error, ch, s.message);
        return;
      }
      note_ack(ch, counter);
      release_acked(ch);
      if (!popped && !stale && ch->state == State::connected) {
        if (!pop_error.ok()) emit(StatusKind::sender_store_error, ch, pop_error.message);
        reread_store_queue(ch);
      }
    };
  });
}

void Sender::release_acked(Channel* ch) {
  while (!ch->unacked.empty() && ch->unacked.front().last <= ch->acked) {
    ch->unacked_bytes -= ch->unacked.front().bytes.size();
    release(ch, ch->unacked.front());
    ch->unacked.pop_front();
  }
}

void Sender::reread_store_queue(Channel* ch) {
  // The backlog segments stay: they are read again only once they are written, and by then
  // their numbers are at or below last_written, which the next read skips.
  bool posted = post_store(ch, [this, ch](Store& store) -> StoreThen {
    Status s = ch->offline.reread(store);
    return [=](bool stale) {
      if (stale || ch->state != State::connected) return;
      if (!s) on_failure(ch, "offline queue unreadable: " + s.message);
      else if (ch->queue.has_unread) ready_.push_back(ch);
    };
  });
  if (!posted) on_failure(ch, "offline queue unreadable: the store's request queue is full");
}

void Sender::note_ack(Channel* ch, const AckCounter& counter) {
  if (counter.unreadable && !ch->ack_unreadable_reported) {
    ch->ack_unreadable_reported = true;
    report_unreadable_ack(ch->ck, ch->addr);
    emit(StatusKind::sender_store_error, ch, "acknowledgement counter is not a number; read as 0");
  } else if (!counter.unreadable) {
    ch->ack_unreadable_reported = false;
  }
  ch->acked = std::max(ch->acked, counter.number);
}

void Sender::report_unreadable_ack(int32_t ck, const std::string& addr) {
  log_line("lnr_connection:" + std::to_string(ck) + ":mess_number (peer " + addr +
           ") is not a number; read as 0: unacknowledged and stored messages go out again");
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
    for (int i = 0; i < n; ++i) {
      Channel* ch = static_cast<Channel*>(events[i].data.ptr);
      if (!ch) {
        waker_.drain();
        continue;
      }
      uint32_t e = events[i].events;
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
        if (ch->state != State::connected && ch->state != State::opening) continue;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_failure(ch, "connection closed by peer");
        else if (e & EPOLLOUT) flush(ch);
      }
    }
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
          ch->unreachable = false;
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
    for (int i = 0; i < n; ++i) {
      Channel* ch = static_cast<Channel*>(events[i].data.ptr);
      if (!ch) {
        waker_.drain();
        continue;
      }
      if (ch->state == State::connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(ch->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err || (events[i].events & (EPOLLERR | EPOLLHUP))) on_failure(ch, "connect failed");
        else on_connected(ch);
      } else if ((ch->state == State::connected || ch->state == State::opening) &&
                 (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        on_failure(ch, "connection closed by peer");
      }
    }
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

