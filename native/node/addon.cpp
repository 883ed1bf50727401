// Entry point of the liner Node-API addon (loaded by src/native.ts). Context-aware: every
// environment (the main thread, each worker thread) gets its own exports and keeps no state
// in globals, so clients work inside worker_threads. The one exception is on purpose: the
// process-wide limits (core/limits.hpp) are shared by every thread's clients, as in C.
#include <napi.h>

#include "core/frame.hpp"
#include "core/limits.hpp"
#include "node/client_wrap.hpp"
#include "node/directory_wrap.hpp"
#include "node/errors.hpp"

namespace {

// The largest payload a frame may carry: liner_broker 1.3.1 peers refuse bigger bodies.
constexpr size_t kMaxMessageSizeCeiling = liner::kDefaultMaxBodySize - liner::kBodyHeaderSize;

// {maxMessageSize, compressThreshold, maxSendQueueMessages, maxSendQueueBytes, leaseMs} as they are now.
Napi::Value get_limits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  liner::Limits& l = liner::limits();
  Napi::Object out = Napi::Object::New(env);
  out.Set("maxMessageSize", Napi::Number::New(env, double(l.max_message_size.load())));
  out.Set("compressThreshold", Napi::Number::New(env, double(l.compress_threshold.load())));
  out.Set("maxSendQueueMessages", Napi::Number::New(env, double(l.max_send_queue.load())));
  out.Set("maxSendQueueBytes", Napi::Number::New(env, double(l.max_send_queue_bytes.load())));
  out.Set("leaseMs", Napi::Number::New(env, double(l.lease_ms.load())));
  return out;
}

// Sets the keys present (src/limits.ts checks them first, with friendlier messages; the core
// reads them at each use).
Napi::Value set_limits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) liner_node::throw_invalid(env, "limits must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto read = [&](const char* key, size_t min, size_t max, size_t* out) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined()) return false;
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= double(min) && d <= double(max)) || d != double(size_t(d)))
      liner_node::throw_invalid(env, std::string(key) + " must be an integer in " + std::to_string(min) + ".." +
                                         std::to_string(max));
    *out = size_t(d);
    return true;
  };
  const size_t any = size_t(1) << 53;
  size_t message = 0, threshold = 0, count = 0, bytes = 0, lease = 0;
  // All checked before any is set: a refused call changes nothing.
  bool has_message = read("maxMessageSize", 1, kMaxMessageSizeCeiling, &message);
  bool has_threshold = read("compressThreshold", 1, any, &threshold);
  bool has_count = read("maxSendQueueMessages", 0, any, &count);
  bool has_bytes = read("maxSendQueueBytes", 1, any, &bytes);
  bool has_lease = read("leaseMs", liner::kMinLeaseMs, liner::kMaxLeaseMs, &lease);
  liner::Limits& l = liner::limits();
  if (has_message) l.max_message_size = message;
  if (has_threshold) l.compress_threshold = threshold;
  if (has_count) l.max_send_queue = count;
  if (has_bytes) l.max_send_queue_bytes = bytes;
  if (has_lease) l.lease_ms = lease;
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
                             InstanceValue("maxMessageSizeCeiling",
                                           Napi::Number::New(env, double(kMaxMessageSizeCeiling)), napi_enumerable),
                             InstanceMethod<&LinerAddon::GetLimits>("getLimits", napi_enumerable),
                             InstanceMethod<&LinerAddon::SetLimits>("setLimits", napi_enumerable),
                         });
  }

 private:
  Napi::Value GetLimits(const Napi::CallbackInfo& info) { return get_limits(info); }
  Napi::Value SetLimits(const Napi::CallbackInfo& info) { return set_limits(info); }
};

NODE_API_ADDON(LinerAddon)
