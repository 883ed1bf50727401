// The liner_broker 1.3.1 wire frame (compat spec §1):
//   u32 body_len | u64 number_mess | i32 connection_key | i32 topic_key | u8 flags |
//   u32 data_len | data[data_len]          (all big-endian, body_len = 21 + data_len)
// The same bytes, length prefix included, are what the offline queue in Redis stores.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

namespace liner {

constexpr size_t kLengthPrefixSize = 4;
constexpr size_t kBodyHeaderSize = 21;
constexpr size_t kFrameOverhead = kLengthPrefixSize + kBodyHeaderSize;
constexpr uint32_t kDefaultMaxBodySize = 1u << 30;  // 1 GiB, as 1.3.1

constexpr uint8_t kFlagCompress = 0x01;
constexpr uint8_t kFlagAtLeastOnce = 0x02;

struct FrameHeader {
  uint64_t number_mess = 0;
  int32_t connection_key = 0;
  int32_t topic_key = 0;
  uint8_t flags = 0;
  uint32_t data_len = 0;
};

// Appends one complete frame (prefix included) to `out`. data_len is taken from `size`.
void encode_frame(std::string& out, FrameHeader header, const void* data, size_t size);
// Writes `number` as the number_mess of the frame that starts at `frame` (as encode_frame
// wrote it).
void stamp_number(char* frame, uint64_t number);

// Fields of a frame that starts at `frame`, as encode_frame wrote it (trusted bytes: our own
// queue, not the wire).
size_t frame_size_at(const char* frame);  // prefix included
uint64_t frame_number_at(const char* frame);
bool frame_is_at_least_once(const char* frame);

// Validates and parses a frame body (without its length prefix). On success `*data` points
// into `body`. A body shorter than 21 bytes or whose data_len overruns it is rejected.
bool decode_body(const uint8_t* body, size_t body_len, FrameHeader* header, const uint8_t** data,
                 std::string* error);

// Parses a complete stored frame (prefix included), as read back from Redis.
bool decode_stored_frame(const std::string& frame, FrameHeader* header, const uint8_t** data,
                         std::string* error);

// Incremental parser for one TCP stream. It never allocates more than has arrived (a lying
// length header costs nothing until the bytes are really there), and rejects a frame as soon
// as its header proves it invalid. After an error the stream must be closed.
class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t max_body_size = kDefaultMaxBodySize) : max_body_(max_body_size) {}

  // Calls on_frame(const FrameHeader&, const uint8_t* data) for every complete frame in the
  // bytes fed so far. Returns false on invalid input; error() then says why.
  template <class OnFrame>
  bool feed(const uint8_t* p, size_t n, OnFrame&& on_frame);

  bool mid_frame() const { return !pending_.empty(); }
  size_t buffered() const { return pending_.size(); }
  size_t reserved() const { return pending_.capacity(); }  // memory held for the partial frame
  const std::string& error() const { return error_; }

 private:
  bool check_prefix(const uint8_t* prefix, uint32_t* body_len);
  bool check_header(const uint8_t* body, uint32_t body_len);

  uint32_t max_body_;
  std::string pending_;  // bytes of the current incomplete frame, prefix included

  // Makes room for `want` bytes of a frame of `total` bytes. Memory follows what arrived (a
  // header may lie about the length): capacity doubles, except that once the frame is a quarter
  // in, it goes straight to `total`. Plain doubling could end on a capacity just short of the
  // frame and then copy it into twice its size (a 16 MiB frame briefly held 32 MiB); this way a
  // growth never copies more than half a frame, so the peak stays within the frame's size.
  void reserve_for(size_t want, size_t total) {
    size_t have = pending_.capacity();
    if (want <= have) return;
    size_t grown = 4 * pending_.size() >= total ? total : std::max(want, 2 * have);
    pending_.reserve(std::min(std::max(grown, want), total));
  }
  std::string error_;
};

inline uint32_t load_be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

template <class OnFrame>
bool FrameDecoder::feed(const uint8_t* p, size_t n, OnFrame&& on_frame) {
  if (!error_.empty()) return false;
  FrameHeader header;
  const uint8_t* data = nullptr;
  uint32_t body_len = 0;
  while (n > 0) {
    if (pending_.empty()) {
      // Fast path: whole frames straight from the caller's buffer, no copy.
      if (n < kLengthPrefixSize) {
        pending_.assign(reinterpret_cast<const char*>(p), n);
        return true;
      }
      if (!check_prefix(p, &body_len)) return false;
      size_t avail = n - kLengthPrefixSize;
      if (avail >= kBodyHeaderSize && !check_header(p + kLengthPrefixSize, body_len)) return false;
      if (avail < body_len) {
        pending_.assign(reinterpret_cast<const char*>(p), n);
        return true;
      }
      if (!decode_body(p + kLengthPrefixSize, body_len, &header, &data, &error_)) return false;
      on_frame(header, data);
      p += kLengthPrefixSize + body_len;
      n -= kLengthPrefixSize + body_len;
      continue;
    }
    // Slow path: complete the frame held in pending_.
    if (pending_.size() < kLengthPrefixSize) {
      size_t take = std::min(n, kLengthPrefixSize - pending_.size());
      pending_.append(reinterpret_cast<const char*>(p), take);
      p += take;
      n -= take;
      if (pending_.size() < kLengthPrefixSize) return true;
      if (!check_prefix(reinterpret_cast<const uint8_t*>(pending_.data()), &body_len)) return false;
    }
    body_len = load_be32(reinterpret_cast<const uint8_t*>(pending_.data()));
    size_t have = pending_.size() - kLengthPrefixSize;
    size_t take = std::min(n, size_t(body_len) - have);
    reserve_for(pending_.size() + take, kLengthPrefixSize + size_t(body_len));
    pending_.append(reinterpret_cast<const char*>(p), take);
    p += take;
    n -= take;
    have += take;
    const uint8_t* body = reinterpret_cast<const uint8_t*>(pending_.data()) + kLengthPrefixSize;
    if (have >= kBodyHeaderSize && !check_header(body, body_len)) return false;
    if (have < body_len) return true;
    if (!decode_body(body, body_len, &header, &data, &error_)) return false;
    on_frame(header, data);
    pending_.clear();
    if (pending_.capacity() > (1u << 20)) pending_.shrink_to_fit();
  }
  return true;
}

}  // namespace liner
