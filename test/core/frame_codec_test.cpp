// The wire codec against the golden vectors of frames.json (liner_broker 1.3.1 encoder).
#include <gtest/gtest.h>

#include <random>

#include "core/frame.hpp"
#include "test_support.hpp"

using namespace liner;
using testing_support::from_hex;
using testing_support::Json;
using testing_support::to_hex;

namespace {

const Json& vectors() {
  static Json j = testing_support::parse_json(testing_support::read_file(LINER_TEST_DATA "/frames.json"));
  return j;
}

struct Decoded {
  FrameHeader h;
  std::string data;
  bool skipped = false;  // an oversize frame: header only
};

// Feeds `bytes` in pieces of `step` bytes; returns false on a rejected stream.
bool decode_all(const std::string& bytes, size_t step, std::vector<Decoded>* out, FrameDecoder* dec) {
  for (size_t i = 0; i < bytes.size(); i += step) {
    size_t n = std::min(step, bytes.size() - i);
    bool ok = dec->feed(reinterpret_cast<const uint8_t*>(bytes.data() + i), n,
                        [&](const FrameHeader& h, const uint8_t* d) {
                          if (!d) out->push_back({h, std::string(), true});
                          else out->push_back({h, std::string(reinterpret_cast<const char*>(d), h.data_len)});
                        });
    if (!ok) return false;
    EXPECT_LE(dec->buffered(), i + n) << "decoder holds more than has arrived";
  }
  return true;
}

void expect_fields(const Json& v, const Decoded& d) {
  EXPECT_EQ(std::to_string(d.h.number_mess), v["number_mess"].str);
  EXPECT_EQ(d.h.connection_key, int32_t(v["connection_key"].num));
  EXPECT_EQ(d.h.topic_key, int32_t(v["topic_key"].num));
  EXPECT_EQ(d.h.flags, uint8_t(v["flags"].num));
  EXPECT_EQ(to_hex(d.data), v["payload_hex"].str);
}

FrameHeader header_of(const Json& v) {
  FrameHeader h;
  h.number_mess = std::stoull(v["number_mess"].str);
  h.connection_key = int32_t(v["connection_key"].num);
  h.topic_key = int32_t(v["topic_key"].num);
  h.flags = uint8_t(v["flags"].num);
  return h;
}

}  // namespace

TEST(FrameCodec, EncodesEveryGoldenFrameByteForByte) {
  ASSERT_FALSE(vectors()["frames"].items.empty());
  for (const Json& v : vectors()["frames"].items) {
    std::string payload = from_hex(v["payload_hex"].str), out;
    encode_frame(out, header_of(v), payload.data(), payload.size());
    EXPECT_EQ(to_hex(out), v["frame_hex"].str) << v["name"].str;
  }
}

TEST(FrameCodec, DecodesEveryGoldenFrameWholeAndByteAtATime) {
  for (const Json& v : vectors()["frames"].items) {
    std::string bytes = from_hex(v["frame_hex"].str);
    for (size_t step : {bytes.size(), size_t(1), size_t(3), size_t(7)}) {
      FrameDecoder dec;
      std::vector<Decoded> got;
      ASSERT_TRUE(decode_all(bytes, step, &got, &dec)) << v["name"].str << ": " << dec.error();
      ASSERT_EQ(got.size(), 1u) << v["name"].str;
      expect_fields(v, got[0]);
      EXPECT_FALSE(dec.mid_frame());
    }
    FrameHeader h;
    const uint8_t* data = nullptr;
    std::string err;
    ASSERT_TRUE(decode_stored_frame(bytes, &h, &data, &err)) << err;
    EXPECT_EQ(std::to_string(h.number_mess), v["number_mess"].str);
  }
}

// Stored frames come back from the store, where anyone with access may have edited them: a
// frame whose prefix or data_len does not match its bytes is refused, never read past its end.
TEST(FrameCodec, RejectsAStoredFrameWhoseLengthsLie) {
  std::string good;
  FrameHeader h;
  h.number_mess = 7;
  encode_frame(good, h, "payload", 7);
  FrameHeader got;
  const uint8_t* data = nullptr;
  std::string err;
  ASSERT_TRUE(decode_stored_frame(good, &got, &data, &err)) << err;
  EXPECT_EQ(got.number_mess, 7u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(data), got.data_len), "payload");
  EXPECT_EQ(stored_frame_number(good), 7u);

  std::string cut = good.substr(0, good.size() - 1);  // prefix says one byte more than there is
  err.clear();
  EXPECT_FALSE(decode_stored_frame(cut, &got, &data, &err));
  EXPECT_NE(err.find("prefix"), std::string::npos) << err;
  EXPECT_EQ(stored_frame_number(cut), 0u);

  std::string overrun = good;  // data_len (bytes 21..24 of the frame) one past the body's end
  overrun[kFrameOverhead - 1] = char(8);
  err.clear();
  EXPECT_FALSE(decode_stored_frame(overrun, &got, &data, &err));
  EXPECT_NE(err.find("overruns"), std::string::npos) << err;
  EXPECT_EQ(stored_frame_number(overrun), 0u);
}

TEST(FrameCodec, DecodesBackToBackStreamAtEverySplit) {
  const Json& stream = vectors()["stream"];
  std::string bytes = from_hex(stream["stream_hex"].str);
  for (size_t step = 1; step <= bytes.size(); ++step) {
    FrameDecoder dec;
    std::vector<Decoded> got;
    ASSERT_TRUE(decode_all(bytes, step, &got, &dec));
    ASSERT_EQ(got.size(), stream["frames"].items.size());
    for (size_t i = 0; i < got.size(); ++i) expect_fields(stream["frames"].items[i], got[i]);
  }
  // And the encoder produces the same stream.
  std::string out;
  for (const Json& f : stream["frames"].items) {
    std::string p = from_hex(f["payload_hex"].str);
    encode_frame(out, header_of(f), p.data(), p.size());
  }
  EXPECT_EQ(to_hex(out), stream["stream_hex"].str);
}

TEST(FrameCodec, RejectsEveryInvalidStream) {
  ASSERT_FALSE(vectors()["invalid"].items.empty());
  for (const Json& v : vectors()["invalid"].items) {
    std::string bytes = from_hex(v["stream_hex"].str);
    for (size_t step : {bytes.size(), size_t(1)}) {
      FrameDecoder dec;
      std::vector<Decoded> got;
      EXPECT_FALSE(decode_all(bytes, step, &got, &dec)) << v["name"].str;
      EXPECT_TRUE(got.empty()) << v["name"].str;
      EXPECT_FALSE(dec.error().empty());
      // Once rejected, the stream stays rejected.
      EXPECT_FALSE(dec.feed(reinterpret_cast<const uint8_t*>("x"), 1, [](const FrameHeader&, const uint8_t*) {}));
    }
  }
}

TEST(FrameCodec, LyingLengthHeaderCostsNothingUntilBytesArrive) {
  // A 1 GiB length followed by a few bytes: nothing near 1 GiB may be allocated.
  std::string bytes = from_hex("3fffffff") + std::string(100, '\0');
  FrameDecoder dec;
  std::vector<Decoded> got;
  ASSERT_TRUE(decode_all(bytes, bytes.size(), &got, &dec));
  EXPECT_TRUE(dec.mid_frame());
  EXPECT_EQ(dec.buffered(), bytes.size());
}

TEST(FrameCodec, AGrowingFrameNeverHoldsMoreThanItsSizeNorFourTimesWhatArrived) {
  // Frames just above a power of two are the case plain doubling gets wrong (16 MiB + 25 bytes
  // would end in a 32 MiB buffer).
  for (size_t payload : {size_t(1) << 20, (size_t(16) << 20) - 25, size_t(16) << 20, size_t(3) << 20}) {
    FrameHeader h;
    h.number_mess = 1;
    std::string frame;
    encode_frame(frame, h, std::string(payload, 'p').data(), payload);
    FrameDecoder dec;
    size_t frames = 0, fed = 0;
    const size_t chunk = 64 * 1024;
    while (fed < frame.size()) {
      size_t n = std::min(chunk, frame.size() - fed);
      ASSERT_TRUE(dec.feed(reinterpret_cast<const uint8_t*>(frame.data()) + fed, n,
                           [&](const FrameHeader&, const uint8_t*) { ++frames; }));
      fed += n;
      if (!dec.mid_frame()) continue;
      EXPECT_LE(dec.reserved(), frame.size()) << "payload " << payload << ", fed " << fed;
      // At most 4x what arrived: the first MiB doubles, the rest comes in chunks that are
      // filled, never copied into bigger ones.
      EXPECT_LE(dec.reserved(), std::max<size_t>(4 * fed, chunk)) << "payload " << payload << ", fed " << fed;
    }
    EXPECT_EQ(frames, 1u) << "payload " << payload;
  }
}

TEST(FrameCodec, AFrameAboveTheMaximumIsSkippedAloneAndTheStreamGoesOn) {
  std::string big(100, 'x'), frame;
  FrameHeader h;
  h.number_mess = 7;
  h.connection_key = 3;
  h.topic_key = 4;
  h.flags = kFlagAtLeastOnce;
  encode_frame(frame, h, big.data(), big.size());
  h.number_mess = 8;
  encode_frame(frame, h, "ok", 2);
  for (size_t step : {frame.size(), size_t(1), size_t(7)}) {
    FrameDecoder small(50);
    std::vector<Decoded> got;
    ASSERT_TRUE(decode_all(frame, step, &got, &small)) << small.error();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_TRUE(got[0].skipped);
    EXPECT_EQ(got[0].h.number_mess, 7u);
    EXPECT_EQ(got[0].h.connection_key, 3);
    EXPECT_EQ(got[0].h.data_len, 100u);
    EXPECT_FALSE(got[1].skipped);
    EXPECT_EQ(got[1].data, "ok");
    EXPECT_FALSE(small.mid_frame());
  }
  FrameDecoder enough(121);
  std::vector<Decoded> got;
  EXPECT_TRUE(decode_all(frame, frame.size(), &got, &enough));
  EXPECT_EQ(got.size(), 2u);
  EXPECT_FALSE(got[0].skipped);
}

TEST(FrameCodec, AnOversizeFrameIsStillValidatedAndItsSkipCountsAsMidFrame) {
  // Its header must still hold together: a data_len that overruns the body is an error.
  std::string bad = from_hex("00000100") + std::string(17, '\0') + from_hex("00001000");
  FrameDecoder small(50);
  std::vector<Decoded> got;
  EXPECT_FALSE(decode_all(bad, 1, &got, &small));
  // Past the protocol's 1 GiB it is not skipped but refused.
  FrameDecoder any(50);
  EXPECT_FALSE(decode_all(from_hex("40000001") + std::string(30, '\0'), 1, &got, &any));
  // While its body is being skipped the stream is mid-frame (the stall timeout applies).
  FrameDecoder skipping(50);
  std::string head = from_hex("00001000") + std::string(17, '\0') + from_hex("00000feb") + "abc";
  EXPECT_TRUE(decode_all(head, head.size(), &got, &skipping));
  EXPECT_TRUE(skipping.mid_frame());
  EXPECT_LE(skipping.buffered(), size_t(0));
}

TEST(FrameCodec, RandomFramesRoundTripThroughRandomSplits) {
  std::mt19937_64 rng(42);
  std::string stream;
  std::vector<Decoded> sent;
  for (int i = 0; i < 500; ++i) {
    FrameHeader h;
    h.number_mess = rng();
    h.connection_key = int32_t(rng());
    h.topic_key = int32_t(rng());
    h.flags = uint8_t(rng() & 3);
    std::string p(1 + rng() % 3000, '\0');
    for (auto& c : p) c = char(rng());
    encode_frame(stream, h, p.data(), p.size());
    h.data_len = uint32_t(p.size());
    sent.push_back({h, p});
  }
  FrameDecoder dec;
  std::vector<Decoded> got;
  for (size_t i = 0; i < stream.size();) {
    size_t n = std::min<size_t>(1 + rng() % 5000, stream.size() - i);
    ASSERT_TRUE(dec.feed(reinterpret_cast<const uint8_t*>(stream.data() + i), n,
                         [&](const FrameHeader& h, const uint8_t* d) {
                           got.push_back({h, std::string(reinterpret_cast<const char*>(d), h.data_len)});
                         }));
    i += n;
  }
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].h.number_mess, sent[i].h.number_mess);
    EXPECT_EQ(got[i].h.connection_key, sent[i].h.connection_key);
    EXPECT_EQ(got[i].h.topic_key, sent[i].h.topic_key);
    EXPECT_EQ(got[i].h.flags, sent[i].h.flags);
    EXPECT_EQ(got[i].data, sent[i].data);
  }
}
