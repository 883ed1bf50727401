// A statistic written by one thread at a time (its owner, or whoever holds the owner's lock)
// and read from anywhere. Updates are a relaxed load and store, not a locked read-modify-write:
// on a hot path that is the difference between a plain add and a bus-locked one. A reader may
// see a value a moment old, never a torn one.
#pragma once
#include <atomic>
#include <cstdint>

namespace liner {

class RelaxedCounter {
 public:
  void add(uint64_t n) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void subtract(uint64_t n) { value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

}  // namespace liner
