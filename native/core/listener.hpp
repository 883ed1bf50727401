// The incoming side of a client: accepts TCP connections from senders and parses their frame
// streams on one epoll thread, which is also the client's delivery thread: what a wake-up read
// is delivered (Delivery) before the next one. It never writes to a socket (liner_broker's
// protocol is one-way). Invalid frames, and frames that stall mid-way for longer than the
// stall timeout, close that connection only.
//
// A channel's first frame on a connection needs a store look-up (Delivery::look_up: is the
// connection key known, what was acknowledged). It runs on Delivery's store worker, so that a
// slow store (up to its 2 s timeout) never stalls the other connections: meanwhile that
// connection alone is parked. Its frames from that one on wait in its own `held` batch, with
// their memory (copies, or the buffer a big frame was assembled in; never the listener's read
// blocks, which go on with the batch), and it leaves the epoll set (removed, not masked:
// EPOLLHUP and EPOLLERR come regardless of the mask and would spin). What it holds is thus
// bounded by the one read that brought the frame. When the answer comes (Delivery's
// completions eventfd is in the epoll set), the held frames go into the batch in order, up to
// the next frame of a channel not yet verified for that connection, which starts the next
// look-up; once none is left the connection is watched again and its held memory goes with
// the batch. A refused look-up (unknown connection key, a store failure or time-out, too many
// look-ups out) closes that connection alone, its held frames discarded: nothing of them was
// acknowledged, so its sender sends them again.
// Invariants:
// - Frames of one connection reach Delivery in the order they arrived, each after its
//   channel's look-up for that connection answered.
// - A connection has one look-up out at most; a parked one is neither idle nor stalled (its
//   wait is the store's, bounded by the store's timeout), and its clock starts again when it
//   is watched again.
//
// Resource invariants (the listener must survive peers that open connections and never use
// them, and a process that runs out of file descriptors):
// - At most max_connections connections are open. One over the cap is accepted and closed at
//   once (with a reset, so that its peer learns of the refusal without waiting) and counted in
//   rejected_connections(). The descriptors the listener holds are therefore bounded by
//   max_connections + 4 (listening socket, epoll, its eventfd and Delivery's), + 1 for an
//   instant while refusing.
// - A connection that carried no byte for idle_timeout, and is not in the middle of a frame
//   (that is the stall timeout's case), is closed like any other dropped connection: Delivery
//   sees it close and writes the acks it owes first. A liner sender keeps its connection open
//   while it has nothing to send; closing it costs it one reconnect at its next send.
// - When accept fails for want of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM), the listening
//   socket is watched for no events during a back-off period (100 ms, doubling to 1 s; a
//   successful accept starts over), so that its readiness cannot spin the thread; the loop's
//   epoll timeout ends with the period. Peers meanwhile wait in the kernel's listen backlog;
//   the connections already open are served as usual.
// - Refusals, accept failures and idle closes are each logged at most once per 5 s
//   (every 5 s, LogThrottle in log.hpp), with how many happened since the previous line: a flood costs a few lines,
//   not one per event.
//
// Test and operations knobs, read at start() and taking precedence over ListenerOptions:
//   LINER_LISTENER_MAX_CONNECTIONS  the cap (a positive integer)
//   LINER_LISTENER_IDLE_MS          the idle timeout in milliseconds (0: never close idle ones)
#pragma once
#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/delivery.hpp"
#include "core/frame.hpp"
#include "core/log.hpp"
#include "core/net.hpp"

namespace liner {

struct ListenerOptions {
  // 0: min(4096, half the soft RLIMIT_NOFILE read at start()); why, at kMaxConnections in
  // listener.cpp.
  size_t max_connections = 0;
  // 0: idle connections are never closed. Five minutes: a quiet sender's connection costs one
  // reconnect (a TCP handshake and two store reads) per five minutes of silence, while the
  // descriptor of a peer that vanished without a FIN, or of a connection opened only to hold
  // a slot, comes back within minutes rather than never (Kafka's brokers close idle ones after
  // ten minutes, for the same reasons).
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(5);
};

class Listener {
 public:
  Listener(Delivery* delivery, uint32_t max_body_size,
           std::chrono::milliseconds stall_timeout = std::chrono::milliseconds(10000),
           ListenerOptions options = ListenerOptions());
  ~Listener();

  // Binds before anything is registered, so a failed bind leaves no trace in the store.
  Status bind(const std::string& localhost, std::string* bound);
  Status start();
  // Stops accepting and reading, and delivers what was read. Connections stay open until
  // close_connections(), so that senders see the close only after Delivery wrote the final acks.
  void stop();
  void close_connections();

  // Connections closed for what they sent or failed to send (invalid frames, stalls) and
  // connections refused at the cap.
  uint64_t rejected_connections() const { return rejected_.load(); }
  // Connections closed for carrying nothing for the idle timeout.
  uint64_t idle_closed_connections() const { return idle_closed_.load(); }
  // The cap in force (resolved by start()).
  size_t max_connections() const { return max_connections_.load(); }

 private:
  struct Connection {
    int fd = -1;
    uint64_t id = 0;
    FrameDecoder decoder;
    std::chrono::steady_clock::time_point last_progress;
    // Connection keys whose look-up accepted this connection: normally one (a sender uses one
    // connection per channel).
    std::vector<int32_t> verified;
    // Parked: the look-up of `looking_up` is out, the connection is out of the epoll set and
    // its frames wait in `held` (payloads copied there, none in the listener's blocks).
    bool parked = false;
    int32_t looking_up = 0;
    InboundBatch held;
    size_t held_released = 0;  // frames of `held` already in a batch (they point into it)
    explicit Connection(uint32_t max_body) : decoder(max_body) {}
    bool is_verified(int32_t ck) const {
      for (int32_t v : verified)
        if (v == ck) return true;
      return false;
    }
  };

  void loop();
  void accept_all();
  // Accept failed for want of resources: stop watching the listening socket for a while.
  void pause_accepting(int err);
  void resume_accepting_if_due(std::chrono::steady_clock::time_point now);
  // Watches the listening socket for connections, or (false) for nothing.
  void watch_listening(bool accepting);
  void refuse(int fd);
  void read_from(Connection* c, InboundBatch& batch);
  // Starts the look-up of c->looking_up and takes the connection out of the epoll set.
  void park(Connection* c, InboundBatch& batch);
  // Applies Delivery's look-up answers: releases or drops the connections that waited.
  void take_look_up_answers(InboundBatch& batch);
  // Moves held frames into the batch up to the next unverified channel; watches the
  // connection again when none is left.
  void release_held(Connection* c, InboundBatch& batch);
  void drop(Connection* c, InboundBatch& batch, const std::string& why);
  // Stalled and idle connections; due every sweep_period_.
  void sweep(InboundBatch& batch, std::chrono::steady_clock::time_point now);
  void log_due(std::chrono::steady_clock::time_point now);
  int wait_for_events(epoll_event* events, int max, std::chrono::microseconds timeout);
  // Delivers the batch and takes its blocks back for the next reads.
  void deliver(InboundBatch& batch);

  Delivery* delivery_;
  uint32_t max_body_;
  std::chrono::milliseconds stall_timeout_;
  ListenerOptions options_;
  std::chrono::milliseconds idle_timeout_{0};  // resolved by start()
  std::chrono::milliseconds sweep_period_{1000};
  std::atomic<size_t> max_connections_{0};
  int listen_fd_ = -1;
  int epfd_ = -1;
  bool have_pwait2_ = true;  // until the kernel says ENOSYS
  Waker waker_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Connection>> conns_;
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> idle_closed_{0};
  BlockPool pool_;           // listener thread: blocks whose messages were delivered
  BlockPool::Block block_;   // the block the next read goes into
  std::vector<LookUpAnswer> answers_;  // listener thread: reused by take_look_up_answers()

  // Listener thread: accept back-off.
  bool accepting_ = true;   // the listening socket is in the epoll set
  std::chrono::milliseconds accept_backoff_{0};
  std::chrono::steady_clock::time_point accept_resume_at_;
  int accept_errno_ = 0;
  LogThrottle refused_log_, accept_failed_log_, idle_log_;
};

}  // namespace liner
