// The native half of the TypeScript Client (src/client.ts): one core liner::Client, the Inbox
// that carries its messages to the JS thread, and the thread-safe function that wakes that
// thread. The surface is declared in src/native.ts; policy (states, options, error codes)
// lives in TypeScript, this file only moves calls and bytes.
//
// Which thread does what:
//   - store round trips (open, run, stop, subscribe, ...) run on libuv's thread pool and
//     return Promises; so does every core call that may wait for run/stop (they hold the
//     core's lifecycle lock for seconds), e.g. applying the advertise address;
//   - sendTo/sendAll run on the JS thread and only enqueue (except the first send to a topic
//     or peer, which asks Redis where it lives and opens the channel);
//   - the core's delivery thread only copies into the Inbox and, when JS is idle, wakes it.
//
// A client can run, stop and run again: while stopped, the wake-up function stays (messages
// delivered during the stop still reach JS) but no longer keeps the event loop alive.
//
// Lifetime: the core client is shared with in-flight tasks (CoreState), the inbox with the
// core's threads. A client that is garbage-collected, or whose environment (worker thread,
// process) ends while it still runs, is "abandoned": JS is never called again and the core is
// stopped off the JS thread (synchronously at environment teardown).
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "core/client.hpp"
#include "node/inbox.hpp"

namespace liner_node {

// The core client, shared by the JS object and its in-flight tasks. Only the JS thread
// releases it, so JS-thread calls may use the raw pointer without taking a reference.
class CoreState {
 public:
  void adopt(std::unique_ptr<liner::Client> client) {
    std::lock_guard<std::mutex> lock(mu_);
    owner_ = std::move(client);
    raw_.store(owner_.get(), std::memory_order_release);
  }
  std::shared_ptr<liner::Client> get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return owner_;
  }
  liner::Client* raw() const { return raw_.load(std::memory_order_acquire); }
  // JS thread only. The last holder (maybe a task still running) destroys the client.
  std::shared_ptr<liner::Client> release() {
    std::lock_guard<std::mutex> lock(mu_);
    raw_.store(nullptr, std::memory_order_release);
    return std::move(owner_);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<liner::Client> owner_;
  std::atomic<liner::Client*> raw_{nullptr};
};

class ClientWrap : public Napi::ObjectWrap<ClientWrap> {
 public:
  static Napi::Function define(Napi::Env env);

  explicit ClientWrap(const Napi::CallbackInfo& info);
  ~ClientWrap() override;

 private:
  // Store round trips, as Promises.
  Napi::Value open(const Napi::CallbackInfo& info);
  Napi::Value run(const Napi::CallbackInfo& info);
  Napi::Value stop(const Napi::CallbackInfo& info);
  Napi::Value subscribe(const Napi::CallbackInfo& info);
  Napi::Value unsubscribe(const Napi::CallbackInfo& info);
  Napi::Value refresh(const Napi::CallbackInfo& info);
  Napi::Value list_addresses(const Napi::CallbackInfo& info);
  Napi::Value pending_by_peer(const Napi::CallbackInfo& info);
  Napi::Value clear_stored_messages(const Napi::CallbackInfo& info);
  Napi::Value clear_addresses_of_topic(const Napi::CallbackInfo& info);

  // JS thread, synchronous. sendTo/sendAll are bound to the instance (see the constructor):
  // info.Data() is the wrapper.
  static Napi::Value send_to(const Napi::CallbackInfo& info);
  static Napi::Value send_all(const Napi::CallbackInfo& info);
  static Napi::Value send_to_many(const Napi::CallbackInfo& info);
  Napi::Value last_error(const Napi::CallbackInfo& info);
  Napi::Value set_advertise(const Napi::CallbackInfo& info);
  static Napi::Value check_name(const Napi::CallbackInfo& info);
  Napi::Value take(const Napi::CallbackInfo& info);
  Napi::Value take_events(const Napi::CallbackInfo& info);
  Napi::Value stats(const Napi::CallbackInfo& info);
  Napi::Value ref(const Napi::CallbackInfo& info);
  Napi::Value unref(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  Napi::Value send(const Napi::CallbackInfo& info, bool all);
  void trim_batch(size_t strings);  // after sendToMany, which converted `strings` of its messages
  Napi::Value task(const Napi::CallbackInfo& info, const char* name,
                   std::function<liner::Status(liner::Client&)> call);
  void release_wake(napi_threadsafe_function_release_mode mode);
  void set_teardown_hook(bool on);
  void abandon(bool wait);
  static void on_env_teardown(void* self);

  napi_env env_;
  std::shared_ptr<CoreState> core_ = std::make_shared<CoreState>();
  liner::ClientOptions options_;
  std::string advertise_;  // applied by run(): "" = register the bound address
  // The wake-up function: created by run(), released by dispose(), a failed run or
  // abandon(). The inbox calls it under its lock, so after Inbox::abandon() nobody can.
  std::shared_ptr<std::atomic<napi_threadsafe_function>> wake_ =
      std::make_shared<std::atomic<napi_threadsafe_function>>(nullptr);
  std::shared_ptr<Inbox> inbox_;
  Arena taken_;        // the last arena take() handed to JS: its metadata vector is reused
  std::string topic_;  // of the last send: JS passes null for "the same topic again"
  std::vector<liner::Payload> batch_;      // sendToMany's views of its messages
  std::vector<std::string> batch_texts_;   // and the UTF-8 of those given as strings
  bool referenced_ = true;  // a running client keeps the event loop alive, like a server
  bool active_ = false;     // from run() until its failure or the end of stop(): the loop is held
  bool teardown_hook_ = false;
  bool abandoned_ = false;
  std::string last_error_;
};

}  // namespace liner_node
