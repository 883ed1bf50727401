// Entry point of the liner Node-API addon (loaded by src/native.ts). Context-aware: every
// environment (the main thread, each worker thread) gets its own exports and keeps no state
// in globals, so clients work inside worker_threads.
#include <napi.h>

#include "node/client_wrap.hpp"

class LinerAddon : public Napi::Addon<LinerAddon> {
 public:
  LinerAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {
                             InstanceValue("NativeClient", liner_node::ClientWrap::define(env), napi_enumerable),
                             InstanceValue("version", Napi::String::New(env, LINER_NODE_VERSION), napi_enumerable),
                         });
  }
};

NODE_API_ADDON(LinerAddon)
