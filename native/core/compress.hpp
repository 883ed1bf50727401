// zstd for payloads above the compression threshold (compat spec §1.5), and the bound on what a
// received zstd payload may expand to.
//
// The expansion rule. A 33 KB frame of RLE blocks claims 1 GiB, so the maximum message size
// alone does not bound what one frame costs the listener. A COMPRESS payload of C bytes (the
// whole data field: every frame in it, skippable ones included) is refused as soon as its
// decompressed output would pass
//
//     min(max message size, max(kZstdRatioFloor, kZstdMaxRatio * C))
//   = min(max message size, max(16 MiB, 256 * C))
//
// so a frame of C bytes costs the listener at most max(16 MiB, 256 * C) bytes of output (and
// the time to produce them) before it is dropped: a 33 KB bomb gets 16 MiB, not 1 GiB.
//
// What is refused that a real sender may send: only a payload of more than 16 MiB that zstd
// level 3 shrinks more than 256 times, sent by a liner_broker 1.3.1 peer (or any other encoder
// that does not pad, see below). Text, JSON and logs (5-50x) pass at every size up to the
// maximum message size; an all-zero or one-byte-repeated buffer (~32000x: one 4-byte RLE block
// per 128 KiB) passes up to 16 MiB from 1.3.1. Every payload of 16 MiB or less passes whatever
// its ratio. The refusal is an error string; the listener logs it and drops the message.
//
// zstd_compress keeps liner's own senders inside the rule: when its output would expand more
// than kZstdMaxRatio times (and to more than kZstdRatioFloor), it appends a zstd skippable frame
// (RFC 8878 §3.1.2, magic 0x184D2A50) of zero bytes that makes the payload at least
// ceil(size / 256) bytes long. Every zstd streaming decoder skips such frames (1.3.1 decodes with
// zstd::stream::decode_all, which does), so the bytes still decode to the same payload
// everywhere; the cost is at most size / 256 bytes on the wire (4 MiB for a 1 GiB payload of
// zeros), still 256 times less than sending it raw.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace liner {

constexpr size_t kDefaultCompressThreshold = 1u << 20;  // compress iff size > 1 MiB

// Output any COMPRESS payload may reach, however well it compresses. 16 MiB: the cost one
// bomb may impose (memory and ~10 ms of CPU per frame, freed right after) stays small next to
// the 1 GiB a raw message may take, while the payloads just above the 1 MiB threshold, which
// any ratio may shrink to a few hundred bytes, pass from every sender.
constexpr size_t kZstdRatioFloor = size_t(16) << 20;
// Largest output / input ratio above the floor. Level 3 shrinks text, JSON and logs 5-50 times
// and sparse or highly repetitive data rarely past a few hundred; only long runs of one byte
// pattern (a bomb's material, ~32000x) go far beyond. 256 leaves 5x headroom over the most
// compressible real text and makes an attacker pay 1 byte on the wire per 256 bytes of output.
constexpr size_t kZstdMaxRatio = 256;
// Largest zstd window accepted (8 MiB). Level 3 uses at most 2^21; a bigger declared window
// would only make the decoder allocate for a frame no liner or liner_broker peer writes.
constexpr int kZstdWindowLogMax = 23;

// The most bytes a COMPRESS payload of `compressed_size` bytes may decompress to when the
// maximum message size is `max_out`: min(max_out, max(kZstdRatioFloor, kZstdMaxRatio * size)).
size_t zstd_output_limit(size_t compressed_size, size_t max_out);

// Compresses at zstd's default level (3) into `out` (replacing its content), padded with a
// skippable frame when needed so that zstd_output_limit admits it (see the rule above).
bool zstd_compress(const void* src, size_t size, std::string& out);

// Streaming decompression (the reference encoder may omit the content size, and concatenated
// frames are legal). Stops with an error once the output would pass zstd_output_limit(size,
// max_out); `out` grows only as output is produced (a declared content size reserves nothing)
// and its capacity never passes that limit.
bool zstd_decompress(const uint8_t* src, size_t size, size_t max_out, std::string& out,
                     std::string* error);

}  // namespace liner
