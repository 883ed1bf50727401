#include "node/client_wrap.hpp"

#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "core/limits.hpp"
#include "core/names.hpp"
#include "node/async_task.hpp"
#include "node/errors.hpp"

namespace liner_node {

namespace {

constexpr size_t kDefaultInFlightBytes = size_t(16) << 20;

std::string string_option(const Napi::Object& o, const char* key, bool required) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && !required) return std::string();
  if (!v.IsString()) throw_invalid(o.Env(), std::string("option ") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

size_t size_option(const Napi::Object& o, const char* key, size_t fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0) || d > 9007199254740991.0)
    throw_invalid(o.Env(), std::string("option ") + key + " must be a non-negative integer");
  return size_t(d);
}

// A limit option (0: the process-wide value), in the range the core gives it (limits.hpp).
size_t limit_option(const Napi::Object& o, const char* key, liner::LimitId id) {
  size_t value = size_option(o, key, 0);
  liner::Status s = liner::check_limit_option(id, value);
  if (!s) throw status_error(o.Env(), s);
  return value;
}

// The core's rule (names.hpp), checked on the JS thread: it needs no lookup.
void check_advertise(Napi::Env env, const std::string& addr) {
  liner::Status s = liner::check_advertise_address(addr);
  if (!s) throw status_error(env, s);
}

// Reads a topic name into `out`, reusing its allocation.
void read_topic(napi_env env, napi_value value, std::string* out) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, value, nullptr, 0, &len) != napi_ok)
    throw_invalid(Napi::Env(env), "topic must be a string");
  out->resize(len);
  napi_get_value_string_utf8(env, value, &(*out)[0], len + 1, &len);
}

size_t element_size(napi_typedarray_type kind) {
  switch (kind) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array:
      return 1;
    case napi_int16_array:
    case napi_uint16_array:
      return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      return 4;
    default:
      return 8;  // float64, bigint64, biguint64
  }
}

// The finalizer of an arena's Buffer.
template <bool Pooled>
void release_buffer(Napi::Env, char* block) {
  release_block(block, Pooled);
}

// The thread-safe function's JS side: call onWake() with no arguments. An exception it throws
// reaches process 'uncaughtException', as from any event handler.
void call_on_wake(napi_env env, napi_value on_wake, void*, void*) {
  if (!env || !on_wake) return;  // the environment is going away
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, on_wake, 0, nullptr, nullptr);
}

}  // namespace

Napi::Function ClientWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeClient",
                     {
                         InstanceMethod<&ClientWrap::open>("open"),
                         InstanceMethod<&ClientWrap::run>("run"),
                         InstanceMethod<&ClientWrap::stop>("stop"),
                         InstanceMethod<&ClientWrap::subscribe>("subscribe"),
                         InstanceMethod<&ClientWrap::unsubscribe>("unsubscribe"),
                         InstanceMethod<&ClientWrap::refresh>("refresh"),
                         InstanceMethod<&ClientWrap::list_addresses>("listAddresses"),
                         InstanceMethod<&ClientWrap::pending_by_peer>("pendingByPeer"),
                         InstanceMethod<&ClientWrap::clear_stored_messages>("clearStoredMessages"),
                         InstanceMethod<&ClientWrap::clear_addresses_of_topic>("clearAddressesOfTopic"),
                         InstanceMethod<&ClientWrap::last_error>("lastError"),
                         InstanceMethod<&ClientWrap::set_advertise>("setAdvertise"),
                         InstanceMethod<&ClientWrap::take>("take"),
                         InstanceMethod<&ClientWrap::take_events>("takeEvents"),
                         InstanceMethod<&ClientWrap::stats>("stats"),
                         InstanceMethod<&ClientWrap::ref>("ref"),
                         InstanceMethod<&ClientWrap::unref>("unref"),
                         InstanceMethod<&ClientWrap::dispose>("dispose"),
                         StaticMethod<&ClientWrap::check_name>("checkName"),
                     });
}

ClientWrap::ClientWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ClientWrap>(info), env_(info.Env()) {
  if (info.Length() < 1 || !info[0].IsObject()) throw_invalid(info.Env(), "options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  options_.unique_name = string_option(o, "name", true);
  options_.topic = string_option(o, "topic", true);
  options_.localhost = string_option(o, "listen", true);
  options_.store_url = string_option(o, "store", true);
  liner::Status store = liner::check_store_url(options_.store_url);  // a scheme no store serves
  if (!store) throw status_error(info.Env(), store);
  advertise_ = string_option(o, "advertise", false);
  check_advertise(info.Env(), advertise_);
  options_.max_message_size = limit_option(o, "maxMessageSize", liner::LimitId::max_message_size);
  options_.compress_threshold = limit_option(o, "compressThreshold", liner::LimitId::compress_threshold);
  options_.max_send_queue_bytes = limit_option(o, "maxSendQueueBytes", liner::LimitId::max_send_queue_bytes);
  options_.max_send_queue_messages = limit_option(o, "maxSendQueueMessages", liner::LimitId::max_send_queue);
  options_.max_receive_queue_bytes = size_option(o, "maxReceiveQueueBytes", 0);
  // Absent: the process-wide value, as for the C API (the TS layer always gives one).
  if (!o.Get("storeWaitMs").IsUndefined()) options_.store_wait_ms = int64_t(size_option(o, "storeWaitMs", 0));
  // The JS thread never waits on the store: a send to a topic not in the route cache returns
  // at once and the core looks the topic up on its own thread (ClientOptions).
  options_.lookup_off_thread = true;
  Napi::Value handover = o.Get("handover");
  if (!handover.IsUndefined()) {
    if (!handover.IsBoolean()) throw_invalid(info.Env(), "option handover must be a boolean");
    options_.handover = handover.As<Napi::Boolean>().Value();
  }
  size_t in_flight = size_option(o, "maxInFlightBytes", kDefaultInFlightBytes);
  auto wake = wake_;
  inbox_ = std::make_shared<Inbox>(in_flight, [wake] {
    if (napi_threadsafe_function f = wake->load(std::memory_order_acquire))
      napi_call_threadsafe_function(f, nullptr, napi_tsfn_nonblocking);
  });
  // sendTo/sendAll are own properties whose function data is this wrapper: a prototype method
  // would unwrap `this` on every message, a private-property lookup on the sending thread.
  // They belong to the JS object that owns this wrapper and go with it.
  Napi::Object self = info.This().As<Napi::Object>();
  self.Set("sendTo", Napi::Function::New<&ClientWrap::send_to>(info.Env(), "sendTo", this));
  self.Set("sendAll", Napi::Function::New<&ClientWrap::send_all>(info.Env(), "sendAll", this));
  self.Set("sendToMany", Napi::Function::New<&ClientWrap::send_to_many>(info.Env(), "sendToMany", this));
}

ClientWrap::~ClientWrap() { abandon(false); }

// ---- lifecycle -----------------------------------------------------------------------------

Napi::Value ClientWrap::open(const Napi::CallbackInfo& info) {
  auto core = core_;
  auto options = options_;
  return AsyncTask::start(Value(), "liner.open", [core, options] {
    if (core->raw()) return liner::Status();
    std::unique_ptr<liner::Client> client;
    liner::Status s = liner::Client::create(options, &client);
    if (s) core->adopt(std::move(client));
    return s;
  });
}

Napi::Value ClientWrap::run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) throw_invalid(env, "run needs the wake-up function");
  auto client = core_->get();
  if (!client) throw status_error(env, liner::Status(liner::Err::not_running, "client is not open"));
  if (!wake_->load()) {
    napi_threadsafe_function tsfn = nullptr;
    napi_status st = napi_create_threadsafe_function(env, info[0], nullptr, Napi::String::New(env, "liner.delivery"),
                                                     0, 1, nullptr, nullptr, nullptr, call_on_wake, &tsfn);
    if (st != napi_ok) throw status_error(env, liner::Status(liner::Err::startup, "cannot create the delivery wake-up"));
    if (!referenced_) napi_unref_threadsafe_function(env, tsfn);
    wake_->store(tsfn, std::memory_order_release);
  } else if (referenced_) {
    napi_ref_threadsafe_function(env, wake_->load());  // unref'd by the last stop()
  }
  active_ = true;
  set_teardown_hook(true);
  auto inbox = inbox_;
  inbox->set_closing(false);
  client->set_status_handler([inbox](const liner::StatusEvent& e) { inbox->status(e); });
  auto addresses = std::make_shared<std::pair<std::string, std::string>>();
  std::string advertise = advertise_;
  return AsyncTask::start(
      Value(), "liner.run",
      [client, inbox, addresses, advertise] {
        // Here, not on the JS thread: it waits for the core's lifecycle lock.
        liner::Status s = client->set_advertise_address(advertise);
        if (s)
          s = client->run(
              [inbox](const std::string& to, const std::string& from, const char* data, size_t size) {
                inbox->receive(to, from, data, size);
              },
              [inbox] { inbox->flush(); });
        if (s) *addresses = {client->bound_address(), client->published_address()};
        return s;
      },
      [this, client, addresses](Napi::Env env, const liner::Status& s) -> Napi::Value {
        if (!s) {
          // Nothing runs: let go of JS (the next run makes a new wake-up function).
          active_ = false;
          client->set_status_handler(nullptr);
          release_wake(napi_tsfn_release);
          set_teardown_hook(false);
          return env.Undefined();
        }
        Napi::Array out = Napi::Array::New(env, 2);
        out.Set(0u, addresses->first);
        out.Set(1u, addresses->second);
        return out;
      });
}

// Stops the core (it may run again). What it delivers while stopping still wakes JS; once
// stopped, the client no longer keeps the event loop alive.
Napi::Value ClientWrap::stop(const Napi::CallbackInfo& info) {
  auto client = core_->get();
  inbox_->set_closing(true);
  return AsyncTask::start(
      Value(), "liner.stop", [client] { return client ? client->stop() : liner::Status(); },
      [this](Napi::Env env, const liner::Status&) -> Napi::Value {
        active_ = false;
        if (napi_threadsafe_function f = wake_->load()) napi_unref_threadsafe_function(env, f);
        return env.Undefined();
      });
}

// After stop() resolved and JS took what was left: no JS call may follow.
Napi::Value ClientWrap::dispose(const Napi::CallbackInfo& info) {
  inbox_->abandon();
  if (auto client = core_->release()) client->set_status_handler(nullptr);
  release_wake(napi_tsfn_release);
  set_teardown_hook(false);
  return info.Env().Undefined();
}

void ClientWrap::release_wake(napi_threadsafe_function_release_mode mode) {
  if (napi_threadsafe_function f = wake_->exchange(nullptr)) napi_release_threadsafe_function(f, mode);
}

void ClientWrap::set_teardown_hook(bool on) {
  if (on == teardown_hook_) return;
  teardown_hook_ = on;
  if (on)
    napi_add_env_cleanup_hook(env_, on_env_teardown, this);
  else
    napi_remove_env_cleanup_hook(env_, on_env_teardown, this);
}

void ClientWrap::on_env_teardown(void* self) {
  auto* wrap = static_cast<ClientWrap*>(self);
  wrap->teardown_hook_ = false;  // node removes a hook once it ran
  wrap->abandon(true);
}

// The JS side goes away while the core may still run: drop what arrives from now on and stop
// the core. `wait` stops it here (environment teardown: afterwards the process or thread ends
// and nobody would); otherwise a detached thread does it, off the JS thread.
void ClientWrap::abandon(bool wait) {
  if (abandoned_) return;
  abandoned_ = true;
  inbox_->abandon();
  release_wake(napi_tsfn_abort);
  set_teardown_hook(false);
  std::shared_ptr<liner::Client> client = core_->release();
  if (!client) return;
  client->set_status_handler(nullptr);
  if (!client->running()) return;  // destroyed by the last holder, which is cheap now
  if (wait) {
    client->stop();
  } else {
    std::thread([client] { client->stop(); }).detach();
  }
}

// ---- store round trips ---------------------------------------------------------------------

Napi::Value ClientWrap::task(const Napi::CallbackInfo& info, const char* name,
                             std::function<liner::Status(liner::Client&)> call) {
  auto client = core_->get();
  if (!client) throw status_error(info.Env(), liner::Status(liner::Err::not_running, "client is not open"));
  return AsyncTask::start(Value(), name, [client, call] { return call(*client); });
}

Napi::Value ClientWrap::subscribe(const Napi::CallbackInfo& info) {
  std::string topic = string_arg(info, 0, "topic");
  return task(info, "liner.subscribe", [topic](liner::Client& c) { return c.subscribe(topic); });
}

Napi::Value ClientWrap::unsubscribe(const Napi::CallbackInfo& info) {
  std::string topic = string_arg(info, 0, "topic");
  return task(info, "liner.unsubscribe", [topic](liner::Client& c) { return c.unsubscribe(topic); });
}

Napi::Value ClientWrap::refresh(const Napi::CallbackInfo& info) {
  std::string topic = string_arg(info, 0, "topic");
  return task(info, "liner.refresh", [topic](liner::Client& c) { return c.refresh_address_topic(topic); });
}

Napi::Value ClientWrap::clear_stored_messages(const Napi::CallbackInfo& info) {
  return task(info, "liner.clearStoredMessages", [](liner::Client& c) { return c.clear_stored_messages(); });
}

Napi::Value ClientWrap::clear_addresses_of_topic(const Napi::CallbackInfo& info) {
  return task(info, "liner.clearAddressesOfTopic", [](liner::Client& c) { return c.clear_addresses_of_topic(); });
}

Napi::Value ClientWrap::list_addresses(const Napi::CallbackInfo& info) {
  std::string topic = string_arg(info, 0, "topic");
  auto client = core_->get();
  if (!client) throw status_error(info.Env(), liner::Status(liner::Err::not_running, "client is not open"));
  auto found = std::make_shared<std::vector<liner::TopicAddress>>();
  return AsyncTask::start(
      Value(), "liner.listAddresses", [client, topic, found] { return client->list_addresses(topic, found.get()); },
      [found](Napi::Env env, const liner::Status&) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, found->size());
        for (size_t i = 0; i < found->size(); ++i) {
          Napi::Array row = Napi::Array::New(env, 2);
          row.Set(0u, (*found)[i].addr);
          row.Set(1u, (*found)[i].unique_name);
          out.Set(uint32_t(i), row);
        }
        return out;
      });
}

// Offline queues of this sender: [address, topic, listener name, count] rows.
Napi::Value ClientWrap::pending_by_peer(const Napi::CallbackInfo& info) {
  auto client = core_->get();
  if (!client) throw status_error(info.Env(), liner::Status(liner::Err::not_running, "client is not open"));
  auto found = std::make_shared<std::vector<liner::PendingQueue>>();
  return AsyncTask::start(
      Value(), "liner.pendingByPeer", [client, found] { return client->pending_by_peer(found.get()); },
      [found](Napi::Env env, const liner::Status&) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, found->size());
        for (size_t i = 0; i < found->size(); ++i) {
          const liner::PendingQueue& q = (*found)[i];
          Napi::Array row = Napi::Array::New(env, 4);
          row.Set(0u, q.addr);
          row.Set(1u, q.topic);
          row.Set(2u, q.unique_name);
          row.Set(3u, Napi::Number::New(env, double(q.count)));
          out.Set(uint32_t(i), row);
        }
        return out;
      });
}

// ---- sending -------------------------------------------------------------------------------

Napi::Value ClientWrap::send_to(const Napi::CallbackInfo& info) {
  return static_cast<ClientWrap*>(info.Data())->send(info, false);
}
Napi::Value ClientWrap::send_all(const Napi::CallbackInfo& info) {
  return static_cast<ClientWrap*>(info.Data())->send(info, true);
}

namespace {

// The bytes of one payload: a string (converted to UTF-8 into `text`), any TypedArray, a
// DataView or an ArrayBuffer. False for anything else.
bool read_payload(napi_env env, napi_value v, std::string* text, liner::Payload* out) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type kind;
    size_t length = 0, offset = 0;
    napi_value buffer;
    void* base = nullptr;
    napi_get_typedarray_info(env, v, &kind, &length, &base, &buffer, &offset);
    *out = {base, length * element_size(kind)};
    return true;
  }
  napi_valuetype type = napi_undefined;
  if (napi_typeof(env, v, &type) == napi_ok && type == napi_string) {
    size_t len = 0;
    napi_get_value_string_utf8(env, v, nullptr, 0, &len);
    text->resize(len);
    napi_get_value_string_utf8(env, v, &(*text)[0], len + 1, &len);
    *out = {text->data(), len};
    return true;
  }
  void* base = nullptr;
  size_t length = 0;
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    napi_value buffer;
    size_t offset = 0;
    napi_get_dataview_info(env, v, &length, &base, &buffer, &offset);
    *out = {base, length};
    return true;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    napi_get_arraybuffer_info(env, v, &base, &length);
    *out = {base, length};
    return true;
  }
  return false;
}

// A zero-length view may have no backing store; the core refuses size 0 before it looks.
void never_null(liner::Payload* p) {
  static const char empty = 0;
  if (!p->data) p->data = &empty;
}

bool read_at_least_once(const Napi::CallbackInfo& info, size_t index) {
  bool at_least_once = true;
  if (info.Length() > index && napi_get_value_bool(info.Env(), info[index], &at_least_once) != napi_ok)
    at_least_once = info[index].ToBoolean().Value();
  return at_least_once;
}

}  // namespace

// sendTo(topic | null, data, atLeastOnce): null is the topic of the previous call, which
// spares a stream the UTF-8 conversion per message (TypeScript tracks which topic that is).
// Returns 0 or the core's error code (the message is in lastError()): cheaper than throwing
// on the hot path, and BUSY is an expected answer there.
Napi::Value ClientWrap::send(const Napi::CallbackInfo& info, bool all) {
  napi_env env = info.Env();
  // First, so that the topic is this call's even when the call fails.
  if (!info[0].IsNull()) read_topic(env, info[0], &topic_);
  liner::Client* client = core_->raw();
  liner::Status s;
  if (!client) {
    s = liner::Status(liner::Err::not_running, "client is not running");
  } else {
    thread_local std::string text;
    liner::Payload message{};
    if (!read_payload(env, info[1], &text, &message))
      throw_invalid(info.Env(), "data must be a string, Buffer or Uint8Array");
    never_null(&message);
    bool at_least_once = read_at_least_once(info, 2);
    s = all ? client->send_all(topic_, message.data, message.size, at_least_once)
            : client->send_to(topic_, message.data, message.size, at_least_once);
  }
  if (s) return Napi::Number::New(env, 0);
  last_error_ = std::move(s.message);
  return Napi::Number::New(env, int(s.code));
}

// sendToMany(topic | null, messages[], atLeastOnce): the topic as sendTo's. Returns how many
// were queued (fewer than all only when the peer's queue filled up: BUSY), or minus the core's
// error code when none was (the message is in lastError()).
Napi::Value ClientWrap::send_to_many(const Napi::CallbackInfo& info) {
  ClientWrap* self = static_cast<ClientWrap*>(info.Data());
  napi_env env = info.Env();
  if (!info[0].IsNull()) read_topic(env, info[0], &self->topic_);
  liner::Client* client = self->core_->raw();
  if (!client) {
    self->last_error_ = "client is not running";
    return Napi::Number::New(env, -int(liner::Err::not_running));
  }
  uint32_t count = 0;
  if (napi_get_array_length(env, info[1], &count) != napi_ok) throw_invalid(info.Env(), "messages must be an array");
  // Kept between calls, like their strings' capacity: a stream of batches allocates nothing.
  std::vector<liner::Payload>& messages = self->batch_;
  std::vector<std::string>& texts = self->batch_texts_;
  messages.resize(count);
  if (texts.size() < count) texts.resize(count);  // before the views into them are taken
  size_t strings = 0;
  for (uint32_t i = 0; i < count; ++i) {
    napi_value v;
    // A getter on the array may throw: that exception is the call's.
    if (napi_get_element(env, info[1], i, &v) != napi_ok) throw Napi::Error::New(info.Env());
    std::string* text = &texts[strings];
    if (!read_payload(env, v, text, &messages[i]))
      throw_invalid(info.Env(), "messages[" + std::to_string(i) +
                                    "] must be a string, Buffer, Uint8Array, DataView or ArrayBuffer");
    if (messages[i].data == text->data()) ++strings;
    never_null(&messages[i]);
  }
  size_t queued = 0;
  liner::Status s = client->send_to_many(self->topic_, messages.data(), count, read_at_least_once(info, 2), &queued);
  self->trim_batch(strings);
  if (s || s.code == liner::Err::busy) return Napi::Number::New(env, double(queued));
  self->last_error_ = std::move(s.message);
  return Napi::Number::New(env, -int(s.code));
}

// What an unusually big batch left behind is not kept for the next one: a stream of batches
// of up to kKeptViews messages of up to kKeptText bytes each allocates nothing.
void ClientWrap::trim_batch(size_t strings) {
  constexpr size_t kKeptViews = 1024;
  constexpr size_t kKeptText = 64 * 1024;
  if (batch_.capacity() > kKeptViews) std::vector<liner::Payload>().swap(batch_);
  if (batch_texts_.size() > kKeptViews) {
    std::vector<std::string>().swap(batch_texts_);
    return;
  }
  for (size_t i = 0; i < strings; ++i)
    if (batch_texts_[i].capacity() > kKeptText) std::string().swap(batch_texts_[i]);
}

Napi::Value ClientWrap::last_error(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), last_error_); }

// Checks the form now; the next run() applies it (TypeScript refuses it while running).
// checkName(what, name): the core's rule for a name a client registers (names.hpp).
Napi::Value ClientWrap::check_name(const Napi::CallbackInfo& info) {
  std::string what = string_arg(info, 0, "what");
  liner::Status s = liner::check_name(what.c_str(), string_arg(info, 1, what.c_str()));
  if (!s) throw status_error(info.Env(), s);
  return info.Env().Undefined();
}

Napi::Value ClientWrap::set_advertise(const Napi::CallbackInfo& info) {
  std::string addr = string_arg(info, 0, "advertise address");
  check_advertise(info.Env(), addr);
  advertise_ = std::move(addr);
  return info.Env().Undefined();
}

// ---- delivery ------------------------------------------------------------------------------

// One arena as [Buffer, Uint32Array meta, new names | undefined], or undefined when nothing
// waits (JS is then woken by the next message).
Napi::Value ClientWrap::take(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arena& arena = taken_;
  if (!inbox_->take(&arena)) return env.Undefined();
  // The Buffer owns the block from here. Where external buffers are not allowed (a V8
  // sandbox), NewOrCopy copies and runs the finalizer at once.
  char* block = std::exchange(arena.data, nullptr);
  Napi::Buffer<char> buffer =
      Napi::Buffer<char>::NewOrCopy(env, block, arena.used, arena.pooled ? &release_buffer<true> : &release_buffer<false>);
  Napi::ArrayBuffer meta_bytes = Napi::ArrayBuffer::New(env, arena.meta.size() * sizeof(uint32_t));
  std::memcpy(meta_bytes.Data(), arena.meta.data(), arena.meta.size() * sizeof(uint32_t));
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, buffer);
  out.Set(1u, Napi::Uint32Array::New(env, arena.meta.size(), meta_bytes, 0));
  if (!arena.new_names.empty()) {
    Napi::Array js_names = Napi::Array::New(env, arena.new_names.size());
    for (size_t i = 0; i < arena.new_names.size(); ++i) js_names.Set(uint32_t(i), arena.new_names[i]);
    out.Set(2u, js_names);
  }
  return out;
}

// Status events as [kind, topic, peer, message] rows, or undefined; also marks the wake-up as
// handled, so JS calls it first thing in its wake-up handler.
Napi::Value ClientWrap::take_events(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<liner::StatusEvent> events;
  inbox_->take_events(&events);
  if (events.empty()) return env.Undefined();
  Napi::Array out = Napi::Array::New(env, events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    Napi::Array row = Napi::Array::New(env, 4);
    row.Set(0u, Napi::Number::New(env, int(events[i].kind)));
    row.Set(1u, events[i].topic);
    row.Set(2u, events[i].peer);
    row.Set(3u, events[i].message);
    out.Set(uint32_t(i), row);
  }
  return out;
}

// Core counters (when `withCore` and the client runs) and the inbox's.
Napi::Value ClientWrap::stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  auto num = [&](const char* key, double v) { out.Set(key, Napi::Number::New(env, v)); };
  liner::Client* client = core_->raw();
  bool with_core = info.Length() > 0 && info[0].ToBoolean().Value();
  if (client && with_core) {
    liner::ClientStats c = client->stats();
#define LINER_STATS_SET(c_name, js_name, meaning) num(#js_name, double(c.c_name));
    LINER_CLIENT_STATS(LINER_STATS_SET)
#undef LINER_STATS_SET
  }
  InboxStats s = inbox_->stats();
  num("jsMessages", double(s.messages));
  num("jsBytes", double(s.bytes));
  num("jsBatches", double(s.arenas));
  num("jsWakeups", double(s.wakes));
  num("jsBlocked", double(s.blocked));
  num("jsDropped", double(s.dropped));
  num("jsEventsDropped", double(s.events_dropped));
  num("jsPendingBytes", double(s.pending_bytes));
  num("jsMaxPendingBytes", double(s.max_pending_bytes));
  return out;
}

// The flag is what counts: run() holds the loop if it is set, the end of stop() lets it go.
Napi::Value ClientWrap::ref(const Napi::CallbackInfo& info) {
  referenced_ = true;
  napi_threadsafe_function f = wake_->load();
  if (f && active_) napi_ref_threadsafe_function(info.Env(), f);
  return info.Env().Undefined();
}

Napi::Value ClientWrap::unref(const Napi::CallbackInfo& info) {
  referenced_ = false;
  if (napi_threadsafe_function f = wake_->load()) napi_unref_threadsafe_function(info.Env(), f);
  return info.Env().Undefined();
}

}  // namespace liner_node
