// What a client has received and not yet handed to the JS thread: messages packed into arenas,
// and status events.
//
// The core calls receive() on the client's delivery thread once per message. Copying each
// payload into a ~64 KiB arena and waking the JS thread only when it is idle means that, under
// load, one cross-thread call carries hundreds of messages; JS then sees each arena as one
// Buffer and slices it per message (no second copy). Status events ride the same wake-up.
//
// Flow control: bytes waiting here are capped (max_pending_bytes). When JS falls behind,
// receive() blocks the delivery thread; the core's receive queue then fills, its listener stops
// reading and TCP pushes back on the senders, so memory stays bounded instead of growing.
//
// Threads: receive() on the delivery thread; status() on any core thread; take*() and stats()
// on the JS thread; set_closing() and abandon() on any thread. The wake-up callback runs under
// the lock, which is what lets abandon() promise that no wake-up follows it.
#pragma once
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

// One sealed arena: payloads back to back, and per message {offset, size, to id, from id}.
struct Arena {
  char* data = nullptr;  // malloc'd; ownership passes to whoever takes the arena
  size_t capacity = 0;
  size_t used = 0;
  std::vector<uint32_t> meta;
};

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
  static constexpr size_t kArenaSize = 64 * 1024;
  static constexpr size_t kMaxEvents = 4096;

  // `wake` is called (under the inbox lock, so it must not block or call back) when the JS
  // thread should come and take what is waiting.
  Inbox(size_t max_pending_bytes, std::function<void()> wake);
  ~Inbox();
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  // Delivery thread. Copies the message; blocks while too many bytes are waiting (unless the
  // client is closing or the JS side is gone).
  void receive(const std::string& to, const std::string& from, const char* data, size_t size);
  // Any thread; never blocks.
  void status(const liner::StatusEvent& event);

  // JS thread. Takes the oldest arena. Returns false when nothing is waiting, and from then on
  // the next message wakes JS again.
  bool take(Arena* out, std::vector<std::string>* new_names);
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
  void seal_current();
  void wake_locked();

  const size_t max_pending_bytes_;
  const std::function<void()> wake_;

  mutable std::mutex mu_;
  std::condition_variable room_;
  Arena current_;
  std::vector<Arena> sealed_;  // oldest first; consumed from sealed_head_
  size_t sealed_head_ = 0;
  std::unordered_map<std::string, uint32_t> ids_;
  RecentName recent_to_, recent_from_;  // last names looked up, for runs of messages
  std::vector<std::string> new_names_;  // named since the last take()
  std::vector<liner::StatusEvent> events_;
  bool js_idle_ = true;        // JS found nothing the last time it looked
  bool wake_pending_ = false;  // a wake-up was issued and JS has not handled it yet
  bool closing_ = false;
  bool abandoned_ = false;
  InboxStats stats_;
};

}  // namespace liner_node
