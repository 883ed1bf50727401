// The at-least-once ack window, shared by both ends: the listener (Delivery) writes its ack
// early once this much was delivered without one, and the sender polls for it as often while
// it holds that much unacknowledged. Defined once because the two only work together: a
// sender polling slower than the listener flushes holds memory for nothing, faster polls an
// ack that has not moved.
//
// A stream is acknowledged every ~1,000 messages or 1 MiB, at most every 0.5 ms: the sender
// holds each message until it sees the ack, and a short window keeps that memory small, warm in
// cache and its buffers reusable. A 2-3 GB/s stream fills the default 8 MiB send queue in about
// 3 ms, so its acks must come round well within that. One SET and one GET per window is noise
// next to the deliveries (~2k of each per second for a streaming pair).
#pragma once
#include <chrono>
#include <cstdint>

namespace liner {

constexpr uint64_t kAckWindowMessages = 1024;
// ... or this many payload bytes: big messages fill a sender's queue long before 1,024 of them
// are in flight.
constexpr uint64_t kAckWindowBytes = uint64_t(1) << 20;
constexpr auto kAckWindowGap = std::chrono::microseconds(500);

}  // namespace liner
