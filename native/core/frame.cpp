#include "core/frame.hpp"

#include <algorithm>
#include <cstring>

namespace liner {
namespace {

// Big-endian stores, one instruction each once inlined.
void store_be32(char* p, uint32_t v) {
  v = __builtin_bswap32(v);
  std::memcpy(p, &v, sizeof v);
}

void store_be64(char* p, uint64_t v) {
  v = __builtin_bswap64(v);
  std::memcpy(p, &v, sizeof v);
}

}  // namespace

void encode_frame(std::string& out, FrameHeader h, const void* data, size_t size) {
  size_t at = out.size();
  out.resize(at + kFrameOverhead + size);
  encode_frame_at(&out[at], h, data, size);
}

void encode_frame_at(char* out, FrameHeader h, const void* data, size_t size) {
  // Direct stores: this runs once per message on the caller's thread.
  store_be32(out, uint32_t(kBodyHeaderSize + size));
  store_be64(out + 4, h.number_mess);
  store_be32(out + 12, uint32_t(h.connection_key));
  store_be32(out + 16, uint32_t(h.topic_key));
  out[20] = char(h.flags);
  store_be32(out + 21, uint32_t(size));
  if (size) std::memcpy(out + kFrameOverhead, data, size);
}

void stamp_number(char* frame, uint64_t number) { store_be64(frame + kLengthPrefixSize, number); }

size_t frame_size_at(const char* frame) {
  return kLengthPrefixSize + load_be32(reinterpret_cast<const uint8_t*>(frame));
}

uint64_t frame_number_at(const char* frame) {
  return load_be64(reinterpret_cast<const uint8_t*>(frame) + kLengthPrefixSize);
}

bool frame_is_at_least_once(const char* frame) {
  return (uint8_t(frame[kLengthPrefixSize + 16]) & kFlagAtLeastOnce) != 0;
}

bool decode_body(const uint8_t* body, size_t body_len, FrameHeader* h, const uint8_t** data,
                 std::string* error) {
  if (body_len < kBodyHeaderSize) {
    *error = "frame body of " + std::to_string(body_len) + " bytes is shorter than its 21-byte header";
    return false;
  }
  parse_body_header(body, h);
  if (uint64_t(h->data_len) + kBodyHeaderSize > body_len) {
    *error = "frame data_len " + std::to_string(h->data_len) + " overruns its body of " +
             std::to_string(body_len) + " bytes";
    return false;
  }
  *data = body + kBodyHeaderSize;
  return true;
}

bool decode_stored_frame(const std::string& frame, FrameHeader* h, const uint8_t** data,
                         std::string* error) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(frame.data());
  if (frame.size() < kLengthPrefixSize || load_be32(p) != frame.size() - kLengthPrefixSize) {
    *error = "stored frame length does not match its prefix";
    return false;
  }
  return decode_body(p + kLengthPrefixSize, frame.size() - kLengthPrefixSize, h, data, error);
}

uint64_t stored_frame_number(const std::string& frame) {
  FrameHeader h;
  const uint8_t* data = nullptr;
  std::string err;
  return decode_stored_frame(frame, &h, &data, &err) ? h.number_mess : 0;
}

bool FrameDecoder::prefix_error(uint32_t body_len) {
  if (body_len > max_body_ && body_len <= kDefaultMaxBodySize) {
    skipping_ = true;  // valid on the wire, too big for us: skipped, not an error
    return false;
  }
  if (body_len < kBodyHeaderSize)
    error_ = "frame body length " + std::to_string(body_len) + " is below the 21-byte minimum";
  else
    error_ = "frame body length " + std::to_string(body_len) + " exceeds the protocol's maximum of " +
             std::to_string(kDefaultMaxBodySize);
  return false;
}

bool FrameDecoder::header_error(uint32_t data_len, uint32_t body_len) {
  error_ = "frame data_len " + std::to_string(data_len) + " overruns its body of " + std::to_string(body_len) +
           " bytes";
  return false;
}

}  // namespace liner
