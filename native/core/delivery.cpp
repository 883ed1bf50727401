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
  unsubscribed_.erase(topic_key);
  topics_version_.fetch_add(1, std::memory_order_release);
}

void Delivery::remove_topic(int32_t topic_key) {
  std::lock_guard<std::mutex> lock(mu_);
  topics_.erase(topic_key);
  unsubscribed_.insert(topic_key);
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

void Delivery::deliver(InboundBatch& batch) {
  // The receive and batch-done calls below are the user's: the whole batch runs marked as such
  // (one thread-local write per batch, not two per message).
  CallbackScope scope(callback_owner_);
  if (topics_version_.load(std::memory_order_acquire) != topics_seen_version_) {
    std::lock_guard<std::mutex> lock(mu_);
    topics_seen_ = topics_;
    unsubscribed_seen_ = unsubscribed_;
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
    if (!refused_.empty() && refused_.count(in.conn_id)) continue;  // the rest of a refused stream
    const FrameHeader& h = in.header;
    ChannelIn* ch = channel(h.connection_key, in.conn_id, batch);
    if (!ch) continue;
    if (!to || h.topic_key != last_key) {
      auto it = topics_seen_.find(h.topic_key);
      to = it == topics_seen_.end() ? nullptr : &it->second;
      last_key = h.topic_key;
    }
    if (h.number_mess > ch->delivered && h.number_mess - ch->delivered > kMaxNumberJump) {
      refuse(in.conn_id, h.connection_key, batch,
             "message number " + std::to_string(h.number_mess) + " jumps too far past " +
                 std::to_string(ch->delivered));
      continue;
    }
    if (in.oversize) {
      if (h.number_mess > ch->delivered)
        refuse_message(h, *ch, std::to_string(h.data_len) + " bytes exceed this receiver's maximum message size of " +
                                   std::to_string(max_message_size_));
      continue;
    }
    if (!to) {
      unknown_topic_.add(1);
      bool at_least_once = (h.flags & kFlagAtLeastOnce) != 0;
      if (at_least_once && !unsubscribed_seen_.count(h.topic_key)) {
        refuse(in.conn_id, h.connection_key, batch,
               "topic key " + std::to_string(h.topic_key) + " is not served here");
        continue;
      }
      // Unsubscribed, or best effort: dropped, and acknowledged as liner_broker does.
      if (h.number_mess > ch->delivered) {
        ch->delivered = h.number_mess;
        ++ch->unsaved;
        ++unsaved_total_;
      }
      continue;
    }
    deliver_one(in, *to, *ch);
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

void Delivery::refuse(uint64_t conn_id, int32_t ck, InboundBatch& batch, const std::string& why) {
  refused_.insert(conn_id);
  batch.refused.push_back(conn_id);
  refusal_log_.log("refusing a connection (channel " + std::to_string(ck) + "): " + why +
                   "; nothing of it from there on is acknowledged");
  auto it = channels_.find(ck);
  std::string from = it != channels_.end() ? it->second.from : std::string();
  if (status_) status_->emit(StatusKind::peer_disconnected, from, "", "connection refused: " + why);
}

Delivery::ChannelIn* Delivery::find_channel(int32_t ck, uint64_t conn_id, InboundBatch& batch) {
  auto it = channels_.find(ck);
  bool fresh = it == channels_.end();
  ChannelIn& ch = fresh ? channels_[ck] : it->second;  // std::map: the address stays valid
  std::string why = sync_channel(ch, ck, conn_id);
  if (!why.empty()) {
    if (fresh) channels_.erase(ck);  // no state for what could not be verified
    if (last_channel_ && last_ck_ == ck) last_channel_ = nullptr;
    refuse(conn_id, ck, batch, why);
    return nullptr;
  }
  last_channel_ = &ch;
  last_ck_ = ck;
  return &ch;
}

void Delivery::connection_closed(uint64_t conn_id) {
  refused_.erase(conn_id);
  for (auto it = channels_.begin(); it != channels_.end();) {
    ChannelIn& ch = it->second;
    if (ch.conn_id != conn_id) {
      ++it;
      continue;
    }
    if (status_) status_->emit(StatusKind::peer_disconnected, ch.from, "", "sender closed its connection");
    // Acks were just written: a later connection reads the channel from the store again. One
    // whose ack could not be written stays, so that the next flush retries it.
    if (ch.delivered > ch.saved || ch.rewrite) {
      ++it;
      continue;
    }
    if (last_channel_ == &ch) last_channel_ = nullptr;
    it = channels_.erase(it);
  }
}

std::string Delivery::sync_channel(ChannelIn& ch, int32_t ck, uint64_t conn_id) {
  if (ch.from_known && ch.conn_id == conn_id) return std::string();
  bool new_connection = ch.conn_id != conn_id;
  // First frame of this channel on a connection: re-read the channel from the store.
  if (!ch.from_known) {
    bool found = false;
    std::string from;
    Status s = store_->sender_topic(ck, &from, &found);
    if (!s) {
      report_store_error("", s.message);
      return "cannot verify its connection key: " + s.message;
    }
    if (!found) return "unknown connection key " + std::to_string(ck);
    ch.from = from.find('\0') == std::string::npos ? from : std::string();
    ch.from_known = true;
  }
  AckCounter acked;
  Status s = store_->read_ack(ck, false, &acked);
  if (!s) {
    report_store_error(ch.from, s.message);
    return "cannot read its acknowledgement counter: " + s.message;
  }
  if (acked.unreadable) {
    std::string what = "lnr_connection:" + std::to_string(ck) + ":mess_number is not a number; read as 0";
    log_line(what);
    report_store_error(ch.from, what);
    // Rewritten at the next flush, with what this listener delivered (0 if nothing yet).
    ch.saved = 0;
    ch.rewrite = true;
    ch.unsaved += 1;
    unsaved_total_ += 1;
  } else if (ch.conn_id != 0 && acked.number < ch.saved) {
    // The counter went backwards: the sender cleared its stored messages and starts over.
    ch.delivered = ch.saved = acked.number;
    ch.unsaved = 0;
  } else {
    ch.delivered = std::max(ch.delivered, acked.number);
    ch.saved = std::max(ch.saved, acked.number);
  }
  ch.conn_id = conn_id;
  if (new_connection && status_)
    status_->emit(StatusKind::peer_connected, ch.from, "", "sender connected");
  return std::string();
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
      // Counted as delivered above: its sender stops resending what can never be decoded here.
      refuse_message(h, ch, err);
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

void Delivery::report_store_error(const std::string& from, const std::string& message) {
  if (status_) status_->emit(StatusKind::listener_store_error, from, "", message);
}

void Delivery::refuse_message(const FrameHeader& h, ChannelIn& ch, const std::string& why) {
  if (h.number_mess > ch.delivered) {
    ch.delivered = h.number_mess;
    ++ch.unsaved;
    ++unsaved_total_;
  }
  undecodable_.add(1);
  drop_log_.log("dropping message " + std::to_string(h.number_mess) + " of channel " +
                   std::to_string(h.connection_key) + " (from " + (ch.from.empty() ? "?" : ch.from) + "): " + why);
  Status s = store_->report_refused(h.connection_key, h.number_mess, why);
  if (!s) report_store_error(ch.from, s.message);
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
    if (ch.delivered <= ch.saved && !ch.rewrite) continue;
    Status s = store_->set_last_mess_number(kv.first, ch.delivered);
    if (!s) {
      unsaved_total_ += ch.unsaved;  // retried at the next flush
      early_gap_ = kAckRetryGap;
      report_store_error(ch.from, s.message);
      continue;
    }
    ch.saved = ch.delivered;
    ch.unsaved = 0;
    ch.rewrite = false;
  }
}

}  // namespace liner
