// A mutex whose waiter spins for a moment before it sleeps.
//
// The sender's queue lock is taken by every send (for about a microsecond: a frame is copied
// under it) and once per pass by the sender thread. With std::mutex a thread that finds it held
// goes to sleep in the kernel, and the holder then pays a futex wake on unlock: a few thousand
// sleep/wake round trips per 100,000 messages, each costing more than the critical section it
// waited for. glibc's adaptive mutex first retries for a bounded number of iterations
// (glibc.pthread.mutex_spin_count, 100 by default), which covers a critical section this short,
// and sleeps only when the holder keeps it longer.
//
// Meets the Lockable requirements, so std::lock_guard and std::unique_lock work with it. No
// condition variable waits on it.
//
// A background thread that shares the lock with a hot path takes it with lock_yielding()
// (through YieldingLock) instead: see there.
#pragma once
#include <pthread.h>
#include <sched.h>

namespace liner {

class AdaptiveMutex {
 public:
  AdaptiveMutex() {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
#if defined(__GLIBC__)
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    pthread_mutex_init(&mutex_, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  ~AdaptiveMutex() { pthread_mutex_destroy(&mutex_); }
  AdaptiveMutex(const AdaptiveMutex&) = delete;
  AdaptiveMutex& operator=(const AdaptiveMutex&) = delete;

  void lock() { pthread_mutex_lock(&mutex_); }
  bool try_lock() { return pthread_mutex_trylock(&mutex_) == 0; }
  void unlock() { pthread_mutex_unlock(&mutex_); }

  // For the background thread (the sender's): sleeping in lock() marks the mutex contended,
  // which makes the holder's next unlock a futex syscall, and the holder is the hot path (a
  // sending thread paid ~3,000 of them per 3M messages in slow runs of the 100 B benchmark).
  // With more busy threads than cores the holder is often not running at all, preempted inside
  // its short critical section, so spinning cannot help either. Giving the core away lets it
  // finish, and its unlock stays a plain atomic store (tens of futex calls per 3M messages).
  // Bounded: after kYields turns it sleeps like lock().
  void lock_yielding() {
    for (int i = 0; i < kYields; ++i) {
      if (try_lock()) return;
      sched_yield();
    }
    lock();
  }

 private:
  static constexpr int kYields = 16;
  pthread_mutex_t mutex_;
};

// std::lock_guard for lock_yielding().
class YieldingLock {
 public:
  explicit YieldingLock(AdaptiveMutex& mu) : mu_(mu) { mu_.lock_yielding(); }
  ~YieldingLock() { mu_.unlock(); }
  YieldingLock(const YieldingLock&) = delete;
  YieldingLock& operator=(const YieldingLock&) = delete;

 private:
  AdaptiveMutex& mu_;
};

}  // namespace liner
