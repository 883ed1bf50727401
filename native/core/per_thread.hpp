// Per-thread state reached with a single TLS look-up.
//
// In a shared library each access to a thread_local costs a __tls_get_addr call, and a
// thread_local with a constructor or destructor costs two (its init guard, then the object).
// The send path touches its per-thread caches on every message, so they sit behind a plain
// pointer, which needs no guard; the object itself is created on the thread's first use and
// freed when the thread exits.
#pragma once
#include <memory>

namespace liner {

template <class T>
class PerThread {
 public:
  static T& get() {
    T* state = current_;
    return state ? *state : create();
  }

 private:
  // Frees the thread's object at thread exit. A use after that (from a later thread_local
  // destructor) gets an object of its own that is never freed, rather than freed memory.
  struct Owner {
    std::unique_ptr<T> state;
    ~Owner() {
      current_ = nullptr;
      exited_ = true;
    }
  };

  [[gnu::noinline]] static T& create() {
    if (exited_) return *new T;
    static thread_local Owner owner;
    owner.state.reset(new T);
    current_ = owner.state.get();
    return *current_;
  }

  static thread_local T* current_;
  static thread_local bool exited_;
};

template <class T>
thread_local T* PerThread<T>::current_ = nullptr;
template <class T>
thread_local bool PerThread<T>::exited_ = false;

}  // namespace liner
