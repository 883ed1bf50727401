// Entry point of the liner Node-API addon (loaded by src/native.ts). Context-aware: every
// environment (the main thread, each worker thread) gets its own exports and keeps no state
// in globals, so clients work inside worker_threads. The one exception is on purpose: the
// process-wide limits (core/limits.hpp) are shared by every thread's clients, as in C.
#include <napi.h>

#include <cmath>
#include <iterator>
#include <string>

#include "core/limits.hpp"
#include "node/client_wrap.hpp"
#include "node/directory_wrap.hpp"
#include "node/errors.hpp"

namespace {

// The process-wide limits TypeScript sees (src/limits.ts), by key. The store wait is not one:
// a TS client takes its own (waitForRedis).
struct JsLimit {
  const char* key;
  liner::LimitId id;
};
constexpr JsLimit kJsLimits[] = {
    {"maxMessageSize", liner::LimitId::max_message_size},
    {"compressThreshold", liner::LimitId::compress_threshold},
    {"maxSendQueueMessages", liner::LimitId::max_send_queue},
    {"maxSendQueueBytes", liner::LimitId::max_send_queue_bytes},
    {"leaseMs", liner::LimitId::lease_ms},
};

// {maxMessageSize, compressThreshold, maxSendQueueMessages, maxSendQueueBytes, leaseMs} as they are now.
Napi::Value get_limits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  for (const JsLimit& l : kJsLimits) out.Set(l.key, Napi::Number::New(env, double(liner::get_limit(l.id))));
  return out;
}

// Sets the keys present, all or none. The ranges and their message are the core's
// (limits.hpp); here only what cannot be a size is refused (src/limits.ts refuses it first,
// with the value in its message).
Napi::Value set_limits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) liner_node::throw_invalid(env, "limits must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  liner::LimitValue values[std::size(kJsLimits)];
  size_t count = 0;
  for (const JsLimit& l : kJsLimits) {
    Napi::Value v = o.Get(l.key);
    if (v.IsUndefined()) continue;
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d < 18446744073709551616.0) || d != std::floor(d))
      liner_node::throw_invalid(env, std::string(l.key) + " must be a non-negative integer");
    values[count++] = {l.id, size_t(d)};
  }
  liner::Status s = liner::set_limits(values, count);
  if (!s) throw liner_node::status_error(env, s);
  return env.Undefined();
}

}  // namespace

class LinerAddon : public Napi::Addon<LinerAddon> {
 public:
  LinerAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {
                             InstanceValue("NativeClient", liner_node::ClientWrap::define(env), napi_enumerable),
                             InstanceValue("NativeDirectory", liner_node::DirectoryWrap::define(env), napi_enumerable),
                             InstanceValue("version", Napi::String::New(env, LINER_NODE_VERSION), napi_enumerable),
                             InstanceMethod<&LinerAddon::GetLimits>("getLimits", napi_enumerable),
                             InstanceMethod<&LinerAddon::SetLimits>("setLimits", napi_enumerable),
                         });
  }

 private:
  Napi::Value GetLimits(const Napi::CallbackInfo& info) { return get_limits(info); }
  Napi::Value SetLimits(const Napi::CallbackInfo& info) { return set_limits(info); }
};

NODE_API_ADDON(LinerAddon)
