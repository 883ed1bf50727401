// zstd payload compression: round trips, and refusal of bombs and garbage (the expansion rule of
// compress.hpp: output <= min(max message size, max(16 MiB, 256 x compressed size))).
#include <gtest/gtest.h>
#include <zstd.h>

#include <chrono>
#include <random>

#include "core/compress.hpp"

using namespace liner;

namespace {

constexpr size_t kMiB = size_t(1) << 20;
constexpr size_t kGiB = size_t(1) << 30;

bool unzstd(const std::string& packed, size_t max_out, std::string& out, std::string& err) {
  return zstd_decompress(reinterpret_cast<const uint8_t*>(packed.data()), packed.size(), max_out, out, &err);
}

void put_le(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(char((v >> (8 * i)) & 0xff));
}

// What a bomb is made of: a zstd frame of RLE blocks, 4 bytes per 128 KiB of zeros (window
// 128 KiB). declared = 0: no content size in the header (as the streaming encoder writes);
// otherwise that size is claimed, true or not.
std::string rle_bomb(size_t blocks, uint64_t declared = 0) {
  std::string f("\x28\xb5\x2f\xfd", 4);
  f.push_back(declared ? char(0xc0) : char(0x00));  // FCS field of 8 bytes or none; not single segment
  f.push_back(char(7 << 3));                         // window 2^(10+7) = 128 KiB
  if (declared) put_le(f, declared, 8);
  for (size_t i = 0; i < blocks; ++i) {
    uint32_t last = i + 1 == blocks;
    put_le(f, last | (1u << 1) | (uint32_t(128 * 1024) << 3), 3);  // RLE block of 128 KiB
    f.push_back('\0');
  }
  return f;
}

// A skippable frame (RFC 8878 §3.1.2) of `total` bytes, header included.
std::string skippable(size_t total) {
  std::string f;
  put_le(f, 0x184D2A50, 4);
  put_le(f, total - 8, 4);
  f.append(total - 8, 'p');
  return f;
}

// A frame as liner_broker 1.3.1 writes it (zstd::stream::encode_all at level 3): streamed, so
// without content size, and never padded.
std::string stream_compress(const std::string& in) {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  std::string out(ZSTD_compressBound(in.size()) + 64, '\0');
  ZSTD_inBuffer ib{in.data(), 0, 0};
  ZSTD_outBuffer ob{&out[0], out.size(), 0};
  // Fed 64 KiB at a time, as a stream: the encoder never learns the total size.
  for (size_t pos = 0; pos < in.size(); pos = ib.size) {
    ib.size = std::min(in.size(), pos + 65536);
    while (ib.pos < ib.size) EXPECT_FALSE(ZSTD_isError(ZSTD_compressStream2(cctx.get(), &ob, &ib, ZSTD_e_continue)));
  }
  size_t left;
  do left = ZSTD_compressStream2(cctx.get(), &ob, &ib, ZSTD_e_end);
  while (left != 0 && !ZSTD_isError(left));
  EXPECT_EQ(left, 0u);
  out.resize(ob.pos);
  return out;
}

// An unpadded frame of `n` zeros (ZSTD_compress directly: what 1.3.1 or an attacker sends).
std::string raw_zeros_frame(size_t n) {
  std::string zeros(n, '\0'), out(ZSTD_compressBound(n), '\0');
  size_t c = ZSTD_compress(&out[0], out.size(), zeros.data(), zeros.size(), 3);
  EXPECT_FALSE(ZSTD_isError(c));
  out.resize(c);
  return out;
}

bool all_zero(const std::string& s) { return s.find_first_not_of('\0') == std::string::npos; }

}  // namespace

TEST(Compress, RoundTripsAboveTheThreshold) {
  std::string in(kDefaultCompressThreshold + 1, '\0');
  std::mt19937 rng(1);
  for (size_t i = 0; i < in.size(); ++i) in[i] = char(i % 251 < 200 ? 'a' : rng());
  std::string packed, out, err;
  ASSERT_TRUE(zstd_compress(in.data(), in.size(), packed));
  EXPECT_EQ(uint8_t(packed[0]), 0x28);  // zstd magic 28 b5 2f fd
  EXPECT_EQ(uint8_t(packed[3]), 0xfd);
  ASSERT_TRUE(unzstd(packed, in.size(), out, err)) << err;
  EXPECT_EQ(out, in);
  EXPECT_LE(out.capacity(), in.size());  // grown to the limit, not past it
}

TEST(Compress, AcceptsConcatenatedFrames) {
  std::string a(5000, 'a'), b(7000, 'b'), pa, pb, out, err;
  ASSERT_TRUE(zstd_compress(a.data(), a.size(), pa));
  ASSERT_TRUE(zstd_compress(b.data(), b.size(), pb));
  std::string both = pa + pb;
  ASSERT_TRUE(unzstd(both, 1 << 20, out, err)) << err;
  EXPECT_EQ(out, a + b);
  // Skippable frames anywhere are ignored.
  std::string padded = skippable(100) + pa + skippable(8) + pb + skippable(3000);
  ASSERT_TRUE(unzstd(padded, 1 << 20, out, err)) << err;
  EXPECT_EQ(out, a + b);
}

TEST(Compress, DecodesAStreamedFrameWithoutContentSizeAboveTheFloor) {
  // 24 MiB of log lines (text: ~10x, far below the ratio cap) from a streaming encoder.
  std::string log;
  for (size_t i = 0; log.size() < kZstdRatioFloor + 8 * kMiB; ++i)
    log += "2024-05-01T12:00:" + std::to_string(i % 60) + "Z INFO request id=" + std::to_string(i * 7919) +
           " path=/api/v1/items/" + std::to_string(i % 1000) + " status=200\n";
  std::string packed = stream_compress(log), out, err;
  ASSERT_EQ(ZSTD_getFrameContentSize(packed.data(), packed.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  ASSERT_LT(packed.size() * kZstdMaxRatio, log.size() * 50);  // really a big ratio (> 5x) ...
  ASSERT_GT(packed.size() * kZstdMaxRatio, log.size());       // ... but under the cap
  ASSERT_TRUE(unzstd(packed, kGiB, out, err)) << err;
  EXPECT_EQ(out, log);
}

TEST(Compress, RefusesOutputAboveTheLimit) {
  std::string zeros(size_t(8) << 20, '\0'), packed, out, err;
  ASSERT_TRUE(zstd_compress(zeros.data(), zeros.size(), packed));
  EXPECT_FALSE(unzstd(packed, 1 << 20, out, err));
  EXPECT_NE(err.find("maximum"), std::string::npos);
  EXPECT_LE(out.capacity(), size_t(1) << 20);
}

TEST(Compress, BombOfTheIssueIsRefusedAtTheRatioCapWithoutAllocatingItsClaim) {
  // 33 KB claiming 1 GiB, no content size: the frame of the issue.
  std::string bomb = rle_bomb(8192), out, err;
  ASSERT_LT(bomb.size(), 33 * 1024u);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(unzstd(bomb, kGiB, out, err));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_NE(err.find("bomb"), std::string::npos) << err;
  EXPECT_TRUE(out.empty());
  EXPECT_LE(out.capacity(), kZstdRatioFloor);
  EXPECT_LT(took, std::chrono::seconds(1));  // ~16 MiB of output, not 1 GiB

  // The same frame claiming its 1 GiB, or far more, in the header: nothing is reserved for it.
  for (uint64_t claim : {uint64_t(kGiB), uint64_t(1) << 40}) {
    std::string forged = rle_bomb(8192, claim), out2;
    EXPECT_FALSE(unzstd(forged, kGiB, out2, err));
    EXPECT_LE(out2.capacity(), kZstdRatioFloor);
  }
  // A lie in the other direction (claims 1 TiB, holds 1 MiB) fails at the end of the frame.
  std::string liar = rle_bomb(8, uint64_t(1) << 40), out3;
  EXPECT_FALSE(unzstd(liar, kGiB, out3, err));
  EXPECT_LE(out3.capacity(), 2 * kMiB);
}

TEST(Compress, BombOfZerosIsRefusedWithinTheLowerLimit) {
  // 256 MiB of zeros compressed by zstd itself (no padding): a few KB.
  std::string bomb = raw_zeros_frame(256 * kMiB), out, err;
  ASSERT_LT(bomb.size(), 64 * 1024u);
  // Ratio cap: the max message size (1 GiB) would admit it, the rule stops it at 16 MiB.
  EXPECT_FALSE(unzstd(bomb, kGiB, out, err));
  EXPECT_NE(err.find("bomb"), std::string::npos) << err;
  EXPECT_LE(out.capacity(), kZstdRatioFloor);
  // A max message size below the floor is the limit then.
  std::string fresh;
  EXPECT_FALSE(unzstd(bomb, 3 * kMiB + 5, fresh, err));
  EXPECT_NE(err.find("maximum message size"), std::string::npos) << err;
  EXPECT_LE(fresh.capacity(), 3 * kMiB + 5);
}

TEST(Compress, OutputLimitIsTheDocumentedRule) {
  EXPECT_EQ(zstd_output_limit(1, kGiB), 16 * kMiB);
  EXPECT_EQ(zstd_output_limit(64 * 1024, kGiB), 16 * kMiB);
  EXPECT_EQ(zstd_output_limit(64 * 1024 + 1, kGiB), 16 * kMiB + 256);
  EXPECT_EQ(zstd_output_limit(4 * kMiB, kGiB), kGiB);
  EXPECT_EQ(zstd_output_limit(100 * kMiB, kGiB), kGiB);
  EXPECT_EQ(zstd_output_limit(1, 4096), 4096u);
  EXPECT_EQ(zstd_output_limit(SIZE_MAX, SIZE_MAX), SIZE_MAX);
}

TEST(Compress, RatioCapRefusesAtTheDocumentedPointAndAcceptsJustBelow) {
  std::string out, err;
  // The floor: 16 MiB decodes from any ratio, one byte more does not.
  std::string at_floor = raw_zeros_frame(kZstdRatioFloor);
  ASSERT_TRUE(unzstd(at_floor, kGiB, out, err)) << err;
  EXPECT_EQ(out.size(), kZstdRatioFloor);
  EXPECT_TRUE(all_zero(out));
  EXPECT_LE(out.capacity(), kZstdRatioFloor);
  EXPECT_FALSE(unzstd(raw_zeros_frame(kZstdRatioFloor + 1), kGiB, out, err));

  // Above the floor: 64 MiB + 1 of zeros needs ceil((64 MiB + 1) / 256) = 256 KiB + 1 bytes.
  // Padded (skippable frame) to exactly 256 KiB, 256 x C = 64 MiB: one byte too many.
  const size_t n = 64 * kMiB + 1, c = 256 * 1024;
  std::string frame = raw_zeros_frame(n);
  ASSERT_LT(frame.size() + 8, c);
  std::string short_by_one = frame + skippable(c - frame.size());
  ASSERT_EQ(short_by_one.size(), c);
  std::string refused, accepted;
  EXPECT_FALSE(unzstd(short_by_one, kGiB, refused, err));
  EXPECT_NE(err.find("bomb"), std::string::npos) << err;
  EXPECT_LE(refused.capacity(), zstd_output_limit(c, kGiB));
  std::string enough = frame + skippable(c + 1 - frame.size());
  ASSERT_TRUE(unzstd(enough, kGiB, accepted, err)) << err;
  EXPECT_EQ(accepted.size(), n);
  EXPECT_TRUE(all_zero(accepted));
  EXPECT_LE(accepted.capacity(), zstd_output_limit(c + 1, kGiB));
}

TEST(Compress, OwnCompressorPadsVeryCompressiblePayloadsSoTheyPass) {
  std::string zeros(64 * kMiB + 3, '\0'), packed, out, err;
  ASSERT_TRUE(zstd_compress(zeros.data(), zeros.size(), packed));
  EXPECT_GE(packed.size() * kZstdMaxRatio, zeros.size());
  EXPECT_LE(packed.size(), zeros.size() / kZstdMaxRatio + 16);
  ASSERT_TRUE(unzstd(packed, kGiB, out, err)) << err;
  EXPECT_EQ(out, zeros);
  // zstd's own one-shot decoder reads the padded payload too (skippable frames are standard).
  std::string plain(zeros.size(), 'x');
  EXPECT_EQ(ZSTD_decompress(&plain[0], plain.size(), packed.data(), packed.size()), zeros.size());
  EXPECT_EQ(plain, zeros);
  // At or below the floor nothing is added.
  std::string floor_zeros(kZstdRatioFloor, '\0');
  ASSERT_TRUE(zstd_compress(floor_zeros.data(), floor_zeros.size(), packed));
  EXPECT_LT(packed.size(), 4096u);
}

TEST(Compress, RejectsGarbageAndTruncation) {
  std::string in(100000, 'z'), packed, out, err;
  ASSERT_TRUE(zstd_compress(in.data(), in.size(), packed));
  EXPECT_FALSE(zstd_decompress(reinterpret_cast<const uint8_t*>(packed.data()), packed.size() / 2, 1 << 20, out, &err));
  std::string junk = "not a zstd frame at all";
  EXPECT_FALSE(unzstd(junk, 1 << 20, out, err));
  EXPECT_FALSE(zstd_decompress(nullptr, 0, 1 << 20, out, &err));
  // Random bytes after a valid magic, many times: an error each time, never a crash.
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    std::string g("\x28\xb5\x2f\xfd", 4);
    for (int j = 0; j < 64; ++j) g.push_back(char(rng()));
    out.clear();
    err.clear();
    if (!unzstd(g, 1 << 20, out, err)) EXPECT_FALSE(err.empty());
    EXPECT_LE(out.capacity(), size_t(1) << 20);
  }
  // A truncated bomb, and a valid frame followed by garbage.
  EXPECT_FALSE(unzstd(rle_bomb(16).substr(0, 30), kGiB, out, err));
  EXPECT_FALSE(unzstd(packed + "garbage!", kGiB, out, err));
  // A declared window past 2^23 (an 8 MiB window is more than level 3 ever uses) is refused
  // before the decoder allocates it.
  std::string huge_window("\x28\xb5\x2f\xfd", 4);
  huge_window.push_back(char(0x00));
  huge_window.push_back(char((31 - 10) << 3));  // 2 GiB window
  put_le(huge_window, 1u | (1u << 1) | (16u << 3), 3);
  huge_window.push_back('\0');
  EXPECT_FALSE(unzstd(huge_window, kGiB, out, err));
  EXPECT_NE(err.find("memory"), std::string::npos) << err;
}
