#include "core/delivery.hpp"

#include <algorithm>

#include "core/compress.hpp"
#include "core/log.hpp"
#include "core/thread.hpp"

namespace liner {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto kAckFlushPeriod = milliseconds(1000);  // as liner_broker's listener
// A stream of at-least-once messages is acknowledged every ~1,000 messages (at most every ms):
// the sender holds each message until it sees the ack, and a short window keeps that memory
// small, warm in cache and its buffers reusable. One SET per 1,000 messages is noise next to
// the deliveries.
constexpr auto kAckFlushMinGap = milliseconds(1);
constexpr uint64_t kAckFlushBacklog = 1024;  // unacked deliveries that justify an early flush
// ... or this many bytes of them: big messages fill a sender's queue long before 1,024 of them
// are in flight, and it would wait for the once-a-second flush to make room.
constexpr uint64_t kAckFlushBytes = uint64_t(1) << 20;
// Long batches behind a slow callback still acknowledge as they go: the clock is read every
// 256 messages, and after every message this big.
constexpr size_t kAckCheckSize = 16 * 1024;
constexpr auto kIdleWait = milliseconds(100);
// After a failed ack write (the store is down) early flushes wait this long instead, so that
// a listener with acks to write does not retry, and report, every millisecond.
constexpr auto kAckRetryGap = milliseconds(100);

}  // namespace

Delivery::Delivery(std::unique_ptr<Store> store, ReceiveFn receive, size_t max_queued_bytes,
                   size_t max_message_size, const StatusSink* status)
    : store_(std::move(store)),
      receive_(std::move(receive)),
      max_queued_bytes_(max_queued_bytes ? max_queued_bytes : size_t(64) << 20),
      max_message_size_(max_message_size),
      status_(status) {}

Delivery::~Delivery() { stop(); }

Status Delivery::start() {
  stopping_ = false;
  last_flush_ = Clock::now();
  early_gap_ = kAckFlushMinGap;
  return start_thread(&thread_, "lnr-delivery", [this] { loop(); });
}

void Delivery::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  has_work_.notify_all();
  has_room_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Delivery::push(InboundBatch& batch, BlockPool* refill) {
  std::unique_lock<std::mutex> lock(mu_);
  has_room_.wait(lock, [&] { return stopping_ || queue_.bytes + delivering_bytes_ < max_queued_bytes_; });
  if (stopping_) return false;
  if (refill) spare_.move_into(*refill);
  bool was_empty = queue_.items.empty();
  if (was_empty) {
    queue_.items.swap(batch.items);
  } else {
    for (auto& in : batch.items) queue_.items.push_back(std::move(in));
  }
  for (auto& block : batch.blocks) queue_.blocks.push_back(std::move(block));
  for (auto& copy : batch.copies) queue_.copies.push_back(std::move(copy));
  for (auto& frame : batch.frames) queue_.frames.push_back(std::move(frame));
  queue_.bytes += batch.bytes;
  batch.clear();
  lock.unlock();
  if (was_empty) has_work_.notify_one();
  return true;
}

void Delivery::set_topic(int32_t topic_key, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  topics_[topic_key] = name;
}

void Delivery::remove_topic(int32_t topic_key) {
  std::lock_guard<std::mutex> lock(mu_);
  topics_.erase(topic_key);
}

bool Delivery::on_delivery_thread() const { return std::this_thread::get_id() == thread_id_; }

DeliveryStats Delivery::stats() const {
  DeliveryStats out;
  out.delivered = delivered_.get();
  out.bytes_delivered = bytes_delivered_.get();
  out.duplicates = duplicates_.get();
  out.unknown_topic = unknown_topic_.get();
  out.undecodable = undecodable_.get();
  std::lock_guard<std::mutex> lock(mu_);
  out.queued_bytes = queue_.bytes + delivering_bytes_;
  return out;
}

void Delivery::loop() {
  thread_id_ = std::this_thread::get_id();
  InboundBatch batch;
  BlockPool returned;  // this batch's blocks, handed back at the next swap
  std::map<int32_t, std::string> topics;
  for (;;) {
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      has_work_.wait_for(lock, until_ack_due(), [&] { return stopping_ || !queue_.items.empty(); });
      returned.move_into(spare_);
      std::swap(batch, queue_);
      // Still held until delivered: the budget bounds the memory of the queue and of the batch
      // in hand together.
      delivering_bytes_ = batch.bytes;
      queue_.bytes = 0;
      stopping = stopping_;
      topics = topics_;
    }
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
        auto it = topics.find(in.header.topic_key);
        to = it == topics.end() ? nullptr : &it->second;
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
      deliver(in, *to, ch);
      if (early_flush_wanted() && (unsaved_total_ % 256 == 0 || in.size() >= kAckCheckSize))
        flush_acks(false);
    }
    for (auto& block : batch.blocks) returned.give(std::move(block));
    batch.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      delivering_bytes_ = 0;
    }
    has_room_.notify_all();
    flush_acks(false);
    if (stopping) {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.items.empty()) break;
    }
  }
  flush_acks(true);
}

Delivery::ChannelIn& Delivery::channel(int32_t ck, uint64_t conn_id) {
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

void Delivery::deliver(const Inbound& in, const std::string& to, ChannelIn& ch) {
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

bool Delivery::early_flush_wanted() const {
  return unsaved_total_ >= kAckFlushBacklog || unsaved_bytes_ >= kAckFlushBytes;
}

std::chrono::microseconds Delivery::until_ack_due() const {
  if (unsaved_total_ == 0) return kIdleWait;
  // Deliveries waiting for their ack: wake when the flush is due, even with nothing new to
  // deliver (a sender whose queue is full sends nothing until it sees this ack).
  auto due = last_flush_ + (early_flush_wanted() ? early_gap_ : kAckFlushPeriod);
  auto left = std::chrono::duration_cast<std::chrono::microseconds>(due - Clock::now());
  return std::max(std::chrono::microseconds(0), std::min<std::chrono::microseconds>(left, kIdleWait));
}

void Delivery::flush_acks(bool force) {
  auto now = Clock::now();
  bool due = now - last_flush_ >= kAckFlushPeriod ||
             (early_flush_wanted() && now - last_flush_ >= early_gap_);
  if (!force && !due) return;
  last_flush_ = now;
  if (unsaved_total_ == 0) return;
  unsaved_total_ = 0;
  unsaved_bytes_ = 0;
  early_gap_ = kAckFlushMinGap;
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
