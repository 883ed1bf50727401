// The receiving half after the socket: deduplicates decoded frames by (connection key,
// number_mess), resolves names, decompresses, calls the user callback and writes
// acknowledgements to the store.
//
// It runs on the listener's thread, right after the read that brought the frames in: the
// payload is still in that core's cache when the callback reads it, and no frame waits in a
// queue for a second thread to wake up. While a callback runs nothing is read, so a slow
// consumer makes TCP push back on its senders.
//
// The store is never called on that thread: a slow store (each call bounded by its 2 s
// timeout) would stall delivery for every peer. Its round trips are jobs of a StoreWorker
// thread that Delivery owns ("lnr-lstore", store_worker.hpp); their completions run on the
// listener's thread when it calls run_store_completions(), woken through
// store_completions_fd(). Three kinds of job:
// - Channel look-ups. A channel's first frame on a connection needs its sender
//   ("lnr_connection:{ck}:sender") and ack counter. The listener asks (look_up()) and holds
//   that connection's frames back, reading it no further, until the answer came (listener.hpp);
//   every other connection is read and delivered meanwhile. The answer is kept per
//   (connection, channel) and applied when that first frame is delivered, not when it came:
//   frames and the closed marker of the channel's previous connection may still be ahead of
//   it in the batch.
// - Ack writes ("lnr_connection:{ck}:mess_number"), written after the callback returned: about
//   once a second, sooner when many messages are waiting to be acknowledged (so at-least-once
//   senders can free memory) or when the stream pauses with some waiting (a sender may have
//   stopped at its queue cap: ack_window.hpp), and at once when a connection closes (so a
//   restarting sender starts its numbering after what was really delivered). One flush job at
//   a time carries every channel's due number; a flush that falls due meanwhile waits for it.
// - Refusal reports (Store::report_refused), fire and forget.
//
// What it trusts from the wire (invariants; docs/security.md lists what a forged frame costs):
// - A frame is acknowledged only after it was handed to the receive callback, or when it is
//   for a topic this client deliberately unsubscribed (liner_broker acks those; a 1.3.1 sender
//   caches routes forever and would resend them forever), or best effort (nothing resends it).
// - An at-least-once frame for a topic this client does not serve (not yet subscribed: a
//   subscribe after start; never: a reused address, a forged key) is refused: nothing of that
//   connection is delivered or acknowledged from that frame on and the listener closes it, so
//   the sender keeps the messages and tries again (after a subscribe they go through).
// - A connection key the store does not know (no "lnr_connection:{ck}:sender") creates no state,
//   no store key and no ack: the connection is refused. So is a channel whose ack counter
//   cannot be read (the store is down, or too slow to answer in time): without it, duplicates
//   cannot be told apart. So is a frame whose channel has no look-up answer for its connection
//   (a newer connection took the channel over).
// - A number more than kMaxNumberJump past what the channel delivered is refused: no real
//   sender jumps that far (a restart skips 2^24), and accepting it would make every later real
//   message look like a duplicate, in the store too, across restarts.
// - A channel's state is dropped when its connection ended and its acks are written (the write
//   came back successful): one with a write in flight, or unsaved, stays, and the next flush
//   retries it. It also stays while a look-up of that channel is out, for the next rule.
// - Jobs run in the order they were posted, so a look-up posted after an ack write of its
//   channel reads that write. One posted before it may read the counter as it was before: when
//   the channel's state is still here and a write was posted after the look-up, a lower counter
//   is not taken for a sender that started over; the higher of the two numbers wins.
// - A message this receiver can never take (above its max message size, on the wire or once
//   decompressed) is refused alone: it is acknowledged (so its sender stops resending it),
//   logged, and reported through the store (Store::report_refused) so that its sender tells
//   its owner which number was dropped; everything after it flows. A report that finds
//   kMaxRefusalReports already waiting for the store is dropped, and that is logged.
// - Store jobs outstanding are bounded: look-ups by kMaxLookUps (the listener has one out per
//   connection at most; beyond the bound a connection is refused and its sender retries), one
//   ack flush, kMaxRefusalReports reports.
// - stop() posts the final ack flush and waits for the store a few seconds at most
//   (kStopDeadline): the listener closes its connections only after that.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/buffer_pool.hpp"
#include "core/counter.hpp"
#include "core/frame.hpp"
#include "core/log.hpp"
#include "core/net.hpp"
#include "core/status_event.hpp"
#include "core/store.hpp"
#include "core/store_worker.hpp"

namespace liner {

struct Inbound {
  uint64_t conn_id = 0;  // 0 with closed=true: a connection-closed marker
  bool closed = false;
  bool oversize = false;  // above this receiver's max message size: header only, body skipped
  FrameHeader header;
  // The payload as on the wire (compressed if the flag says so), in one of the batch's blocks
  // or copies. Kept small (48 bytes): a full receive queue holds hundreds of thousands.
  const char* payload = nullptr;

  const char* data() const { return payload; }
  size_t size() const { return header.data_len; }
};

// What the listener delivers at once: decoded frames and the memory their payloads live in.
struct InboundBatch {
  std::vector<Inbound> items;
  std::vector<BlockPool::Block> blocks;       // socket reads, back to the listener's pool
  std::vector<std::unique_ptr<char[]>> copies;  // payloads of short reads, copied out
  // Frames that straddled reads, in the buffer the decoder assembled them in (behind a
  // pointer: payloads point into them, and the batch moves).
  std::vector<std::unique_ptr<std::string>> frames;
  size_t bytes = 0;  // memory held (blocks, copies, items), against Delivery's batch budget
  // Filled by Delivery: connections it refused, for the listener to close.
  std::vector<uint64_t> refused;

  bool empty() const { return items.empty(); }
  // Drops everything (blocks a caller wants back must be moved out first).
  void clear() {
    items.clear();
    blocks.clear();
    copies.clear();
    frames.clear();
    refused.clear();
    bytes = 0;
  }
};

// How far past what a channel delivered a frame's number may be (see the invariants above).
// Senders stay far below it: a restart skips kResumeGap (2^24, sender.cpp: open_channel); best-effort
// messages dropped while a peer was unreachable leave gaps too, 2^32 leaves room for billions.
constexpr uint64_t kMaxNumberJump = uint64_t(1) << 32;

using ReceiveFn = std::function<void(const std::string& to, const std::string& from,
                                     const char* data, size_t size)>;
// Called after the receive calls of one delivered batch (not after a batch that delivered
// nothing): a receiver that gathers messages can publish them once per batch instead of
// once per message.
using BatchDoneFn = std::function<void()>;

struct DeliveryStats {
  uint64_t delivered = 0;
  uint64_t bytes_delivered = 0;
  uint64_t duplicates = 0;
  uint64_t unknown_topic = 0;  // frames for a topic not served here (acked if unsubscribed)
  uint64_t undecodable = 0;
  uint64_t queued_bytes = 0;  // now: read from sockets, not yet delivered
};

// The answer to look_up(), for the listener: whether the connection may go on with that channel.
struct LookUpAnswer {
  uint64_t conn_id = 0;
  int32_t connection_key = 0;
  bool accepted = false;  // false: refused (already logged and reported); close the connection
};

class Delivery {
 public:
  // Look-ups out at once, at most: the listener's default connection cap (listener.cpp), since
  // it keeps one out per connection at most.
  static constexpr size_t kMaxLookUps = 4096;
  static constexpr size_t kMaxRefusalReports = 64;
  // stop() waits this long at most for the final acks: past the store's 2 s timeout, so that
  // the final write gets its full chance after a flush in flight timed out.
  static constexpr std::chrono::seconds kStopDeadline{3};

  // `store` becomes the store worker's. `status` (may be null) outlives the delivery.
  // `max_batch_bytes` bounds what the listener reads before it delivers (0: the default).
  // deliver() runs as a user callback of `callback_owner` (see CallbackScope), once per batch
  // rather than once per message.
  Delivery(std::unique_ptr<Store> store, ReceiveFn receive, BatchDoneFn batch_done,
           size_t max_batch_bytes, size_t max_message_size, const StatusSink* status,
           const void* callback_owner = nullptr);

  // Threads: start(), look_up(), run_store_completions(), deliver(), tick() and
  // until_ack_due() on the listener's thread (or before it starts); stop() after it stopped;
  // the rest from anywhere.

  // Starts the store worker's thread.
  Status start();
  // Writes the final acks (waits for the store up to kStopDeadline).
  void stop();

  // Asks the store about channel `ck` of connection `conn_id`: the answer comes out of
  // run_store_completions(). False when it cannot be asked (too many look-ups out): the
  // connection is refused (logged and reported here) and the listener closes it.
  bool look_up(int32_t ck, uint64_t conn_id);
  // Readable when store completions are ready; the listener watches it.
  int store_completions_fd() const { return completions_waker_.fd(); }
  // Runs the store completions that are ready; the look-up answers among them are appended
  // to `answers`.
  void run_store_completions(std::vector<LookUpAnswer>& answers);

  // Delivers every frame of the batch and flushes acks that fell due. The batch keeps its
  // memory for the caller to recycle; batch.refused gets the connections to close.
  void deliver(InboundBatch& batch);
  // Flushes acks that fell due with nothing new to deliver.
  void tick() { flush_acks(false); }
  // How long the listener may sleep before an ack flush falls due.
  std::chrono::microseconds until_ack_due() const;
  // Bytes the listener gathers at most before it delivers them.
  size_t max_batch_bytes() const { return max_batch_bytes_; }

  void set_topic(int32_t topic_key, const std::string& name);
  void remove_topic(int32_t topic_key);
  DeliveryStats stats() const;

 private:
  struct ChannelIn {
    std::string from;
    uint64_t delivered = 0;  // highest number handed to the callback
    uint64_t saved = 0;      // highest number the store confirmed
    uint64_t conn_id = 0;    // connection that last carried this channel
    uint64_t unsaved = 0;    // delivered since the last write was posted
    bool rewrite = false;    // the stored counter is unreadable: write it at the next flush
    bool closed = false;     // conn_id ended; the state waits for its acks to be written
    // The ack write in flight (at most one flush job is out): what it took from `unsaved`
    // and `rewrite`, given back if it fails.
    bool writing = false;
    uint64_t unsaved_writing = 0;
    bool rewrite_writing = false;
    uint64_t write_posted = 0;  // store job number of the last ack write posted for it
  };
  // A look-up out, then its answer, until its first frame applies it.
  struct LookUp {
    uint64_t posted = 0;  // store job number
    bool answered = false;
    std::string from;
    AckCounter acked;
  };
  // What a look-up job found (worker thread), for its completion.
  struct LookUpResult {
    std::string from;
    AckCounter acked;
    std::string refusal;      // non-empty: the connection is refused for this
    std::string store_error;  // the store failed (reported as a listener store error)
  };
  struct AckWrite {
    int32_t ck;
    uint64_t number;
  };

  void deliver_one(const Inbound& in, const std::string& to, ChannelIn& ch);
  void report_store_error(const std::string& from, const std::string& message);
  // A message that can never be delivered here: acknowledged, logged and reported.
  void refuse_message(const FrameHeader& h, ChannelIn& ch, const std::string& why);
  // Inline for the common case, the channel of the previous frame on the same connection.
  // nullptr: the channel could not be verified (the connection was refused).
  ChannelIn* channel(int32_t ck, uint64_t conn_id, InboundBatch& batch) {
    if (last_channel_ && last_ck_ == ck && last_channel_->conn_id == conn_id) return last_channel_;
    return find_channel(ck, conn_id, batch);
  }
  // The channel's state for this connection: on its first frame there, made from the answer
  // of its look-up.
  ChannelIn* find_channel(int32_t ck, uint64_t conn_id, InboundBatch& batch);
  // Refuses the rest of a connection's stream: nothing more of it is delivered or acked.
  void refuse(uint64_t conn_id, int32_t ck, InboundBatch& batch, const std::string& why);
  // The log line and status event of a refused connection.
  void report_refusal(int32_t ck, const std::string& why);
  bool post(StoreWorker::Job job);
  void look_up_done(uint64_t conn_id, int32_t ck, LookUpResult result);
  void forget_look_up(std::map<std::pair<uint64_t, int32_t>, LookUp>::iterator it);
  // Drops channel ck's state if its connection ended and nothing of it waits for the store.
  void erase_if_done(int32_t ck);
  void flush_acks(bool force, std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());
  void acks_written(const std::vector<AckWrite>& writes, const std::vector<std::string>& errors);
  void refusal_reported(const std::string& from, const std::string& error);
  // Enough delivered without an ack that the flush should not wait for its period.
  bool early_flush_wanted() const;
  // When the acks of what waits for one are due: the period, the window, or a pause.
  std::chrono::steady_clock::time_point next_flush_due() const;
  // When deliveries waiting for their ack are flushed because the stream paused (ack_window.hpp).
  std::chrono::steady_clock::time_point idle_flush_due() const;
  void connection_closed(uint64_t conn_id);

  ReceiveFn receive_;
  BatchDoneFn batch_done_;  // may be empty
  const void* callback_owner_;
  size_t max_batch_bytes_;
  size_t max_message_size_;
  const StatusSink* status_;
  Waker completions_waker_;  // before worker_: the worker wakes it until it is destroyed
  std::unique_ptr<StoreWorker> worker_;

  mutable std::mutex mu_;
  std::map<int32_t, std::string> topics_;  // topic key -> name this client answers to
  std::set<int32_t> unsubscribed_;          // keys of topics it deliberately left
  std::atomic<uint64_t> topics_version_{1};  // bumped by every change to topics_

  // Listener thread only (and stop()'s, once the listener stopped).
  std::map<int32_t, std::string> topics_seen_;  // copy of topics_ at topics_seen_version_
  std::set<int32_t> unsubscribed_seen_;         // and of unsubscribed_
  std::set<uint64_t> refused_;  // connections refused, until their closed marker arrives
  LogLimiter refusal_log_{std::chrono::seconds(5)};  // connections refused
  LogLimiter drop_log_{std::chrono::seconds(5)};     // messages refused (refuse_message)
  LogLimiter report_drop_log_{std::chrono::seconds(5)};  // refusal reports not sent
  uint64_t topics_seen_version_ = 0;
  std::map<int32_t, ChannelIn> channels_;
  ChannelIn* last_channel_ = nullptr;  // most frames come in runs from one channel
  int32_t last_ck_ = 0;
  // Look-ups by (connection, channel), and how many of them each channel has.
  std::map<std::pair<uint64_t, int32_t>, LookUp> look_ups_;
  std::unordered_map<int32_t, uint32_t> look_ups_of_channel_;
  size_t look_ups_out_ = 0;  // look-up jobs whose completion has not run (kMaxLookUps)
  size_t refusal_reports_out_ = 0;
  std::vector<LookUpAnswer> answers_;  // filled by look-up completions
  uint64_t jobs_posted_ = 0;  // numbers the store jobs, in the order the worker runs them
  bool flush_in_flight_ = false;
  bool flush_forced_ = false;  // a forced flush fell due while one was in flight
  bool started_ = false;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point last_flush_;
  std::chrono::steady_clock::time_point last_arrival_;  // end of the last batch delivered
  std::chrono::steady_clock::duration early_gap_{};  // kAckWindowGap, or kAckRetryGap
  uint64_t unsaved_total_ = 0;
  uint64_t unsaved_bytes_ = 0;  // payload bytes of those
  // Written by the listener thread only, read by stats(): no lock per message.
  RelaxedCounter delivered_, bytes_delivered_, duplicates_, unknown_topic_, undecodable_;
  RelaxedCounter in_hand_;  // bytes of the batch being delivered
};

}  // namespace liner
