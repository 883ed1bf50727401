// A growable byte buffer for the sender's segments. Unlike std::string it grows without
// writing the bytes it adds: a frame is written straight into the room extend() returns, where
// appending header and payload to a std::string cost two library calls per message, and
// resize() zero-filled what was then overwritten.
#pragma once
#include <cstddef>
#include <cstring>
#include <memory>
#include <utility>

namespace liner {

class Bytes {
 public:
  Bytes() = default;
  Bytes(Bytes&& o) noexcept { swap(o); }
  Bytes& operator=(Bytes&& o) noexcept {
    Bytes(std::move(o)).swap(*this);
    return *this;
  }
  Bytes(const Bytes&) = delete;
  Bytes& operator=(const Bytes&) = delete;

  const char* data() const { return data_.get(); }
  char* data() { return data_.get(); }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }  // keeps the capacity

  // Makes room for `n` more bytes and returns where they start: the caller writes them.
  char* extend(size_t n) {
    if (n > capacity_ - size_) grow(size_ + n);
    char* at = data_.get() + size_;
    size_ += n;
    return at;
  }
  void append(const char* p, size_t n) {
    if (n) std::memcpy(extend(n), p, n);
  }
  // Capacity for at least `n` bytes in all; contents are kept.
  void reserve(size_t n) {
    if (n > capacity_) reallocate(n);
  }
  void swap(Bytes& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(capacity_, o.capacity_);
  }

 private:
  void grow(size_t need) { reallocate(need > 2 * capacity_ ? need : 2 * capacity_); }
  void reallocate(size_t capacity) {
    std::unique_ptr<char[]> bigger(new char[capacity]);  // uninitialised: written before read
    if (size_) std::memcpy(bigger.get(), data_.get(), size_);
    data_ = std::move(bigger);
    capacity_ = capacity;
  }

  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace liner
