// libFuzzer target: the listener's stream parser (FrameDecoder) and the body decoder.
// Whatever the bytes and however they are split, the decoder must not crash, must never hold
// more than has arrived, and every frame it returns must be self-consistent (a frame above its
// maximum comes without data, its body skipped).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/frame.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // The first byte picks a split pattern, so that partial reads are explored too.
  size_t step = 1 + data[0] % 64;
  const uint8_t* p = data + 1;
  size_t n = size - 1;
  liner::FrameDecoder decoder(1u << 20);
  size_t fed = 0;
  for (size_t i = 0; i < n; i += step) {
    size_t chunk = std::min(step, n - i);
    fed += chunk;
    bool ok = decoder.feed(p + i, chunk, [&](const liner::FrameHeader& h, const uint8_t* body) {
      if (!body) {
        // Above the decoder's maximum, skipped: its header still fits the protocol's 1 GiB.
        if (uint64_t(h.data_len) + liner::kBodyHeaderSize > liner::kDefaultMaxBodySize) abort();
        return;
      }
      if (body < p || body + h.data_len > p + n) {
        // Frames assembled in the decoder's own buffer point elsewhere; check the length only.
        if (h.data_len > (1u << 20)) abort();
      }
    });
    if (decoder.buffered() > fed) abort();  // never more than has arrived
    if (!ok) break;
  }
  // The whole input as one stored frame (what an offline queue element is read back as).
  liner::FrameHeader h;
  const uint8_t* body = nullptr;
  std::string err;
  std::string frame(reinterpret_cast<const char*>(p), n);
  if (liner::decode_stored_frame(frame, &h, &body, &err)) {
    if (size_t(body - reinterpret_cast<const uint8_t*>(frame.data())) + h.data_len > frame.size()) abort();
  }
  return 0;
}
