// Runs one blocking core call (a Redis round trip, a thread join) on libuv's thread pool and
// settles a Promise with its Status, so the JS thread never waits for the store.
#pragma once
#include <napi.h>

#include <functional>
#include <utility>

#include "core/status.hpp"
#include "node/errors.hpp"

namespace liner_node {

class AsyncTask : public Napi::AsyncWorker {
 public:
  using Work = std::function<liner::Status()>;
  // Runs on the JS thread once `work` returned, whatever its outcome; on success its value
  // resolves the Promise (undefined if unset).
  using Result = std::function<Napi::Value(Napi::Env, const liner::Status&)>;

  // `owner` is kept alive until the task settles.
  static Napi::Promise start(const Napi::Object& owner, const char* name, Work work,
                             Result result = nullptr) {
    auto* task = new AsyncTask(owner, name, std::move(work), std::move(result));
    Napi::Promise promise = task->deferred_.Promise();
    task->Queue();  // deleted by node-addon-api once settled
    return promise;
  }

 protected:
  void Execute() override {
    try {
      status_ = work_();
    } catch (const std::exception& e) {
      status_ = liner::Status(liner::Err::startup, e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Value value = result_ ? result_(env, status_) : env.Undefined();
    if (status_.ok())
      deferred_.Resolve(value);
    else
      deferred_.Reject(status_error(env, status_).Value());
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  AsyncTask(const Napi::Object& owner, const char* name, Work work, Result result)
      : Napi::AsyncWorker(owner.Env(), name),
        owner_(Napi::Persistent(owner)),
        deferred_(Napi::Promise::Deferred::New(owner.Env())),
        work_(std::move(work)),
        result_(std::move(result)) {}

  Napi::ObjectReference owner_;  // the JS object stays alive while its call runs
  Napi::Promise::Deferred deferred_;
  Work work_;
  Result result_;
  liner::Status status_;
};

}  // namespace liner_node
