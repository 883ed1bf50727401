// Status events: what a client tells its owner about peers and failures, as liner_broker 1.4's
// lnr_status_cb kinds (1..9) plus liner's own (10+).
#pragma once
#include <functional>
#include <memory>
#include <mutex>
#include <string>

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

// Holds the current handler; emit() may run on any thread and never holds a lock while the
// handler runs, so the handler may call back into the client.
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
      h = handler_;
    }
    if (!h) return;
    CallbackScope scope(owner_);
    (*h)(StatusEvent{kind, std::move(topic), std::move(peer), std::move(message)});
  }

 private:
  const void* owner_;
  mutable std::mutex mu_;
  std::shared_ptr<StatusHandler> handler_;
};

}  // namespace liner
