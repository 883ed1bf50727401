// Status events: what a client tells its owner about peers and failures, as liner_broker 1.4's
// lnr_status_cb kinds (1..9) plus liner's own (10+).
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace liner {

enum class StatusKind : int {
  peer_connected = 1,     // a peer joined a topic we use, or a sender connected to us
  peer_disconnected = 2,  // a peer left a topic we use, or its connection ended
  peer_subscribed = 3,    // a peer subscribed to a topic we use
  peer_unsubscribed = 4,  // a peer unsubscribed from a topic we use
  route_lost = 5,         // sender: connect failed or a stream closed with messages in flight
  sender_store_error = 6,
  send_error = 7,         // sender: a write failed
  listener_store_error = 8,
  busy = 9,               // a peer's send queue is full
  writable = 10,          // liner: that queue has room again (after busy)
  store_recovered = 11,   // liner: the store answers the sender or listener again (after 6 or 8)
};

struct StatusEvent {
  StatusKind kind;
  std::string topic;
  std::string peer;
  std::string message;
};

using StatusHandler = std::function<void(const StatusEvent&)>;

// The client whose user callback (receive or status) runs on this thread right now, if any:
// such a thread must not stop that client, since stopping joins the thread itself.
inline const void*& callback_owner() {
  static thread_local const void* owner = nullptr;
  return owner;
}

// Marks the current thread as running a user callback of `owner` for the guard's lifetime.
// One thread-local look-up per guard (it wraps every delivered message).
class CallbackScope {
 public:
  explicit CallbackScope(const void* owner) : slot_(callback_owner()), saved_(slot_) { slot_ = owner; }
  ~CallbackScope() { slot_ = saved_; }
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;

 private:
  const void*& slot_;
  const void* saved_;
};

// While one lives on a thread, the status events emitted there wait, and the outermost one
// delivers them (in order) when it ends. A thread that emits while holding a lock that a
// handler's call could need (a handler may send, and a send takes WaitingSends' lock) keeps
// one alive across that lock, constructed before it and so destroyed after it.
class StatusDeferral {
 public:
  StatusDeferral() { ++depth(); }
  ~StatusDeferral() {
    if (--depth() != 0) return;
    // Moved out first: a handler may emit (and defer) again.
    while (!held().empty()) {
      std::vector<Held> events;
      events.swap(held());
      for (auto& e : events) {
        CallbackScope scope(e.owner);
        (*e.handler)(e.event);
      }
    }
  }
  StatusDeferral(const StatusDeferral&) = delete;
  StatusDeferral& operator=(const StatusDeferral&) = delete;

  static bool active() { return depth() != 0; }
  static void hold(const void* owner, std::shared_ptr<StatusHandler> handler, StatusEvent e) {
    held().push_back(Held{owner, std::move(handler), std::move(e)});
  }

 private:
  struct Held {
    const void* owner;
    std::shared_ptr<StatusHandler> handler;
    StatusEvent event;
  };
  static int& depth() {
    static thread_local int d = 0;
    return d;
  }
  static std::vector<Held>& held() {
    static thread_local std::vector<Held> h;
    return h;
  }
};

// Holds the current handler; emit() may run on any thread and never holds a lock while the
// handler runs, so the handler may call back into the client.
//
// Store errors are told once per outage, not once per failed call: after a side's store
// connection was lost (store_state(side, false)), the first error of that side's kind is
// emitted (with its topic and peer) and later ones are held back until the connection works
// again (store_state(side, true)), which emits store_recovered. A store error while the
// connection works (a key holding garbage, an error reply) is emitted, but the same text again
// only after a pause that doubles from 1 s up to 1 min, so that a retry loop cannot flood the
// handler.
class StatusSink {
 public:
  explicit StatusSink(const void* owner) : owner_(owner) {}
  void set(StatusHandler handler) {
    std::lock_guard<std::mutex> lock(mu_);
    handler_ = handler ? std::make_shared<StatusHandler>(std::move(handler)) : nullptr;
  }
  void emit(StatusKind kind, std::string topic, std::string peer, std::string message) const {
    std::shared_ptr<StatusHandler> h;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (Outage* o = outage(kind)) {
        bool hold = o->state == Outage::told || (o->state == Outage::up && held_back(*o, message));
        if (o->state == Outage::untold) o->state = Outage::told;
        if (hold) {
          ++o->held;
          return;
        }
      }
      h = handler_;
    }
    call(h, kind, std::move(topic), std::move(peer), std::move(message));
  }
  // The store connection of `side` (sender_store_error or listener_store_error) was lost
  // (`up` false) or works again.
  void store_state(StatusKind side, bool up) const {
    std::shared_ptr<StatusHandler> h;
    std::string message;
    {
      std::lock_guard<std::mutex> lock(mu_);
      Outage* o = outage(side);
      if (!o) return;
      if (!up) {
        if (o->state == Outage::up) o->state = Outage::untold;
        return;
      }
      bool told = o->state == Outage::told;
      o->state = Outage::up;
      o->last_message.clear();
      if (!told) return;  // no error was told: nothing to take back
      message = std::string(side == StatusKind::sender_store_error ? "sender" : "listener") +
                ": the store answers again" +
                (o->held ? " (" + std::to_string(o->held) + " store errors meanwhile not reported)" : "");
      o->held = 0;
      h = handler_;
    }
    call(h, StatusKind::store_recovered, "", "", std::move(message));
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Outage {
    // up: the connection works; untold: lost, no error emitted yet; told: lost, one emitted.
    enum { up, untold, told } state = up;
    uint64_t held = 0;  // errors not emitted during this outage
    std::string last_message;
    Clock::time_point quiet_until{};
    Clock::duration pause = std::chrono::seconds(1);
  };

  Outage* outage(StatusKind kind) const {
    if (kind == StatusKind::sender_store_error) return &outages_[0];
    if (kind == StatusKind::listener_store_error) return &outages_[1];
    return nullptr;
  }
  // Whether an error over a working connection repeats the last one within its pause.
  static bool held_back(Outage& o, const std::string& message) {
    auto now = Clock::now();
    if (message == o.last_message && now < o.quiet_until) return true;
    o.pause = message == o.last_message ? std::min<Clock::duration>(o.pause * 2, std::chrono::minutes(1))
                                        : Clock::duration(std::chrono::seconds(1));
    o.last_message = message;
    o.quiet_until = now + o.pause;
    return false;
  }
  void call(const std::shared_ptr<StatusHandler>& h, StatusKind kind, std::string topic, std::string peer,
            std::string message) const {
    if (!h) return;
    StatusEvent e{kind, std::move(topic), std::move(peer), std::move(message)};
    if (StatusDeferral::active()) {
      StatusDeferral::hold(owner_, h, std::move(e));
      return;
    }
    CallbackScope scope(owner_);
    (*h)(e);
  }

  const void* owner_;
  mutable std::mutex mu_;
  std::shared_ptr<StatusHandler> handler_;
  mutable Outage outages_[2];  // sender, listener
};

}  // namespace liner
