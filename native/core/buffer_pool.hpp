// Empty buffers handed from the thread that is done with them to the thread that fills the
// next ones. One malloc on the filling thread and one free on the other per segment cost
// more than the copy itself, and fresh memory page-faults, so the sender's buffers go round
// instead.
//
// Bounded: at most max_bytes of capacity is kept, and only buffers up to max_buffer each (a big
// message's buffer goes back to malloc). Not thread-safe: each pool belongs to one thread, or is
// guarded by its owner's lock.
#pragma once
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "core/bytes.hpp"

namespace liner {

class BufferPool {
 public:
  static constexpr size_t kMaxBytes = size_t(4) << 20;
  static constexpr size_t kMaxBuffer = 16 * 1024;

  explicit BufferPool(size_t max_bytes = kMaxBytes, size_t max_buffer = kMaxBuffer)
      : max_bytes_(max_bytes), max_buffer_(max_buffer) {}

  // Keeps `buffer`, emptied, if it is small enough and there is room; otherwise it is freed.
  void give(Bytes&& buffer) {
    size_t capacity = buffer.capacity();
    if (capacity > max_buffer_ || bytes_ + capacity > max_bytes_) {
      Bytes().swap(buffer);
      return;
    }
    buffer.clear();
    bytes_ += capacity;
    buffers_.push_back(std::move(buffer));
  }

  // A kept buffer (empty, with its capacity), or a new empty one when none is kept.
  Bytes take() {
    if (buffers_.empty()) return Bytes();
    Bytes buffer = std::move(buffers_.back());
    buffers_.pop_back();
    bytes_ -= buffer.capacity();
    return buffer;
  }

  // Frees every kept buffer.
  void clear() {
    if (buffers_.empty()) return;
    std::vector<Bytes>().swap(buffers_);
    bytes_ = 0;
  }

  // Hands every kept buffer to `into` (which keeps what fits) and empties this pool.
  void move_into(BufferPool& into) {
    for (auto& buffer : buffers_) into.give(std::move(buffer));
    buffers_.clear();
    bytes_ = 0;
  }

 private:
  size_t max_bytes_;
  size_t max_buffer_;
  std::vector<Bytes> buffers_;
  size_t bytes_ = 0;
};

// Fixed-size blocks the listener reads sockets into. Decoded frames point into the block they
// arrived in (no copy per message), so a block stays with its batch and is reused once every
// message in it was delivered. Bounded like BufferPool: at most
// kMaxKept blocks wait for reuse, the rest go back to the allocator.
class BlockPool {
 public:
  static constexpr size_t kBlockSize = 64 * 1024;  // as liner_broker's reader
  static constexpr size_t kMaxKept = 32;           // 2 MiB
  using Block = std::unique_ptr<char[]>;

  void give(Block&& block) {
    if (block && blocks_.size() < kMaxKept) blocks_.push_back(std::move(block));
    block.reset();
  }

  // A kept block, or a new one (uninitialised: the socket read fills it).
  Block take() {
    if (blocks_.empty()) return Block(new char[kBlockSize]);
    Block block = std::move(blocks_.back());
    blocks_.pop_back();
    return block;
  }

 private:
  std::vector<Block> blocks_;
};

}  // namespace liner
