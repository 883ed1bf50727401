// Process-wide limits, settable at run time through the C API (liner_broker 1.4 semantics:
// lnr_set_max_message_size and friends). A client option of 0 means "use these".
//
// The core owns their ranges (kLimitSpecs) and the one message that refuses a value out of
// range, so the same bad value gives the same error in C, Python and TypeScript: bindings pass
// values through set_limit / set_limits / check_limit_option and only refuse what cannot be a
// size at all (a negative number, a string).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/compress.hpp"
#include "core/frame.hpp"
#include "core/status.hpp"

namespace liner {

struct Limits {
  // Largest payload accepted by send and by the listener. The default keeps the frame body
  // within liner_broker 1.3.1's 1 GiB bound, so its peers accept every frame we send.
  std::atomic<size_t> max_message_size{kDefaultMaxBodySize - kBodyHeaderSize};
  std::atomic<size_t> compress_threshold{kDefaultCompressThreshold};
  std::atomic<size_t> max_send_queue{0};  // messages per peer; 0 = no count limit
  std::atomic<size_t> max_send_queue_bytes{size_t(8) << 20};  // per peer, always enforced
  // How long creating or running a client keeps trying a store that does not answer (Redis
  // still starting: containers start in any order). 0: fail at once, as liner_broker does.
  std::atomic<size_t> store_wait_ms{0};
  // How long a running peer's directory entries outlive its last lease renewal (it renews
  // every second): a peer that crashed is removed about this long after. Read at each renewal.
  std::atomic<size_t> lease_ms{7000};
};

// Leases shorter than this could lapse between two renewals of a live peer (1 s apart, plus a
// slow store's 2 s timeout); longer than an hour leaves dead peers listed for too long.
constexpr size_t kMinLeaseMs = 3000;
constexpr size_t kMaxLeaseMs = 3600 * 1000;

// The longest store wait accepted (an hour): a wait is for a store that is starting.
constexpr size_t kMaxStoreWaitMs = 3600 * 1000;

// Constant-initialised (every member has a constexpr constructor), so reading it needs no
// function call or init guard: the send path reads it for every message.
inline Limits g_limits;
inline Limits& limits() { return g_limits; }

enum class LimitId { max_message_size, compress_threshold, max_send_queue, max_send_queue_bytes, store_wait_ms, lease_ms };
constexpr size_t kLimitCount = 6;

// One limit: its range (inclusive; max SIZE_MAX: no upper bound) and the value it sets.
struct LimitSpec {
  LimitId id;
  const char* name;      // in the words of the messages: "max message size"
  const char* unit_one;  // "byte": the unit of a quantity of 1
  const char* units;     // "bytes"
  size_t min;
  size_t max;
  std::atomic<size_t> Limits::*value;
};

// Indexed by LimitId.
extern const LimitSpec kLimitSpecs[kLimitCount];
inline const LimitSpec& limit_spec(LimitId id) { return kLimitSpecs[size_t(id)]; }

// OK, or invalid_arg "max message size must be from 1 to 1073741803 bytes, not 0".
Status check_limit(LimitId id, size_t value);
// A client option of the limit: 0 ("the process-wide value") or a value check_limit accepts.
Status check_limit_option(LimitId id, size_t value);

struct LimitValue {
  LimitId id;
  size_t value;
};
// Checks every value, then sets them all: a refused call changes nothing and says why for the
// first value out of range.
Status set_limits(const LimitValue* values, size_t count);
inline Status set_limit(LimitId id, size_t value) {
  LimitValue v{id, value};
  return set_limits(&v, 1);
}
inline size_t get_limit(LimitId id) { return (limits().*limit_spec(id).value).load(); }

// `option` if set, else the process-wide value.
inline size_t effective(size_t option, const std::atomic<size_t>& global) {
  return option ? option : global.load(std::memory_order_relaxed);
}

}  // namespace liner
