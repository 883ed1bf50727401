// Enqueue: API threads append frames to a channel's incoming segments under Sender::mu_,
// within the per-peer caps, and wake the sender thread only when it sleeps.
#include <algorithm>

#include "core/compress.hpp"
#include "core/frame.hpp"
#include "core/log.hpp"
#include "core/sender.hpp"
#include "core/sender_channel.hpp"

namespace liner {
using namespace sender_tuning;

namespace {

using std::chrono::milliseconds;

constexpr size_t kEncodeUnderLock = 64 * 1024;
constexpr size_t kFirstSegmentReserve = 4 * 1024;

}  // namespace

// Inlined into enqueue, which runs it for every message (see liner_capi.cpp's send() for what
// the send path's inlining attributes pay).
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
[[gnu::always_inline]] inline Sender::Enqueued Sender::enqueue_impl(const std::string& addr, const std::string& topic,
                                                                    int32_t topic_key, const Payload* messages,
                                                                    size_t count, bool at_least_once, bool handover,
                                                                    ChannelRef* ref) {
  if (kSingle) count = 1;
  Enqueued result;  // one named result: nothing is moved on the way out
  size_t done = 0;  // a local, not result.queued: the loop keeps it in a register
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
      // A channel's address and by_addr_ change together: the referred channel is the one
      // by_addr_ would find exactly when its address is still `addr`. Looked up once per
      // call: channels live as long as the sender.
      ch = ref ? ref->channel_ : nullptr;
      if (!ch || ch->addr != addr) {
        auto it = by_addr_.find(addr);
        if (it == by_addr_.end()) {
          result.no_channel = true;
          return result;
        }
        ch = it->second;
        if (ref) ref->channel_ = ch;
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
      result.status = refuse_locked(ch, &first_busy);
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
  result.queued = done;
  if (first_busy) report_busy(ch, result.status);
  // A running sender thread finds the messages on its next pass: only a parked one needs the
  // (comparatively costly) eventfd write, and only once: the first caller to see it parked
  // takes the flag down. Without that, a stream wrote once per message until the thread was
  // back on a core, and fell into a mode where it paid a syscall every ~20 messages. See the
  // matching check in loop().
  if (done > 0 && parked_.load(std::memory_order_relaxed) && parked_.exchange(false)) waker_.wake();
  return result;
}

Sender::Enqueued Sender::enqueue(const std::string& addr, const std::string& topic, int32_t topic_key,
                                 const Payload* messages, size_t count, bool at_least_once, bool handover,
                                 ChannelRef* ref) {
  // A single message (every lnr_send_to) gets its own copy of the body, without the batch
  // loop's bookkeeping.
  return count == 1 ? enqueue_impl<true>(addr, topic, topic_key, messages, 1, at_least_once, handover, ref)
                    : enqueue_impl<false>(addr, topic, topic_key, messages, count, at_least_once, handover, ref);
}

Status Sender::enqueue_handed_over(const std::string& addr, const std::string& topic, int32_t topic_key,
                                   const Payload& message, int32_t* connection_key, uint64_t* covered_by) {
  ChannelRef ref;
  Enqueued e = enqueue(addr, topic, topic_key, &message, 1, true, true, &ref);
  if (e.no_channel) return Status(Err::no_addr, "no channel to " + addr);
  if (!e.status) return e.status;
  // Read after the enqueue: a send racing it may have taken a higher number since, and an ack
  // that reaches the higher one covers this message too.
  std::lock_guard<AdaptiveMutex> lock(mu_);
  *connection_key = ref.channel_->ck;
  *covered_by = ref.channel_->last_number;
  return Status();
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

size_t Sender::queue_bytes_cap() const {
  return effective(opt_.max_queue_bytes, limits().max_send_queue_bytes);
}

size_t Sender::queue_count_cap() const {
  return effective(opt_.max_queue_messages, limits().max_send_queue);
}

}  // namespace liner
