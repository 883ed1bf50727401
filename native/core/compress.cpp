#include "core/compress.hpp"

#include <zstd.h>

#include <memory>

namespace liner {

bool zstd_compress(const void* src, size_t size, std::string& out) {
  out.resize(ZSTD_compressBound(size));
  size_t n = ZSTD_compress(&out[0], out.size(), src, size, ZSTD_CLEVEL_DEFAULT);
  if (ZSTD_isError(n)) {
    out.clear();
    return false;
  }
  out.resize(n);
  return true;
}

bool zstd_decompress(const uint8_t* src, size_t size, size_t max_out, std::string& out,
                     std::string* error) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!dctx) {
    *error = "zstd: out of memory";
    return false;
  }
  out.clear();
  ZSTD_inBuffer in{src, size, 0};
  size_t hint = 1;  // 0 once the decoder has ended a frame and holds nothing back
  while (in.pos < in.size || hint != 0) {
    size_t old = out.size(), chunk = ZSTD_DStreamOutSize(), consumed = in.pos;
    out.resize(old + chunk);
    ZSTD_outBuffer ob{&out[old], chunk, 0};
    hint = ZSTD_decompressStream(dctx.get(), &ob, &in);
    out.resize(old + ob.pos);
    if (ZSTD_isError(hint)) {
      *error = std::string("zstd: ") + ZSTD_getErrorName(hint);
      return false;
    }
    if (out.size() > max_out) {
      *error = "zstd: decompressed payload exceeds the maximum message size";
      return false;
    }
    if (ob.pos == 0 && in.pos == consumed) {
      *error = "zstd: truncated frame";
      return false;
    }
  }
  return true;
}

}  // namespace liner
