// The ranges of the process-wide limits (limits.hpp): the one place they are written down.
#include "core/limits.hpp"

#include <string>

namespace liner {

constexpr LimitSpec kLimitSpecs[kLimitCount] = {
    // Frames must fit liner_broker 1.3.1's 1 GiB body bound, header included.
    {LimitId::max_message_size, "max message size", "byte", "bytes", 1, kDefaultMaxBodySize - kBodyHeaderSize,
     &Limits::max_message_size},
    {LimitId::compress_threshold, "compress threshold", "byte", "bytes", 1, SIZE_MAX, &Limits::compress_threshold},
    // 0: no count limit.
    {LimitId::max_send_queue, "max send queue", "message", "messages", 0, SIZE_MAX, &Limits::max_send_queue},
    // Always enforced: 0 would refuse every send.
    {LimitId::max_send_queue_bytes, "max send queue bytes", "byte", "bytes", 1, SIZE_MAX,
     &Limits::max_send_queue_bytes},
    {LimitId::store_wait_ms, "store wait", "ms", "ms", 0, kMaxStoreWaitMs, &Limits::store_wait_ms},
    {LimitId::lease_ms, "lease", "ms", "ms", kMinLeaseMs, kMaxLeaseMs, &Limits::lease_ms},
};

namespace {

constexpr bool indexed_by_id() {
  for (size_t i = 0; i < kLimitCount; ++i)
    if (size_t(kLimitSpecs[i].id) != i) return false;
  return true;
}
static_assert(indexed_by_id(), "kLimitSpecs must be in LimitId order");

std::string quantity(size_t n, const LimitSpec& spec) {
  return std::to_string(n) + " " + (n == 1 ? spec.unit_one : spec.units);
}

std::string range_of(const LimitSpec& spec) {
  if (spec.max == SIZE_MAX) return "at least " + quantity(spec.min, spec);
  return "from " + std::to_string(spec.min) + " to " + quantity(spec.max, spec);
}

bool in_range(const LimitSpec& spec, size_t value) { return value >= spec.min && value <= spec.max; }

}  // namespace

Status check_limit(LimitId id, size_t value) {
  const LimitSpec& spec = limit_spec(id);
  if (in_range(spec, value)) return Status();
  return Status(Err::invalid_arg,
                std::string(spec.name) + " must be " + range_of(spec) + ", not " + std::to_string(value));
}

Status check_limit_option(LimitId id, size_t value) {
  const LimitSpec& spec = limit_spec(id);
  if (value == 0 || in_range(spec, value)) return Status();
  return Status(Err::invalid_arg, std::string(spec.name) + " must be " + range_of(spec) +
                                      ", or 0 for the process-wide value, not " + std::to_string(value));
}

Status set_limits(const LimitValue* values, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    Status s = check_limit(values[i].id, values[i].value);
    if (!s) return s;
  }
  for (size_t i = 0; i < count; ++i) (limits().*limit_spec(values[i].id).value).store(values[i].value);
  return Status();
}

}  // namespace liner
