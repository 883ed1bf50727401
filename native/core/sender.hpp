// The outgoing side of a client: one TCP connection per peer address, a bounded queue per
// peer, per-channel message numbering, at-least-once retention until the listener's ack shows
// up in the store, and the offline queue in the store while the peer is unreachable.
//
// Threads: enqueue()/open_channel() run on API threads; everything that touches sockets runs
// on the sender's own thread (an epoll loop, non-blocking sockets). A slow or dead peer only
// fills its own queue: its writes never block the loop, and its queue is capped. The sender
// thread never waits on the store: the ack reads, spills and offline-queue reads and pops run
// on a StoreWorker (store_worker.hpp), at most one job per channel at a time, and their
// results come back to the loop. A slow store delays the store's part of the work (acks
// freeing queue room, replays, spills, a new connection's first write), never the writes of
// channels that have something to write.
//
// The class is one unit in several files, one concept each: sender.cpp (life, opening
// channels, views), sender_enqueue.cpp (API threads: queueing within the caps),
// sender_connection.cpp (the connection state machine), sender_writer.cpp (writing and
// retaining segments), sender_store.cpp (ack polls, spills, replays on the store worker),
// sender_loop.cpp (the thread's loop and the drain on stop); sender_channel.hpp holds a
// channel's fields by owning thread, and the invariants they keep.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/adaptive_mutex.hpp"
#include "core/buffer_pool.hpp"
#include "core/cache_line.hpp"
#include "core/compress.hpp"
#include "core/frame.hpp"
#include "core/limits.hpp"
#include "core/net.hpp"
#include "core/status.hpp"
#include "core/status_event.hpp"
#include "core/store.hpp"
#include "core/store_worker.hpp"

struct epoll_event;  // <sys/epoll.h>

namespace liner {

struct SenderOptions {
  std::string unique_name;   // U of the connection keys
  std::string source_topic;  // S: what listeners see as `from`
  // Per peer, queued + unacknowledged; 0 = the process-wide limit (limits.hpp).
  size_t max_queue_bytes = 0;
  size_t max_queue_messages = 0;
  size_t compress_threshold = 0;
  const StatusSink* status = nullptr;  // outlives the sender
};

struct SenderStats {
  uint64_t sent = 0;       // frames fully written to a socket
  uint64_t bytes_sent = 0;
  uint64_t persisted = 0;  // frames stored in the offline queue
  uint64_t reloaded = 0;   // frames read back from the offline queue
  uint64_t dropped = 0;    // best-effort frames dropped because the peer was unreachable
  uint64_t reconnects = 0;
  uint64_t queued_messages = 0;  // now: queued or awaiting acknowledgement, all peers
  uint64_t queued_bytes = 0;
};

// One message to send: the caller's bytes, copied before the call that takes it returns.
struct Payload {
  const void* data;
  size_t size;
};

// One peer as the sender sees it, for introspection.
struct ChannelInfo {
  std::string addr;
  std::string topic;  // first topic used with it
  std::vector<std::string> topics;  // every topic it serves (not those its peer unsubscribed from)
  std::string listener_unique;
  int32_t connection_key = 0;
  bool connected = false;
  uint64_t queued_messages = 0;
};

class Sender {
 public:
  Sender(SenderOptions options, std::unique_ptr<Store> store);
  ~Sender();

  Status start();
  // Sends what is queued (up to `drain`), waits for acknowledgements, stores unacknowledged
  // at-least-once messages, closes every connection and joins the thread.
  void stop(std::chrono::milliseconds drain);

  // Makes sure a channel to `addr` exists (store round trips on the caller's store).
  Status open_channel(Store& store, const std::string& addr, const std::string& listener_unique,
                      const std::string& topic);
  bool has_channel(const std::string& addr) const;
  // A busy event for `addr` went out elsewhere (messages that waited for its channel): the
  // channel reports no second one, and a writable event when its queue has room.
  void continue_busy(const std::string& addr);
  // Address of the channel to that listener ("" if none).
  std::string address_of(const std::string& listener_unique) const;
  // One peer's queue, opaque outside the sender. Channels live as long as the Sender (a peer
  // that moves keeps its channel under the new address).
  struct Channel;
  // A caller's handle on the channel enqueue last found for an address, so that its next
  // enqueue to that address skips the look-up. Opaque; it is only ever read under the
  // sender's lock, valid while the Sender that filled it lives, and one whose channel moved
  // to another address is looked up again.
  class ChannelRef {
   public:
    void reset() { channel_ = nullptr; }

   private:
    friend class Sender;
    Channel* channel_ = nullptr;
  };

  // What enqueue did. `no_channel`: there is no channel to that address (none was opened, or
  // its peer moved): nothing was queued and `status` is OK; the caller opens one
  // (open_channel) and enqueues again. Otherwise `queued` messages were queued, and `status`
  // says why the rest were not (Err::busy: the peer's queue is full).
  struct Enqueued {
    Status status;
    size_t queued = 0;
    bool no_channel = false;
  };
  // Queues `count` messages to `addr` in order under one lock, stopping at the first that
  // does not fit. `topic` is remembered for the channel, so at-least-once sends to it keep
  // working while the peer is offline. `handover`: at-least-once messages of a send_to, which
  // another replica of the topic may take if this peer leaves it (handover.hpp); never a
  // send_all copy. `ref` (optional): see ChannelRef.
  Enqueued enqueue(const std::string& addr, const std::string& topic, int32_t topic_key, const Payload* messages,
                   size_t count, bool at_least_once, bool handover, ChannelRef* ref = nullptr);
  // Queues one message handed over from another peer's queue (enqueue, with `handover`), and
  // says which channel took it and a number its ack must reach to cover it.
  Status enqueue_handed_over(const std::string& addr, const std::string& topic, int32_t topic_key,
                             const Payload& message, int32_t* connection_key, uint64_t* covered_by);
  // The peer at `addr` left the directory: what waits for it in RAM goes to its offline
  // queue now (the connection is dropped, as on a failure), where a hand-over can take it.
  // It is still tried with back-off: a peer that is alive reconnects.
  void release_peer(const std::string& addr);

  bool reachable(const std::string& addr) const;
  // How many peers are unreachable now (their last connect failed), read without a lock: a
  // caller choosing among peers asks reachable() only when some are.
  size_t unreachable_peers() const { return unreachable_peers_.load(std::memory_order_relaxed); }
  // Addresses of channels that served `topic` (for at-least-once sends to an offline peer).
  std::vector<std::string> channel_addresses(const std::string& topic) const;
  void forget_topic(const std::string& topic, const std::string& addr);
  // A peer (re)registered `addr`: retry a connection in back-off right away.
  void peer_announced(const std::string& addr, const std::string& topic);

  SenderStats stats() const;
  std::vector<ChannelInfo> channels() const;

 private:
  // Encoded frames back to back, in number order. Messages are queued, written, retained and
  // released in runs like this (one write, one hand-off, one buffer per run), not one by one.
  struct Segment {
    Bytes bytes;
    uint64_t last = 0;  // number_mess of the last frame
    size_t frames = 0;
    size_t cost = 0;             // counted against the queue caps (0 for stored frames)
    bool at_least_once = false;  // holds at-least-once frames: retained until acknowledged
    bool from_store = false;     // frames of the offline queue: never re-persisted
    // Holds frames of send_to (enqueue's `handover`), and only those: segments never mix them
    // with others, so that a spill can mark them for another replica.
    bool handover = false;
  };
  // opening: connected, waiting for the store's ack and queue length before the first write;
  // settling: the peer closed with messages written and unacknowledged, and the ack it may
  // have written as it closed is being read (a graceful close is not a failure).
  enum class State { idle, connecting, opening, connected, settling, backoff };
  using Clock = std::chrono::steady_clock;

  void loop();
  // What epoll_wait returned, in the loop and while draining alike: the waker's event, and
  // each channel's socket events (on_socket_event).
  void on_events(const epoll_event* events, int n);
  void on_socket_event(Channel* ch, uint32_t events);
  // enqueue's body; kSingle: count is 1.
  template <bool kSingle>
  Enqueued enqueue_impl(const std::string& addr, const std::string& topic, int32_t topic_key, const Payload* messages,
                        size_t count, bool at_least_once, bool handover, ChannelRef* ref);
  // Under mu_: appends one frame to the channel's incoming segments. `big`, when not empty,
  // holds the frame already encoded (outside the lock) and becomes its segment.
  void append_locked(Channel* ch, FrameHeader& h, const void* payload, size_t payload_size, size_t cost,
                     bool at_least_once, bool handover, Bytes& big);
  // Under mu_: the sender thread looks at `ch` on its next pass (take_incoming).
  void mark_dirty_locked(Channel* ch);
  // Under mu_: sets the channel's `unreachable`, keeping unreachable_peers_ in step.
  void mark_unreachable_locked(Channel* ch, bool unreachable);
  void take_incoming(Channel* ch);
  void start_connect(Channel* ch);
  void on_connected(Channel* ch);
  void on_failure(Channel* ch, const std::string& why);
  // on_failure's decision, once what was in flight is known.
  void fail(Channel* ch, const std::string& why, bool was_connected);
  // The store answered a new connection (opening): the first write can go out.
  void opened(Channel* ch);
  // A store job's outcome, run on the sender thread: `stale` when the connection's view of the
  // offline queue was dropped while the job ran (its reads no longer apply).
  using StoreThen = std::function<void(bool stale)>;
  using StoreJob = std::function<StoreThen(Store&)>;
  // Posts a job for `ch` (false: one is in flight, or the worker refused it). While it runs,
  // the worker owns ch->offline; the sender thread reads ch->queue instead.
  bool post_store(Channel* ch, StoreJob job);
  // What waited for the channel's job in flight (a connect to open, a spill), once it answered.
  void store_step(Channel* ch);
  void mirror_queue(Channel* ch);
  // A read ack counter: ch->acked follows it; an unreadable one is reported once.
  void note_ack(Channel* ch, const AckCounter& counter);
  // Releases the written segments the ack covers.
  void release_acked(Channel* ch);
  // Drops the write position and what was read from the offline queue (the store keeps it):
  // a new connection starts over from the listener's ack.
  void forget_backlog(Channel* ch);
  // Written, unacknowledged segments go back in front of the queue, to be written again or
  // stored.
  void requeue_unacked(Channel* ch);
  // Sends pending at-least-once frames to the offline queue (a store job); drops best-effort
  // ones. `force`: also within the retry pause after a failed spill (stopping).
  void spill(Channel* ch, bool force = false);
  void flush(Channel* ch);
  // Passes over whole frames at the front of `q` that this connection already carried.
  void skip_written(Channel* ch, std::deque<Segment>& q);
  // Accounts for `written` bytes of `q` that went out: frames completed, segments finished.
  uint64_t advance(Channel* ch, std::deque<Segment>& q, size_t written);
  void finish_front(Channel* ch, std::deque<Segment>& q);
  // Keeps a written at-least-once segment until its ack (small ones are packed together).
  void retain(Channel* ch, Segment&& s);
  void load_backlog(Channel* ch);
  // Reads the ack and pops what it covers from the offline queue (a store job).
  void poll_acks(Channel* ch);
  // After a pop whose outcome is unknown: forget what was read of the offline queue and read
  // it again from its head (flush() does, skipping frames already written).
  void reread_store_queue(Channel* ch);
  static void report_unreadable_ack(int32_t ck, const std::string& addr);
  // Takes a segment out of the queue's accounting (batched: settle_locked() applies it) and keeps
  // its buffer for reuse.
  void release(Channel* ch, Segment& s);
  // Under mu_: applies the batched releases to held_bytes / held_count, as enqueue's additions
  // are (one lock per channel and pass, not a locked update per message).
  void settle_locked(Channel* ch);
  // Under mu_: whether `ch` has room for `cost` more bytes (and one more message).
  bool has_room_locked(const Channel* ch, size_t cost) const;
  // Under mu_, when it has none: the Err::busy to return; *first says whether this refusal is
  // news (report_busy it once the lock is released).
  Status refuse_locked(Channel* ch, bool* first);
  void report_busy(Channel* ch, const Status& busy);
  void close_socket(Channel* ch);
  void set_events(Channel* ch, uint32_t events);
  bool has_work(const Channel* ch) const;
  void drain_and_close(std::chrono::steady_clock::time_point deadline);
  void emit(StatusKind kind, const Channel* ch, const std::string& message) const;
  size_t queue_bytes_cap() const;
  Clock::time_point next_ack_poll(const Channel* ch) const;
  size_t queue_count_cap() const;

  SenderOptions opt_;
  Waker waker_;
  int epfd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  long long stop_deadline_ms_ = 0;  // drain budget handed to the thread by stop()

  // Every send reads parked_ right after it releases mu_, which both threads write all the
  // time: each on a line of its own, so that the read stays a cache hit while the sender thread
  // is awake (it writes parked_ only when it goes to sleep).
  alignas(kCacheLine) std::atomic<bool> parked_{false};  // the thread sleeps in epoll_wait: enqueue must wake it
  // Channel maps, incoming queues, dirty list, flags. The sender thread takes it with
  // YieldingLock, callers with lock() (adaptive_mutex.hpp says why).
  alignas(kCacheLine) mutable AdaptiveMutex mu_;
  std::map<int32_t, std::unique_ptr<Channel>> channels_;
  std::map<std::string, Channel*> by_addr_;
  std::atomic<size_t> unreachable_peers_{0};  // channels with `unreachable` set; changed under mu_
  std::vector<Channel*> dirty_;
  std::vector<Channel*> ready_;  // sender thread: channels with more to write right away
  size_t taken_bytes_ = 0;       // sender thread: bytes take_incoming took in the last pass

  mutable std::mutex stats_mu_;
  SenderStats stats_;

  // Declared last, so destroyed first: its thread runs jobs on the channels.
  std::unique_ptr<StoreWorker> store_;
};

}  // namespace liner
