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
// A stream of at-least-once messages is acknowledged every ~2,000 messages (at most every 2 ms):
// the sender holds each message until it sees the ack, and a short window keeps that memory
// small and its buffers reusable. One SET per 2,000 messages is noise next to the deliveries.
constexpr auto kAckFlushMinGap = milliseconds(2);
constexpr uint64_t kAckFlushBacklog = 2048;  // unacked deliveries that justify an early flush

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

bool Delivery::push(std::vector<Inbound>& batch, size_t bytes, BufferPool* refill) {
  std::unique_lock<std::mutex> lock(mu_);
  has_room_.wait(lock, [&] { return stopping_ || queued_bytes_ < max_queued_bytes_; });
  if (stopping_) return false;
  if (refill) spare_.move_into(*refill);
  bool was_empty = queue_.empty();
  if (was_empty) {
    queue_.swap(batch);
  } else {
    for (auto& in : batch) queue_.push_back(std::move(in));
  }
  batch.clear();
  queued_bytes_ += bytes;
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
  std::lock_guard<std::mutex> lock(mu_);
  DeliveryStats out = stats_;
  out.queued_bytes = queued_bytes_;
  return out;
}

void Delivery::loop() {
  thread_id_ = std::this_thread::get_id();
  std::vector<Inbound> batch;
  BufferPool returned;  // this batch's payload buffers, handed back at the next swap
  std::map<int32_t, std::string> topics;
  for (;;) {
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      has_work_.wait_for(lock, milliseconds(100), [&] { return stopping_ || !queue_.empty(); });
      returned.move_into(spare_);
      batch.swap(queue_);
      queued_bytes_ = 0;
      stopping = stopping_;
      topics = topics_;
    }
    has_room_.notify_all();
    for (auto& in : batch) {
      if (in.closed) {
        flush_acks(true);
        connection_closed(in.conn_id);
        continue;
      }
      auto it = topics.find(in.header.topic_key);
      if (it == topics.end()) {
        // Not (or no longer) ours: liner_broker drops these too, but still acknowledges them.
        ChannelIn& ch = channels_[in.header.connection_key];
        sync_channel(ch, in.header.connection_key, in.conn_id);
        if (in.header.number_mess > ch.delivered) {
          ch.delivered = in.header.number_mess;
          ++ch.unsaved;
          ++unsaved_total_;
        }
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.unknown_topic;
        continue;
      }
      scratch_ = it->second;  // `to`
      deliver(in);
      // Long batches behind a slow callback still acknowledge as they go.
      if (unsaved_total_ >= kAckFlushBacklog) flush_acks(false);
    }
    for (auto& in : batch) returned.give(std::move(in.data));
    batch.clear();
    flush_acks(false);
    if (stopping) {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) break;
    }
  }
  flush_acks(true);
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

void Delivery::deliver(Inbound& in) {
  const FrameHeader& h = in.header;
  ChannelIn& ch = channels_[h.connection_key];
  sync_channel(ch, h.connection_key, in.conn_id);
  if (h.number_mess <= ch.delivered) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.duplicates;
    return;
  }
  ch.delivered = h.number_mess;
  ++ch.unsaved;
  ++unsaved_total_;
  const char* data = in.data.data();
  size_t size = in.data.size();
  std::string plain;
  if (h.flags & kFlagCompress) {
    std::string err;
    if (!zstd_decompress(reinterpret_cast<const uint8_t*>(data), size, max_message_size_, plain, &err)) {
      log_line("dropping message " + std::to_string(h.number_mess) + " of channel " +
               std::to_string(h.connection_key) + ": " + err);
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.undecodable;
      return;
    }
    data = plain.data();
    size = plain.size();
  }
  try {
    receive_(scratch_, ch.from, data, size);
  } catch (...) {
    log_line("receive callback threw; message counted as delivered");
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.delivered;
  stats_.bytes_delivered += size;
}

void Delivery::flush_acks(bool force) {
  auto now = Clock::now();
  bool due = now - last_flush_ >= kAckFlushPeriod ||
             (unsaved_total_ >= kAckFlushBacklog && now - last_flush_ >= kAckFlushMinGap);
  if (!force && !due) return;
  last_flush_ = now;
  if (unsaved_total_ == 0) return;
  unsaved_total_ = 0;
  for (auto& kv : channels_) {
    ChannelIn& ch = kv.second;
    if (ch.delivered <= ch.saved) continue;
    Status s = store_->set_last_mess_number(kv.first, ch.delivered);
    if (!s) {
      unsaved_total_ += ch.unsaved;  // retried at the next flush
      if (status_) status_->emit(StatusKind::listener_store_error, ch.from, "", s.message);
      continue;
    }
    ch.saved = ch.delivered;
    ch.unsaved = 0;
  }
}

}  // namespace liner
