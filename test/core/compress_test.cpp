// zstd payload compression: round trips, and refusal of bombs and garbage.
#include <gtest/gtest.h>

#include <random>

#include "core/compress.hpp"

using namespace liner;

TEST(Compress, RoundTripsAboveTheThreshold) {
  std::string in(kDefaultCompressThreshold + 1, '\0');
  std::mt19937 rng(1);
  for (size_t i = 0; i < in.size(); ++i) in[i] = char(i % 251 < 200 ? 'a' : rng());
  std::string packed, out, err;
  ASSERT_TRUE(zstd_compress(in.data(), in.size(), packed));
  EXPECT_EQ(uint8_t(packed[0]), 0x28);  // zstd magic 28 b5 2f fd
  EXPECT_EQ(uint8_t(packed[3]), 0xfd);
  ASSERT_TRUE(zstd_decompress(reinterpret_cast<const uint8_t*>(packed.data()), packed.size(), in.size(), out, &err)) << err;
  EXPECT_EQ(out, in);
}

TEST(Compress, AcceptsConcatenatedFrames) {
  std::string a(5000, 'a'), b(7000, 'b'), pa, pb, out, err;
  ASSERT_TRUE(zstd_compress(a.data(), a.size(), pa));
  ASSERT_TRUE(zstd_compress(b.data(), b.size(), pb));
  std::string both = pa + pb;
  ASSERT_TRUE(zstd_decompress(reinterpret_cast<const uint8_t*>(both.data()), both.size(), 1 << 20, out, &err)) << err;
  EXPECT_EQ(out, a + b);
}

TEST(Compress, RefusesOutputAboveTheLimit) {
  std::string zeros(size_t(8) << 20, '\0'), packed, out, err;
  ASSERT_TRUE(zstd_compress(zeros.data(), zeros.size(), packed));
  EXPECT_FALSE(zstd_decompress(reinterpret_cast<const uint8_t*>(packed.data()), packed.size(), 1 << 20, out, &err));
  EXPECT_NE(err.find("maximum"), std::string::npos);
}

TEST(Compress, RejectsGarbageAndTruncation) {
  std::string in(100000, 'z'), packed, out, err;
  ASSERT_TRUE(zstd_compress(in.data(), in.size(), packed));
  EXPECT_FALSE(zstd_decompress(reinterpret_cast<const uint8_t*>(packed.data()), packed.size() / 2, 1 << 20, out, &err));
  std::string junk = "not a zstd frame at all";
  EXPECT_FALSE(zstd_decompress(reinterpret_cast<const uint8_t*>(junk.data()), junk.size(), 1 << 20, out, &err));
  EXPECT_FALSE(zstd_decompress(nullptr, 0, 1 << 20, out, &err));
}
