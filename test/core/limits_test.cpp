// The ranges of the process-wide limits (core/limits.cpp): each limit's bounds are accepted and
// the values just outside refused with the one message every face shows; a refused set_limits
// changes nothing; a client option of 0 ("the process-wide value") is always accepted.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/limits.hpp"

using namespace liner;

namespace {

// Puts every limit back as it was when the test started.
class LimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (size_t i = 0; i < kLimitCount; ++i) saved_.push_back(get_limit(LimitId(i)));
  }
  void TearDown() override {
    for (size_t i = 0; i < kLimitCount; ++i) (limits().*kLimitSpecs[i].value).store(saved_[i]);
  }
  std::vector<size_t> saved_;
};

struct Case {
  LimitId id;
  size_t value;
  const char* message;  // "" for a value in range
};

const Case kCases[] = {
    {LimitId::max_message_size, 1, ""},
    {LimitId::max_message_size, (size_t(1) << 30) - 21, ""},
    {LimitId::max_message_size, 0, "max message size must be from 1 to 1073741803 bytes, not 0"},
    {LimitId::max_message_size, (size_t(1) << 30) - 20,
     "max message size must be from 1 to 1073741803 bytes, not 1073741804"},
    {LimitId::max_message_size, SIZE_MAX, "max message size must be from 1 to 1073741803 bytes, not 18446744073709551615"},
    {LimitId::compress_threshold, 1, ""},
    {LimitId::compress_threshold, SIZE_MAX, ""},
    {LimitId::compress_threshold, 0, "compress threshold must be at least 1 byte, not 0"},
    {LimitId::max_send_queue, 0, ""},  // no count limit
    {LimitId::max_send_queue, SIZE_MAX, ""},
    {LimitId::max_send_queue_bytes, 1, ""},
    {LimitId::max_send_queue_bytes, 0, "max send queue bytes must be at least 1 byte, not 0"},
    {LimitId::store_wait_ms, 0, ""},
    {LimitId::store_wait_ms, 3600000, ""},
    {LimitId::store_wait_ms, 3600001, "store wait must be from 0 to 3600000 ms, not 3600001"},
    {LimitId::lease_ms, 3000, ""},
    {LimitId::lease_ms, 3600000, ""},
    {LimitId::lease_ms, 2999, "lease must be from 3000 to 3600000 ms, not 2999"},
    {LimitId::lease_ms, 3600001, "lease must be from 3000 to 3600000 ms, not 3600001"},
};

}  // namespace

TEST_F(LimitsTest, EachValueIsSetOrRefusedWithTheCoresMessage) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(std::string(limit_spec(c.id).name) + " = " + std::to_string(c.value));
    size_t before = get_limit(c.id);
    Status s = set_limit(c.id, c.value);
    if (*c.message) {
      EXPECT_EQ(s.code, Err::invalid_arg);
      EXPECT_EQ(s.message, c.message);
      EXPECT_EQ(get_limit(c.id), before);
    } else {
      EXPECT_TRUE(s.ok()) << s.message;
      EXPECT_EQ(get_limit(c.id), c.value);
    }
    EXPECT_EQ(check_limit(c.id, c.value).message, c.message);
  }
}

TEST_F(LimitsTest, TheTableSetsTheLimitsItNames) {
  ASSERT_TRUE(set_limit(LimitId::max_message_size, 1000).ok());
  ASSERT_TRUE(set_limit(LimitId::compress_threshold, 10).ok());
  ASSERT_TRUE(set_limit(LimitId::max_send_queue, 7).ok());
  ASSERT_TRUE(set_limit(LimitId::max_send_queue_bytes, 4096).ok());
  ASSERT_TRUE(set_limit(LimitId::store_wait_ms, 5).ok());
  ASSERT_TRUE(set_limit(LimitId::lease_ms, 4000).ok());
  const Limits& l = limits();
  EXPECT_EQ(l.max_message_size.load(), 1000u);
  EXPECT_EQ(l.compress_threshold.load(), 10u);
  EXPECT_EQ(l.max_send_queue.load(), 7u);
  EXPECT_EQ(l.max_send_queue_bytes.load(), 4096u);
  EXPECT_EQ(l.store_wait_ms.load(), 5u);
  EXPECT_EQ(l.lease_ms.load(), 4000u);
}

TEST_F(LimitsTest, OneValueOutOfRangeChangesNothing) {
  size_t threshold = get_limit(LimitId::compress_threshold);
  size_t message = get_limit(LimitId::max_message_size);
  LimitValue values[] = {{LimitId::compress_threshold, threshold + 1}, {LimitId::max_message_size, 0}};
  Status s = set_limits(values, 2);
  EXPECT_EQ(s.message, "max message size must be from 1 to 1073741803 bytes, not 0");
  EXPECT_EQ(get_limit(LimitId::compress_threshold), threshold);
  EXPECT_EQ(get_limit(LimitId::max_message_size), message);
}

TEST(LimitOption, ZeroMeansTheProcessWideValueAndTheRestIsTheLimitsRange) {
  for (size_t i = 0; i < kLimitCount; ++i) EXPECT_TRUE(check_limit_option(LimitId(i), 0).ok());
  EXPECT_TRUE(check_limit_option(LimitId::max_message_size, (size_t(1) << 30) - 21).ok());
  Status s = check_limit_option(LimitId::max_message_size, size_t(1) << 30);
  EXPECT_EQ(s.code, Err::invalid_arg);
  EXPECT_EQ(s.message,
            "max message size must be from 1 to 1073741803 bytes, or 0 for the process-wide value, not 1073741824");
  EXPECT_EQ(check_limit_option(LimitId::lease_ms, 2999).message,
            "lease must be from 3000 to 3600000 ms, or 0 for the process-wide value, not 2999");
}
