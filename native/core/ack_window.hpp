// The at-least-once ack window, shared by both ends: the listener (Delivery) writes its ack
// early once this much was delivered without one, and the sender polls for it as often while
// it holds that much unacknowledged. Defined once because the two only work together: a
// sender polling slower than the listener flushes holds memory for nothing, faster polls an
// ack that has not moved.
//
// A stream is acknowledged every ~4,096 messages or 4 MiB, at most every 0.5 ms. A 2-3 GB/s
// stream fills the default 8 MiB send queue in about 3 ms, so its acks must come round well
// within that; but each ack is a Redis write by the listener and a read by the sender that wake
// redis-server on cores the stream already keeps busy. Measured on 2 cores, 1 KiB pair,
// at-least-once, 6 interleaved rounds of 1M messages: a window of 1,024 messages / 1 MiB,
// 2.05M msg/s; 4,096 / 4 MiB, 2.44M. The window is also how many messages a listener that
// dies may deliver again.
//
// A sender whose queue cap is below the window stops before the window fills, and waits for an
// ack the window never triggers: so the listener also writes one once the stream has paused for
// kAckIdleGap. After a quarter window (kAckPrompt*) it does so at once, and a sender holding that
// much with nothing left to write polls every kAckWindowGap; below that, at most every
// kAckIdleFlushGap, which bounds the Redis writes of a trickle, and a sender under pressure polls
// at that period. (Before the pause rule a sender capped at 256 KiB moved 250 messages of 1 KiB
// a second, one cap per periodic ack; now about 12,000.)
#pragma once
#include <chrono>
#include <cstdint>

namespace liner {

constexpr uint64_t kAckWindowMessages = 4096;
// ... or this many payload bytes: big messages fill a sender's queue long before 4,096 of them
// are in flight.
constexpr uint64_t kAckWindowBytes = uint64_t(4) << 20;
constexpr auto kAckWindowGap = std::chrono::microseconds(500);

constexpr uint64_t kAckPromptMessages = kAckWindowMessages / 4;
constexpr uint64_t kAckPromptBytes = kAckWindowBytes / 4;

// Whether this much unacknowledged reaches a window / a quarter window (either measure).
constexpr bool reaches_ack_window(uint64_t messages, uint64_t bytes) {
  return messages >= kAckWindowMessages || bytes >= kAckWindowBytes;
}
constexpr bool reaches_ack_prompt(uint64_t messages, uint64_t bytes) {
  return messages >= kAckPromptMessages || bytes >= kAckPromptBytes;
}

constexpr auto kAckIdleGap = std::chrono::milliseconds(1);
constexpr auto kAckIdleFlushGap = std::chrono::milliseconds(20);

}  // namespace liner
