// The liner_broker 1.3.1 wire frame (compat spec §1):
//   u32 body_len | u64 number_mess | i32 connection_key | i32 topic_key | u8 flags |
//   u32 data_len | data[data_len]          (all big-endian, body_len = 21 + data_len)
// The same bytes, length prefix included, are what the offline queue in Redis stores.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

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

inline uint32_t load_be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

inline uint64_t load_be64(const uint8_t* p) { return (uint64_t(load_be32(p)) << 32) | load_be32(p + 4); }

// The header fields of a frame body (without its length prefix) of at least 21 bytes; nothing
// is checked. Inline: the listener runs it for every frame.
inline void parse_body_header(const uint8_t* body, FrameHeader* h) {
  h->number_mess = load_be64(body);
  h->connection_key = int32_t(load_be32(body + 8));
  h->topic_key = int32_t(load_be32(body + 12));
  h->flags = body[16];
  h->data_len = load_be32(body + 17);
}

// Appends one complete frame (prefix included) to `out`. data_len is taken from `size`.
void encode_frame(std::string& out, FrameHeader header, const void* data, size_t size);
// Writes the same frame at `out`, which has room for kFrameOverhead + size bytes.
void encode_frame_at(char* out, FrameHeader header, const void* data, size_t size);
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
// The number_mess of a stored frame; 0 (no real message has it) when it is not a frame.
uint64_t stored_frame_number(const std::string& frame);

// Incremental parser for one TCP stream. It never allocates more than has arrived (a lying
// length header costs nothing until the bytes are really there), and rejects a frame as soon
// as its header proves it invalid. After an error the stream must be closed.
//
// A frame that is valid on the wire (body up to 1 GiB) but above this decoder's maximum is not
// an error: its header is parsed, on_frame gets it with data == nullptr, and the rest of its
// body is skipped without being kept, so one oversize message costs the stream nothing else.
class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t max_body_size = kDefaultMaxBodySize) : max_body_(max_body_size) {}

  // Calls on_frame(const FrameHeader&, const uint8_t* data) for every complete frame in the
  // bytes fed so far (data == nullptr: an oversize frame, skipped). Returns false on invalid
  // input; error() then says why.
  template <class OnFrame>
  bool feed(const uint8_t* p, size_t n, OnFrame&& on_frame);

  bool mid_frame() const { return !pending_.empty() || skipping_ || skip_left_ > 0; }
  // Inside on_frame, for a frame that was assembled here (its data is not in the bytes fed):
  // hands over the buffer holding it, prefix included, so the caller can keep the frame
  // without copying it. The decoder starts the next frame in a buffer of the same capacity
  // when it would have kept its own (up to kContiguous), in an empty one otherwise.
  std::string take_frame() {
    std::string frame = std::move(pending_);
    pending_ = std::string();
    if (frame.capacity() <= kContiguous) pending_.reserve(frame.capacity());
    return frame;
  }
  size_t buffered() const { return pending_.size() + tail_bytes_; }
  size_t reserved() const {  // memory held for the partial frame
    size_t bytes = pending_.capacity();
    for (const auto& chunk : tail_) bytes += chunk.capacity();
    return bytes;
  }
  const std::string& error() const { return error_; }

 private:
  // The checks every frame passes are inline; building the error (cold) is not.
  bool check_prefix(const uint8_t* prefix, uint32_t* body_len) {
    *body_len = load_be32(prefix);
    return (*body_len >= kBodyHeaderSize && *body_len <= max_body_) || prefix_error(*body_len);
  }
  bool check_header(const uint8_t* body, uint32_t body_len) {
    uint32_t data_len = load_be32(body + 17);
    return uint64_t(data_len) + kBodyHeaderSize <= body_len || header_error(data_len, body_len);
  }
  // Set error_ and return false; or, for a frame valid on the wire but above max_body_, set
  // skipping_ and return false with no error.
  [[gnu::cold]] bool prefix_error(uint32_t body_len);
  // Collects an oversize frame's prefix and header in pending_, then hands it on and starts
  // skipping its body. Returns false on an invalid header.
  template <class OnFrame>
  bool collect_oversize(const uint8_t*& p, size_t& n, OnFrame& on_frame);
  [[gnu::cold]] bool header_error(uint32_t data_len, uint32_t body_len);

  uint32_t max_body_;
  bool skipping_ = false;   // collecting an oversize frame's header
  uint64_t skip_left_ = 0;  // bytes of an oversize frame's body still to skip
  // The current incomplete frame, prefix included: its first kContiguous bytes in pending_, the
  // rest in tail_, chunks of at most kContiguous that are filled and never reallocated. Memory
  // follows what arrived (a header may lie about the length), and a growing frame is never
  // copied into a bigger buffer with both resident: only pending_ doubles, up to 1 MiB. The
  // parts are joined once, when the frame is complete.
  static constexpr size_t kContiguous = size_t(1) << 20;
  std::string pending_;
  std::vector<std::string> tail_;
  size_t tail_bytes_ = 0;

  // Appends k bytes of a frame of `total` bytes.
  void append(const uint8_t* p, size_t k, size_t total) {
    const char* c = reinterpret_cast<const char*>(p);
    if (tail_.empty() && pending_.size() < kContiguous) {
      size_t direct = std::min(k, kContiguous - pending_.size());
      size_t want = pending_.size() + direct, limit = std::min(total, kContiguous);
      if (want > pending_.capacity())
        pending_.reserve(std::min(std::max(want, 2 * pending_.capacity()), limit));
      pending_.append(c, direct);
      c += direct;
      k -= direct;
    }
    while (k > 0) {
      if (tail_.empty() || tail_.back().size() == tail_.back().capacity()) {
        tail_.emplace_back();
        tail_.back().reserve(std::min(kContiguous, total - buffered()));
      }
      std::string& chunk = tail_.back();
      size_t put = std::min(k, chunk.capacity() - chunk.size());
      chunk.append(c, put);
      tail_bytes_ += put;
      c += put;
      k -= put;
    }
  }

  // Joins pending_ and tail_ into pending_; each part is freed as soon as it was copied.
  void assemble(size_t total) {
    std::string whole;
    whole.reserve(total);
    whole.append(pending_);
    std::string().swap(pending_);
    for (auto& chunk : tail_) {
      whole.append(chunk);
      std::string().swap(chunk);
    }
    tail_.clear();
    tail_bytes_ = 0;
    pending_.swap(whole);
  }
  std::string error_;
};

template <class OnFrame>
bool FrameDecoder::collect_oversize(const uint8_t*& p, size_t& n, OnFrame& on_frame) {
  size_t take = std::min(n, kFrameOverhead - pending_.size());
  pending_.append(reinterpret_cast<const char*>(p), take);
  p += take;
  n -= take;
  if (pending_.size() < kFrameOverhead) return true;
  const uint8_t* frame = reinterpret_cast<const uint8_t*>(pending_.data());
  uint32_t body_len = load_be32(frame);
  if (!check_header(frame + kLengthPrefixSize, body_len)) return false;
  FrameHeader header;
  parse_body_header(frame + kLengthPrefixSize, &header);
  skipping_ = false;
  skip_left_ = body_len - kBodyHeaderSize;
  pending_.clear();
  on_frame(header, static_cast<const uint8_t*>(nullptr));
  return true;
}

template <class OnFrame>
bool FrameDecoder::feed(const uint8_t* p, size_t n, OnFrame&& on_frame) {
  if (!error_.empty()) return false;
  FrameHeader header;
  const uint8_t* data = nullptr;
  uint32_t body_len = 0;
  while (n > 0) {
    if (skip_left_ > 0) {  // the body of an oversize frame
      size_t take = size_t(std::min<uint64_t>(n, skip_left_));
      p += take;
      n -= take;
      skip_left_ -= take;
      continue;
    }
    if (skipping_) {
      if (!collect_oversize(p, n, on_frame)) return false;
      continue;
    }
    if (pending_.empty()) {
      // Fast path: whole frames straight from the caller's buffer, no copy.
      if (n < kLengthPrefixSize) {
        pending_.assign(reinterpret_cast<const char*>(p), n);
        return true;
      }
      if (!check_prefix(p, &body_len)) {
        if (skipping_) continue;
        return false;
      }
      size_t avail = n - kLengthPrefixSize;
      if (avail >= kBodyHeaderSize && !check_header(p + kLengthPrefixSize, body_len)) return false;
      if (avail < body_len) {
        pending_.assign(reinterpret_cast<const char*>(p), n);
        return true;
      }
      // The whole body is here, so check_header has passed it: parse without checking again.
      parse_body_header(p + kLengthPrefixSize, &header);
      data = p + kFrameOverhead;
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
      if (!check_prefix(reinterpret_cast<const uint8_t*>(pending_.data()), &body_len)) {
        if (skipping_) continue;
        return false;
      }
    }
    body_len = load_be32(reinterpret_cast<const uint8_t*>(pending_.data()));
    size_t total = kLengthPrefixSize + size_t(body_len);
    size_t have = buffered() - kLengthPrefixSize;
    size_t take = std::min(n, size_t(body_len) - have);
    append(p, take, total);
    p += take;
    n -= take;
    have += take;
    // The header is in pending_ (kContiguous is far more than 25 bytes).
    const uint8_t* body = reinterpret_cast<const uint8_t*>(pending_.data()) + kLengthPrefixSize;
    if (have >= kBodyHeaderSize && !check_header(body, body_len)) return false;
    if (have < body_len) return true;
    if (!tail_.empty()) assemble(total);
    body = reinterpret_cast<const uint8_t*>(pending_.data()) + kLengthPrefixSize;
    if (!decode_body(body, body_len, &header, &data, &error_)) return false;
    on_frame(header, data);
    pending_.clear();
    if (pending_.capacity() > kContiguous) pending_.shrink_to_fit();
  }
  return true;
}

}  // namespace liner
