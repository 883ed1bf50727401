// What a client has received and not yet handed to the JS thread: messages packed into arenas,
// and status events.
//
// The core calls receive() on the client's delivery thread once per message, and flush() after
// each batch of them. receive() copies the payload into the arena being filled, which only that
// thread touches (no lock per message); a full arena, and at flush() the partly filled one, is
// published to the JS thread under the lock, waking it if it was idle. Under load one
// cross-thread call so carries hundreds of messages; JS sees each arena as one Buffer and
// slices it per message (no second copy). Status events ride the same wake-up. Full-size
// arenas come from, and return to, arena_pool.
//
// Flow control: bytes published and not yet taken are capped (max_pending_bytes). When JS
// falls behind, publishing blocks the delivery thread; the core's receive queue then fills,
// its listener stops reading and TCP pushes back on the senders, so memory stays bounded
// instead of growing.
//
// Threads: receive() and flush() on the delivery thread; status() on any core thread; take*()
// and stats() on the JS thread; set_closing() and abandon() on any thread. The wake-up
// callback runs under the lock, which is what lets abandon() promise that no wake-up follows.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status_event.hpp"

namespace liner_node {

// One arena: payloads back to back, and per message {offset, size, to id, from id}.
struct Arena {
  char* data = nullptr;  // ownership passes to whoever takes the arena: release with release_block
  size_t capacity = 0;
  size_t used = 0;
  bool pooled = false;  // data is an arena_pool block
  std::vector<uint32_t> meta;
  std::vector<std::string> new_names;  // names given their ids in this arena, in id order
};

// Frees an arena's data (back to arena_pool when it came from there).
void release_block(char* data, bool pooled);

struct InboxStats {
  uint64_t messages = 0;       // handed over by the core
  uint64_t bytes = 0;
  uint64_t arenas = 0;         // taken by JS
  uint64_t wakes = 0;          // cross-thread wake-ups issued
  uint64_t blocked = 0;        // times receive() waited for room
  uint64_t dropped = 0;        // messages dropped after abandon() (the JS side is gone)
  uint64_t events_dropped = 0; // status events dropped because too many were waiting
  size_t pending_bytes = 0;    // now
  size_t max_pending_bytes = 0;  // high-water mark
};

class Inbox {
 public:
  static constexpr size_t kMaxEvents = 4096;

  // `wake` is called (under the inbox lock, so it must not block or call back) when the JS
  // thread should come and take what is waiting.
  Inbox(size_t max_pending_bytes, std::function<void()> wake);
  ~Inbox();
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  // Delivery thread. Copies the message; publishing a full arena blocks while too many bytes
  // are waiting (unless the client is closing or the JS side is gone).
  void receive(const std::string& to, const std::string& from, const char* data, size_t size);
  // Delivery thread, after the receive() calls of one batch: publishes what they gathered.
  void flush();
  // Any thread; never blocks.
  void status(const liner::StatusEvent& event);

  // JS thread. Takes the oldest published arena into *out, whose metadata vector (cleared)
  // is kept for a later arena. Returns false when nothing is waiting, and from then on the
  // next publish wakes JS again.
  bool take(Arena* out);
  // JS thread. Takes the waiting status events and acknowledges the wake-up being handled.
  void take_events(std::vector<liner::StatusEvent>* out);

  // true: the client is stopping, deliveries no longer wait for room (JS keeps draining, but a
  // consumer that stopped reading must not hold the stop up). false: it runs (again).
  void set_closing(bool closing);
  // The JS side is gone (garbage collected, environment torn down): from now on messages are
  // dropped and no wake-up is issued.
  void abandon();

  InboxStats stats() const;

 private:
  struct RecentName {
    std::string name;
    uint32_t id = 0;
    bool known = false;
  };
  uint32_t name_id(const std::string& name, RecentName& recent);
  uint32_t lookup_id(const std::string& name);
  void start_arena(size_t size);
  void publish();
  void wake_locked();

  const size_t max_pending_bytes_;
  const size_t arena_size_;  // never above the cap, so that a full arena fits under it
  const std::function<void()> wake_;

  // Delivery thread only.
  Arena filling_;
  std::unordered_map<std::string, uint32_t> ids_;
  RecentName recent_to_, recent_from_;  // last names looked up, for runs of messages
  std::vector<uint32_t> next_meta_;     // a recycled metadata vector for the next arena
  std::atomic<bool> abandoned_{false};  // also read without the lock, to skip copying
  std::atomic<uint64_t> dropped_unpublished_{0};

  mutable std::mutex mu_;
  std::condition_variable room_;
  std::vector<Arena> published_;  // oldest first; consumed from published_head_
  size_t published_head_ = 0;
  std::vector<std::vector<uint32_t>> spare_meta_;  // metadata vectors JS is done with
  std::vector<liner::StatusEvent> events_;
  bool js_idle_ = true;        // JS found nothing the last time it looked
  bool wake_pending_ = false;  // a wake-up was issued and JS has not handled it yet
  bool closing_ = false;
  InboxStats stats_;
};

}  // namespace liner_node
