#include "core/delivery.hpp"

#include <poll.h>

#include <algorithm>
#include <limits>

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
    : receive_(std::move(receive)),
      batch_done_(std::move(batch_done)),
      callback_owner_(callback_owner),
      max_batch_bytes_(max_batch_bytes ? std::min(max_batch_bytes, kDefaultBatchBytes) : kDefaultBatchBytes),
      max_message_size_(max_message_size),
      status_(status),
      // Room for every look-up, one ack flush and the refusal reports: post() never finds the
      // worker full, because each kind is bounded here first.
      worker_(new StoreWorker(std::move(store), kMaxLookUps + 1 + kMaxRefusalReports,
                              [this] { completions_waker_.wake(); })) {}

Status Delivery::start() {
  last_flush_ = Clock::now();
  early_gap_ = kAckWindowGap;
  if (completions_waker_.fd() < 0) return Status(Err::startup, "delivery: eventfd failed");
  Status s = worker_->start("lnr-lstore");
  started_ = s.ok();
  return s;
}

void Delivery::stop() {
  auto deadline = Clock::now() + kStopDeadline;
  stopping_ = true;
  // One flush at a time: the final one waits for the one in flight. The listener has stopped,
  // so its completions run here.
  while (flush_in_flight_ && started_) {
    auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd p{completions_waker_.fd(), POLLIN, 0};
    ::poll(&p, 1, int(left.count()));
    completions_waker_.drain();
    worker_->run_completions();
  }
  flush_acks(true);
  worker_->finish(deadline);
}

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
  report_refusal(ck, why);
}

void Delivery::report_refusal(int32_t ck, const std::string& why) {
  refusal_log_.log("refusing a connection (channel " + std::to_string(ck) + "): " + why +
                   "; nothing of it from there on is acknowledged");
  auto it = channels_.find(ck);
  std::string from = it != channels_.end() ? it->second.from : std::string();
  if (status_) status_->emit(StatusKind::peer_disconnected, from, "", "connection refused: " + why);
}

bool Delivery::post(StoreWorker::Job job) {
  if (!started_ || !worker_->post(std::move(job))) return false;
  ++jobs_posted_;
  return true;
}

bool Delivery::look_up(int32_t ck, uint64_t conn_id) {
  // The job runs on the worker thread and touches nothing of this object: its completion, on
  // the listener's thread, does.
  bool posted = look_ups_out_ < kMaxLookUps && post([this, ck, conn_id](Store& store) {
    LookUpResult r;
    bool found = false;
    Status s = store.sender_topic(ck, &r.from, &found);
    if (!s) {
      r.store_error = s.message;
      r.refusal = "cannot verify its connection key: " + s.message;
    } else if (!found) {
      r.refusal = "unknown connection key " + std::to_string(ck);
    } else {
      if (r.from.find('\0') != std::string::npos) r.from.clear();
      s = store.read_ack(ck, false, &r.acked);
      if (!s) {
        r.store_error = s.message;
        r.refusal = "cannot read its acknowledgement counter: " + s.message;
      }
    }
    return StoreWorker::Completion([this, ck, conn_id, r] { look_up_done(conn_id, ck, r); });
  });
  if (!posted) {
    report_refusal(ck, "too many channel look-ups wait for the store (" + std::to_string(kMaxLookUps) + ")");
    return false;
  }
  ++look_ups_out_;
  auto [it, added] = look_ups_.try_emplace({conn_id, ck});
  it->second = LookUp();
  it->second.posted = jobs_posted_;
  if (added) ++look_ups_of_channel_[ck];
  return true;
}

void Delivery::look_up_done(uint64_t conn_id, int32_t ck, LookUpResult r) {
  --look_ups_out_;
  auto it = look_ups_.find({conn_id, ck});
  // The connection closed meanwhile (its closed marker dropped the look-up); or the listener
  // is gone and nobody waits for the answer.
  if (it == look_ups_.end() || stopping_) return;
  if (!r.refusal.empty()) {
    forget_look_up(it);
    if (!r.store_error.empty()) report_store_error(r.from, r.store_error);
    report_refusal(ck, r.refusal);
    answers_.push_back({conn_id, ck, false});
    return;
  }
  LookUp& lu = it->second;
  lu.answered = true;
  lu.from = std::move(r.from);
  lu.acked = r.acked;
  answers_.push_back({conn_id, ck, true});
}

void Delivery::forget_look_up(std::map<std::pair<uint64_t, int32_t>, LookUp>::iterator it) {
  int32_t ck = it->first.second;
  look_ups_.erase(it);
  auto n = look_ups_of_channel_.find(ck);
  if (n != look_ups_of_channel_.end() && --n->second == 0) look_ups_of_channel_.erase(n);
  erase_if_done(ck);
}

void Delivery::run_store_completions(std::vector<LookUpAnswer>& answers) {
  completions_waker_.drain();  // before running: a completion queued after it wakes us again
  worker_->run_completions();
  answers.insert(answers.end(), answers_.begin(), answers_.end());
  answers_.clear();
}

Delivery::ChannelIn* Delivery::find_channel(int32_t ck, uint64_t conn_id, InboundBatch& batch) {
  auto it = channels_.find(ck);
  if (it != channels_.end() && it->second.conn_id == conn_id) {
    // Verified on this connection already; frames of another channel came in between.
    last_channel_ = &it->second;
    last_ck_ = ck;
    return last_channel_;
  }
  auto found = look_ups_.find({conn_id, ck});
  if (found == look_ups_.end() || !found->second.answered) {
    // The listener delivers a channel's frames only after its look-up answered, and this
    // connection's answer was applied: a newer connection took the channel over since.
    refuse(conn_id, ck, batch, "channel " + std::to_string(ck) + " moved to a newer connection");
    return nullptr;
  }
  LookUp lu = std::move(found->second);
  bool fresh = it == channels_.end();
  ChannelIn& ch = fresh ? channels_[ck] : it->second;  // std::map: the address stays valid
  ch.from = std::move(lu.from);
  const AckCounter& acked = lu.acked;
  if (acked.unreadable) {
    std::string what = "lnr_connection:" + std::to_string(ck) + ":mess_number is not a number; read as 0";
    log_line(what);
    report_store_error(ch.from, what);
    // Rewritten at the next flush, with what this listener delivered (0 if nothing yet).
    ch.saved = 0;
    ch.rewrite = true;
    ch.unsaved += 1;
    unsaved_total_ += 1;
  } else if (!fresh && acked.number < ch.saved && ch.write_posted < lu.posted) {
    // The counter went backwards: the sender cleared its stored messages and starts over.
    // (Not when an ack write was posted after the look-up: the look-up may have read the
    // counter before that write.)
    ch.delivered = ch.saved = acked.number;
    ch.unsaved = 0;
  } else {
    ch.delivered = std::max(ch.delivered, acked.number);
    ch.saved = std::max(ch.saved, acked.number);
  }
  ch.conn_id = conn_id;
  ch.closed = false;
  forget_look_up(found);  // once the channel is open again: it would erase a closed one
  if (status_) status_->emit(StatusKind::peer_connected, ch.from, "", "sender connected");
  last_channel_ = &ch;
  last_ck_ = ck;
  return &ch;
}

void Delivery::connection_closed(uint64_t conn_id) {
  refused_.erase(conn_id);
  // Look-ups of the connection: out (their completion finds nothing and drops the answer), or
  // answered but never applied.
  auto lu = look_ups_.lower_bound({conn_id, std::numeric_limits<int32_t>::min()});
  while (lu != look_ups_.end() && lu->first.first == conn_id) forget_look_up(lu++);
  std::vector<int32_t> ended;
  for (auto& kv : channels_) {
    ChannelIn& ch = kv.second;
    if (ch.conn_id != conn_id || ch.closed) continue;
    if (status_) status_->emit(StatusKind::peer_disconnected, ch.from, "", "sender closed its connection");
    ch.closed = true;
    ended.push_back(kv.first);
  }
  // The acks were just posted (deliver() flushes before it gets here): a later connection
  // reads the channel from the store again, once they are written.
  for (int32_t ck : ended) erase_if_done(ck);
}

void Delivery::erase_if_done(int32_t ck) {
  auto it = channels_.find(ck);
  if (it == channels_.end()) return;
  const ChannelIn& ch = it->second;
  if (!ch.closed || ch.writing || ch.delivered > ch.saved || ch.rewrite) return;
  // A look-up of the channel that is out may have read the counter before the last write:
  // the state stays to correct it (see the invariants).
  if (look_ups_of_channel_.count(ck)) return;
  if (last_channel_ == &it->second) last_channel_ = nullptr;
  channels_.erase(it);
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
  // Fire and forget: the message is acknowledged whether or not its sender hears why.
  int32_t ck = h.connection_key;
  uint64_t number = h.number_mess;
  std::string from = ch.from;
  bool posted = refusal_reports_out_ < kMaxRefusalReports &&
                post([this, ck, number, why, from](Store& store) {
                  Status s = store.report_refused(ck, number, why);
                  std::string error = s ? std::string() : s.message;
                  return StoreWorker::Completion([this, from, error] { refusal_reported(from, error); });
                });
  if (posted) ++refusal_reports_out_;
  else
    report_drop_log_.log("not reporting the refusal of message " + std::to_string(number) + " of channel " +
                         std::to_string(ck) + " to its sender: " + std::to_string(kMaxRefusalReports) +
                         " reports already wait for the store");
}

void Delivery::refusal_reported(const std::string& from, const std::string& error) {
  --refusal_reports_out_;
  if (!error.empty()) report_store_error(from, error);
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
  // A flush in flight: its completion wakes the listener, and the next flush waits for it.
  if (unsaved_total_ == 0 || flush_in_flight_) return kIdleWait;
  // Deliveries waiting for their ack: wake when the flush is due, even with nothing new to
  // deliver (a sender whose queue is full sends nothing until it sees this ack).
  auto left = std::chrono::ceil<microseconds>(next_flush_due() - Clock::now());
  return std::max(microseconds(0), std::min<microseconds>(left, kIdleWait));
}

void Delivery::flush_acks(bool force, std::chrono::steady_clock::time_point now) {
  if (flush_in_flight_) {
    flush_forced_ = flush_forced_ || force;  // posted when the one in flight is done
    return;
  }
  if (!force && now < next_flush_due()) return;
  last_flush_ = now;
  if (unsaved_total_ == 0) return;
  std::vector<AckWrite> writes;
  for (const auto& kv : channels_)
    if (kv.second.delivered > kv.second.saved || kv.second.rewrite) writes.push_back({kv.first, kv.second.delivered});
  if (!writes.empty() &&
      !post([this, writes](Store& store) {
        std::vector<std::string> errors(writes.size());
        for (size_t i = 0; i < writes.size(); ++i) {
          // After a time-out the store connection fails fast for a while (redis_conn.cpp), so a
          // dead store costs this job one time-out, not one per channel.
          Status s = store.set_last_mess_number(writes[i].ck, writes[i].number);
          if (!s) errors[i] = s.message;
        }
        return StoreWorker::Completion([this, writes, errors] { acks_written(writes, errors); });
      })) {
    // Only once stop() gave up on the store: what is unsaved stays so.
    return;
  }
  unsaved_total_ = 0;
  unsaved_bytes_ = 0;
  early_gap_ = kAckWindowGap;
  for (const AckWrite& w : writes) {
    ChannelIn& ch = channels_[w.ck];
    ch.writing = true;
    ch.unsaved_writing = ch.unsaved;
    ch.unsaved = 0;
    ch.rewrite_writing = ch.rewrite;
    ch.rewrite = false;
    ch.write_posted = jobs_posted_;
  }
  flush_in_flight_ = !writes.empty();
}

void Delivery::acks_written(const std::vector<AckWrite>& writes, const std::vector<std::string>& errors) {
  flush_in_flight_ = false;
  for (size_t i = 0; i < writes.size(); ++i) {
    auto it = channels_.find(writes[i].ck);
    if (it == channels_.end()) continue;  // not erased while writing: cannot happen
    ChannelIn& ch = it->second;
    ch.writing = false;
    if (errors[i].empty()) {
      ch.saved = std::max(ch.saved, writes[i].number);
    } else {
      // Retried at the next flush, after kAckRetryGap.
      ch.unsaved += ch.unsaved_writing;
      unsaved_total_ += ch.unsaved_writing;
      ch.rewrite = ch.rewrite || ch.rewrite_writing;
      early_gap_ = kAckRetryGap;
      last_flush_ = Clock::now();  // the retry gap counts from the failure, not from the post
      report_store_error(ch.from, errors[i]);
    }
    ch.unsaved_writing = 0;
    ch.rewrite_writing = false;
    erase_if_done(writes[i].ck);
  }
  if (flush_forced_) {
    flush_forced_ = false;
    flush_acks(true);
  }
}

}  // namespace liner
