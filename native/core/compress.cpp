#include "core/compress.hpp"

#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <memory>

namespace liner {

namespace {

constexpr uint32_t kSkippableMagic = 0x184D2A50;  // RFC 8878 §3.1.2: any of 0x184D2A5?
constexpr size_t kSkippableHeader = 8;            // magic, then u32 content length (both LE)

void put_le32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}

// Appends a skippable frame of `total` bytes (at least its header). The frame body_len is a u32,
// so a payload's padding (size / kZstdMaxRatio) always fits one frame's u32 content length.
void append_skippable(std::string& out, size_t total) {
  size_t content = std::min<size_t>(std::max(total, kSkippableHeader) - kSkippableHeader, UINT32_MAX);
  out.reserve(out.size() + kSkippableHeader + content);
  put_le32(out, kSkippableMagic);
  put_le32(out, uint32_t(content));
  out.append(content, '\0');
}

// Gives `out` a capacity of exactly `cap`: std::string::reserve may round a request up to
// twice the old capacity, which could pass the output limit.
void grow_to(std::string& out, size_t cap) {
  std::string bigger;
  bigger.reserve(cap);
  bigger.assign(out);
  out.swap(bigger);
}

}  // namespace

size_t zstd_output_limit(size_t compressed_size, size_t max_out) {
  size_t by_ratio =
      compressed_size > SIZE_MAX / kZstdMaxRatio ? SIZE_MAX : compressed_size * kZstdMaxRatio;
  return std::min(max_out, std::max(kZstdRatioFloor, by_ratio));
}

bool zstd_compress(const void* src, size_t size, std::string& out) {
  out.resize(ZSTD_compressBound(size));
  size_t n = ZSTD_compress(&out[0], out.size(), src, size, ZSTD_CLEVEL_DEFAULT);
  if (ZSTD_isError(n)) {
    out.clear();
    return false;
  }
  out.resize(n);
  // A payload that shrinks past the receivers' ratio cap is padded up to it (compress.hpp),
  // or every liner listener would drop it as a bomb.
  size_t need = size / kZstdMaxRatio + (size % kZstdMaxRatio != 0);
  if (size > kZstdRatioFloor && n < need) append_skippable(out, need - n);
  return true;
}

bool zstd_decompress(const uint8_t* src, size_t size, size_t max_out, std::string& out,
                     std::string* error) {
  out.clear();
  const size_t limit = zstd_output_limit(size, max_out);
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!dctx) {
    *error = "zstd: out of memory";
    return false;
  }
  size_t rc = ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax, kZstdWindowLogMax);
  if (ZSTD_isError(rc)) {
    *error = std::string("zstd: ") + ZSTD_getErrorName(rc);
    return false;
  }
  const size_t step = ZSTD_DStreamOutSize();
  ZSTD_inBuffer in{src, size, 0};
  for (;;) {
    const size_t old = out.size(), consumed = in.pos;
    // `out` grows only as output arrives (doubling, capped at the limit), never to a size the
    // frame header claims. At the limit the decoder gets a 1-byte probe: any byte it writes
    // there is one too many.
    char probe;
    ZSTD_outBuffer ob{&probe, 1, 0};
    if (old < limit) {
      if (out.capacity() == old) grow_to(out, old >= limit / 2 ? limit : std::max(2 * old, step));
      size_t room = std::min({out.capacity() - old, limit - old, step});
      out.resize(old + room);
      ob = ZSTD_outBuffer{&out[old], room, 0};
    }
    size_t hint = ZSTD_decompressStream(dctx.get(), &ob, &in);
    if (ob.dst != &probe) out.resize(old + ob.pos);
    if (ZSTD_isError(hint)) {
      *error = std::string("zstd: ") + ZSTD_getErrorName(hint);
      out.clear();
      return false;
    }
    if (ob.dst == &probe && ob.pos != 0) {
      if (limit == max_out)
        *error = "zstd: decompressed payload exceeds the maximum message size (" +
                 std::to_string(max_out) + " bytes)";
      else
        *error = "zstd: " + std::to_string(size) + " compressed bytes expand past " +
                 std::to_string(limit) + " bytes = max(" + std::to_string(kZstdRatioFloor >> 20) +
                 " MiB, " + std::to_string(kZstdMaxRatio) + " x compressed size): refused as a bomb";
      out.clear();
      return false;
    }
    if (hint == 0 && in.pos == in.size) return true;  // the last frame ended and is flushed
    if (ob.pos == 0 && in.pos == consumed) {
      *error = "zstd: truncated frame";
      out.clear();
      return false;
    }
  }
}

}  // namespace liner
