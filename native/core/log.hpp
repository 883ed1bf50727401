// The one log sink of the library: one line per event, prefixed "liner: ".
// stderr by default; the C API can replace it process-wide.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace liner {

using LogSink = void (*)(const char* line, void* udata);

void set_log_sink(LogSink sink, void* udata);  // nullptr restores stderr
void log_line(const std::string& message);

// Counts an event that can repeat at wire speed (a hostile peer, a resource limit): a line is
// due for the first one and then at most once per `every`, carrying the count since the last
// line. The owner builds the line when due() (with its state of that moment) and may also
// check due() from a timer, so that a count left over is written without a new event.
// Not thread-safe: one per thread that counts the event.
struct LogThrottle {
  explicit LogThrottle(std::chrono::steady_clock::duration every = std::chrono::seconds(5)) : every(every) {}
  std::chrono::steady_clock::duration every;
  uint64_t pending = 0;
  bool logged = false;
  std::chrono::steady_clock::time_point last{};

  bool due(std::chrono::steady_clock::time_point now) const {
    return pending > 0 && (!logged || now - last >= every);
  }
  // The count to report, and the throttle starts over.
  uint64_t take(std::chrono::steady_clock::time_point now) {
    logged = true;
    last = now;
    uint64_t n = pending;
    pending = 0;
    return n;
  }
};

// A LogThrottle whose line is the event's own message: the first is logged at once, later
// ones within `every` are counted into the next line.
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::steady_clock::duration every) : throttle_(every) {}
  void log(const std::string& message) {
    ++throttle_.pending;
    auto now = std::chrono::steady_clock::now();
    if (!throttle_.due(now)) return;
    uint64_t n = throttle_.take(now);
    log_line(n > 1 ? message + " (and " + std::to_string(n - 1) + " more like it since the last line)" : message);
  }

 private:
  LogThrottle throttle_;
};

}  // namespace liner
