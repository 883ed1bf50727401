// Sends that wait for store work before they can be queued on a channel: the route of a topic
// the cache does not know (a client that must not look routes up on the caller's thread: Node's
// JS thread), or the connection key of a channel to a peer the sender has none to yet. The
// caller's thread never waits on the store for them: the message is copied here, a thread of
// this unit does the store work on its own connection, and then queues the message as the
// caller would have.
//
// Invariants:
// - One queue, in the order messages were added, flushed from its front: a message is queued
//   on its channel only after every message added before it. A key (a topic's route, or a
//   peer's channel) is "waiting" from its first message's add until its last is flushed; while
//   any key waits, active() is true and every send takes the owner's slow path under lock(),
//   where a send that would go to a waiting key is added behind it. So the messages of one
//   thread to one topic or peer leave in the order they were sent, around the moment the route
//   or channel appears. (A send to a topic and peer that wait for nothing goes at once.)
// - The store work is done for the front message's key, then it is flushed; the worker does
//   the store work of one key at a time, so head-of-line waiting costs nothing more.
// - Bounded: at most `max_messages` and `max_bytes` wait per key (from a peer's send-queue caps);
//   add_locked() refuses beyond that (Err::busy, as a full send queue does). Keys are the
//   topics and peers a client sends to.
// - Store work that fails on the store (down, slow) is tried again with back-off (200 ms
//   doubling to 2 s) while its messages wait: an outage delays them, it does not drop them.
//   A message is dropped only when the store answered and there is nowhere to send it
//   (nobody serves the topic), or at stop() when the store stayed down; each drop is counted
//   and reported once per key and cause.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.hpp"
#include "core/store.hpp"

namespace liner {

class WaitingSends {
 public:
  enum class KeyKind { route, channel };
  struct Key {
    KeyKind kind;
    std::string name;  // the topic (route) or the peer's address (channel)
    bool operator<(const Key& o) const { return kind != o.kind ? kind < o.kind : name < o.name; }
    bool operator==(const Key& o) const { return kind == o.kind && name == o.name; }
  };
  // One message, as it was sent. For a channel key: topic_key, and the peer's unique_name
  // that the channel is opened for; `all` is false (a send_all copy for one peer is never
  // sent anywhere else).
  struct Message {
    std::string topic;
    int32_t topic_key = 0;
    std::string unique_name;
    std::string data;
    bool at_least_once = true;
    bool all = false;
    bool handover = false;  // as Sender::enqueue's (for a route key too: decided when sent)
    bool follows = false;  // goes where the message before it went (a send_to_many batch)
  };
  // Worker thread, no lock held: does the key's store work on the worker's store. A failed
  // Status is retried later; the messages wait.
  using Resolve = std::function<Status(Store&, const Key&, const Message& first)>;
  // Worker thread, under lock(): queues one message now that the store work is done; it must
  // not add to this queue. Err::busy leaves it waiting (tried again soon); Err::store does the
  // key's store work again first (a channel that went away); any other error drops it.
  using Flush = std::function<Status(const Key&, const Message&)>;
  // Worker thread, no lock held: `count` messages of `key` were dropped because of `why`.
  using Dropped = std::function<void(const Key&, size_t count, const std::string& why)>;
  // Worker thread, no lock held: every message of `key` was queued, and add_locked() had
  // refused one of them (Err::busy) meanwhile.
  using Refusing = std::function<void(const Key&)>;

  WaitingSends(std::unique_ptr<Store> store, Resolve resolve, Flush flush, Dropped dropped, Refusing refused_ended);
  ~WaitingSends();
  WaitingSends(const WaitingSends&) = delete;
  WaitingSends& operator=(const WaitingSends&) = delete;

  Status start();
  // Gives the worker until `deadline` to finish what waits, then drops the rest (reported).
  void stop(std::chrono::steady_clock::time_point deadline);

  // True while any message waits (one relaxed load: the send path checks it on every send).
  bool active() const { return entries_.load(std::memory_order_relaxed) != 0; }
  std::unique_lock<std::mutex> lock() { return std::unique_lock<std::mutex>(mu_); }
  // Under lock().
  bool has_locked(const Key& key) const { return keys_.count(key) != 0; }
  // Under lock(): appends `m` to `key`'s entry, creating it (and waking the worker) if needed.
  // Err::busy beyond the caps; *first_refusal: the first for this entry (report it once).
  Status add_locked(const Key& key, Message m, size_t max_messages, size_t max_bytes, bool* first_refusal);

  size_t waiting_messages() const;
  size_t waiting_bytes() const;
  uint64_t dropped() const { return dropped_.load(); }

 private:
  struct Waiting {
    Key key;
    Message message;
  };
  struct KeyState {
    size_t count = 0;        // its messages in the queue
    size_t bytes = 0;
    bool resolved = false;   // the store work is done: its messages may be flushed
    bool refused = false;    // add_locked() refused a message for it
  };
  struct Report {
    Key key;
    size_t count;
    std::string why;
  };
  using Reports = std::vector<Report>;
  void loop();
  // Under mu_: flushes from the front while keys are resolved. Keys whose every message went,
  // after a refusal, are added to *ended.
  void flush_locked(Reports* reports, std::vector<Key>* ended);
  // Under mu_: the front message is gone (flushed or dropped).
  void pop_locked(std::vector<Key>* ended);
  void report(Reports& reports);

  std::unique_ptr<Store> store_;  // the worker thread's only
  Resolve resolve_;
  Flush flush_;
  Dropped dropped_report_;
  Refusing refused_ended_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Waiting> queue_;
  std::map<Key, KeyState> keys_;
  std::atomic<size_t> entries_{0};  // keys_.size(), read without the lock
  size_t messages_ = 0;
  size_t bytes_ = 0;
  std::atomic<uint64_t> dropped_{0};
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::milliseconds backoff_{0};
  bool stopping_ = false;
  std::chrono::steady_clock::time_point deadline_{};
  std::thread thread_;
};

}  // namespace liner
