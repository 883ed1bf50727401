// zstd for payloads above the compression threshold (compat spec §1.5).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace liner {

constexpr size_t kDefaultCompressThreshold = 1u << 20;  // compress iff size > 1 MiB

// Compresses at zstd's default level into `out` (replacing its content).
bool zstd_compress(const void* src, size_t size, std::string& out);

// Streaming decompression (the reference encoder may omit the content size, and concatenated
// frames are legal). Refuses output larger than max_out: a small frame can claim gigabytes.
bool zstd_decompress(const uint8_t* src, size_t size, size_t max_out, std::string& out,
                     std::string* error);

}  // namespace liner
