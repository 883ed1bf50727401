// Error codes and the Status value every fallible core operation returns.
// The numbers are liner_broker 1.4's LNR_ERR_* values, so the C API passes them through.
#pragma once
#include <string>
#include <utility>

namespace liner {

enum class Err : int {
  ok = 0,
  not_running = 1,
  already_running = 2,
  self_topic = 3,
  internal_topic = 4,
  no_addr = 5,
  bind = 6,
  store = 7,
  invalid_arg = 8,
  clear_while_running = 9,
  startup = 10,
  busy = 11,
};

struct Status {
  Err code = Err::ok;
  std::string message;

  Status() = default;
  Status(Err c, std::string m) : code(c), message(std::move(m)) {}
  bool ok() const { return code == Err::ok; }
  explicit operator bool() const { return ok(); }
};

}  // namespace liner
