#include "core/delivery.hpp"

#include <algorithm>

#include "core/ack_window.hpp"
#include "core/compress.hpp"
#include "core/log.hpp"

namespace liner {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto kAckFlushPeriod = milliseconds(1000);  // as liner_broker's listener
// Long batches behind a slow callback still acknowledge as they go: the clock is read every
// 256 messages, and after every message this big.
constexpr size_t kAckCheckSize = 16 * 1024;
constexpr auto kIdleWait = milliseconds(1000);
constexpr size_t kDefaultBatchBytes = size_t(1) << 20;
// After a failed ack write (the store is down) early flushes wait this long instead, so that
// a listener with acks to write does not retry, and report, every millisecond.
constexpr auto kAckRetryGap = milliseconds(100);

}  // namespace

Delivery::Delivery(std::unique_ptr<Store> store, ReceiveFn receive, BatchDoneFn batch_done,
                   size_t max_batch_bytes, size_t max_message_size, const StatusSink* status,
                   const void* callback_owner)
    : store_(std::move(store)),
      receive_(std::move(receive)),
      batch_done_(std::move(batch_done)),
      callback_owner_(callback_owner),
      max_batch_bytes_(max_batch_bytes ? std::min(max_batch_bytes, kDefaultBatchBytes) : kDefaultBatchBytes),
      max_message_size_(max_message_size),
      status_(status) {}

void Delivery::start() {
  last_flush_ = Clock::now();
  early_gap_ = kAckWindowGap;
}

void Delivery::stop() { flush_acks(true); }

void Delivery::set_topic(int32_t topic_key, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  topics_[topic_key] = name;
  topics_version_.fetch_add(1, std::memory_order_release);
}

void Delivery::remove_topic(int32_t topic_key) {
  std::lock_guard<std::mutex> lock(mu_);
  topics_.erase(topic_key);
  topics_version_.fetch_add(1, std::memory_order_release);
}

DeliveryStats Delivery::stats() const {
  DeliveryStats out;
  out.delivered = delivered_.get();
  out.bytes_delivered = bytes_delivered_.get();
  out.duplicates = duplicates_.get();
  out.unknown_topic = unknown_topic_.get();
  out.undecodable = undecodable_.get();
  out.queued_bytes = in_hand_.get();
  return out;
}

void Delivery::deliver(const InboundBatch& batch) {
  // The receive and batch-done calls below are the user's: the whole batch runs marked as such
  // (one thread-local write per batch, not two per message).
  CallbackScope scope(callback_owner_);
  if (topics_version_.load(std::memory_order_acquire) != topics_seen_version_) {
    std::lock_guard<std::mutex> lock(mu_);
    topics_seen_ = topics_;
    topics_seen_version_ = topics_version_.load(std::memory_order_relaxed);
  }
  in_hand_.add(batch.bytes);
  uint64_t delivered_before = delivered_.get();
  // Frames come in runs for one topic: look the name up once per run.
  int32_t last_key = 0;
  const std::string* to = nullptr;
  for (const auto& in : batch.items) {
    if (in.closed) {
      flush_acks(true);
      connection_closed(in.conn_id);
      continue;
    }
    ChannelIn& ch = channel(in.header.connection_key, in.conn_id);
    if (!to || in.header.topic_key != last_key) {
      auto it = topics_seen_.find(in.header.topic_key);
      to = it == topics_seen_.end() ? nullptr : &it->second;
      last_key = in.header.topic_key;
    }
    if (!to) {
      // Not (or no longer) ours: liner_broker drops these too, but still acknowledges them.
      if (in.header.number_mess > ch.delivered) {
        ch.delivered = in.header.number_mess;
        ++ch.unsaved;
        ++unsaved_total_;
      }
      unknown_topic_.add(1);
      continue;
    }
    deliver_one(in, *to, ch);
    if (early_flush_wanted() && (unsaved_total_ % 256 == 0 || in.size() >= kAckCheckSize))
      flush_acks(false);
  }
  if (batch_done_ && delivered_.get() != delivered_before) {
    try {
      batch_done_();
    } catch (...) {
      log_line("batch-done callback threw");
    }
  }
  in_hand_.subtract(batch.bytes);
  last_arrival_ = Clock::now();
  flush_acks(false, last_arrival_);
}

Delivery::ChannelIn& Delivery::find_channel(int32_t ck, uint64_t conn_id) {
  if (!last_channel_ || last_ck_ != ck) {
    last_channel_ = &channels_[ck];  // std::map: the address stays valid
    last_ck_ = ck;
  }
  sync_channel(*last_channel_, ck, conn_id);
  return *last_channel_;
}

void Delivery::connection_closed(uint64_t conn_id) {
  if (!status_) return;
  for (auto& kv : channels_)
    if (kv.second.conn_id == conn_id)
      status_->emit(StatusKind::peer_disconnected, kv.second.from, "", "sender closed its connection");
}

void Delivery::sync_channel(ChannelIn& ch, int32_t ck, uint64_t conn_id) {
  if (ch.from_known && ch.conn_id == conn_id) return;
  bool new_connection = ch.conn_id != conn_id;
  // First frame of this channel on a connection: re-read the channel from the store.
  if (!ch.from_known) {
    bool found = false;
    std::string from;
    Status s = store_->sender_topic(ck, &from, &found);
    if (s) {
      ch.from = found && from.find('\0') == std::string::npos ? from : std::string();
      ch.from_known = true;
    }
  }
  uint64_t acked = 0;
  Status s = store_->last_mess_number(ck, &acked);
  if (!s && status_) status_->emit(StatusKind::listener_store_error, ch.from, "", s.message);
  if (s) {
    if (ch.conn_id != 0 && acked < ch.saved) {
      // The counter went backwards: the sender cleared its stored messages and starts over.
      ch.delivered = ch.saved = acked;
      ch.unsaved = 0;
    } else {
      ch.delivered = std::max(ch.delivered, acked);
      ch.saved = std::max(ch.saved, acked);
    }
  }
  ch.conn_id = conn_id;
  if (new_connection && status_)
    status_->emit(StatusKind::peer_connected, ch.from, "", "sender connected");
}

void Delivery::deliver_one(const Inbound& in, const std::string& to, ChannelIn& ch) {
  const FrameHeader& h = in.header;
  if (h.number_mess <= ch.delivered) {
    duplicates_.add(1);
    return;
  }
  ch.delivered = h.number_mess;
  ++ch.unsaved;
  ++unsaved_total_;
  unsaved_bytes_ += in.size();
  const char* data = in.size() ? in.data() : "";
  size_t size = in.size();
  std::string plain;
  if (h.flags & kFlagCompress) {
    std::string err;
    if (!zstd_decompress(reinterpret_cast<const uint8_t*>(data), size, max_message_size_, plain, &err)) {
      log_line("dropping message " + std::to_string(h.number_mess) + " of channel " +
               std::to_string(h.connection_key) + ": " + err);
      undecodable_.add(1);
      return;
    }
    data = plain.data();
    size = plain.size();
  }
  try {
    receive_(to, ch.from, data, size);
  } catch (...) {
    log_line("receive callback threw; message counted as delivered");
  }
  delivered_.add(1);
  bytes_delivered_.add(size);
}

Clock::time_point Delivery::next_flush_due() const {
  // early_gap_ (0.5 ms, or a failing store's 100 ms) is never longer than the period.
  return std::min(last_flush_ + (early_flush_wanted() ? early_gap_ : kAckFlushPeriod), idle_flush_due());
}

Clock::time_point Delivery::idle_flush_due() const {
  // A trickle is acknowledged at most every kAckIdleFlushGap, a quarter window at once; never
  // sooner than a failing store's retry gap (early_gap_ is that gap then).
  bool prompt = reaches_ack_prompt(unsaved_total_, unsaved_bytes_);
  auto gap = std::max<Clock::duration>(prompt ? Clock::duration(kAckWindowGap) : kAckIdleFlushGap, early_gap_);
  return std::max(last_arrival_ + kAckIdleGap, last_flush_ + gap);
}

bool Delivery::early_flush_wanted() const {
  return reaches_ack_window(unsaved_total_, unsaved_bytes_);
}

std::chrono::microseconds Delivery::until_ack_due() const {
  using std::chrono::microseconds;
  if (unsaved_total_ == 0) return kIdleWait;
  // Deliveries waiting for their ack: wake when the flush is due, even with nothing new to
  // deliver (a sender whose queue is full sends nothing until it sees this ack).
  auto left = std::chrono::ceil<microseconds>(next_flush_due() - Clock::now());
  return std::max(microseconds(0), std::min<microseconds>(left, kIdleWait));
}

void Delivery::flush_acks(bool force, std::chrono::steady_clock::time_point now) {
  if (!force && now < next_flush_due()) return;
  last_flush_ = now;
  if (unsaved_total_ == 0) return;
  unsaved_total_ = 0;
  unsaved_bytes_ = 0;
  early_gap_ = kAckWindowGap;
  for (auto& kv : channels_) {
    ChannelIn& ch = kv.second;
    if (ch.delivered <= ch.saved) continue;
    Status s = store_->set_last_mess_number(kv.first, ch.delivered);
    if (!s) {
      unsaved_total_ += ch.unsaved;  // retried at the next flush
      early_gap_ = kAckRetryGap;
      if (status_) status_->emit(StatusKind::listener_store_error, ch.from, "", s.message);
      continue;
    }
    ch.saved = ch.delivered;
    ch.unsaved = 0;
  }
}

}  // namespace liner
