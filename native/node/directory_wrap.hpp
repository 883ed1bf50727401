// The native half of the `liner` command's reads and clean-ups of a mesh (src/cli/layout.ts):
// one core Store opened from a URL, and core/directory_inspect.hpp's operations over it. The
// surface is declared in src/native.ts as NativeDirectory.
//
// Every operation that talks to the store runs on libuv's thread pool and returns a Promise
// (the JS thread never waits on the network); they take turns on the one Store, which is not
// thread-safe. recordName() does no I/O and runs on the JS thread.
#pragma once
#include <napi.h>

#include <memory>
#include <mutex>

#include "core/store.hpp"

namespace liner_node {

// The store, shared by the JS object and its in-flight tasks, one task at a time.
struct SharedStore {
  std::mutex mu;
  std::unique_ptr<liner::Store> store;
};

class DirectoryWrap : public Napi::ObjectWrap<DirectoryWrap> {
 public:
  static Napi::Function define(Napi::Env env);

  // new NativeDirectory(url): checks the URL's form (INVALID_ARG), connects on first use.
  explicit DirectoryWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value ping(const Napi::CallbackInfo& info);
  Napi::Value topics(const Napi::CallbackInfo& info);
  Napi::Value channels(const Napi::CallbackInfo& info);
  Napi::Value sample(const Napi::CallbackInfo& info);
  Napi::Value sender_topics(const Napi::CallbackInfo& info);
  Napi::Value unnamed_queues(const Napi::CallbackInfo& info);
  Napi::Value stored_count(const Napi::CallbackInfo& info);
  Napi::Value forget_peer(const Napi::CallbackInfo& info);
  Napi::Value record_name(const Napi::CallbackInfo& info);
  Napi::Value server(const Napi::CallbackInfo& info);

  std::string url_;
  std::shared_ptr<SharedStore> shared_ = std::make_shared<SharedStore>();
};

}  // namespace liner_node
