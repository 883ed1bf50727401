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

// One log line per `every` for an event that can repeat at wire speed (a hostile peer, a
// resource limit): the first occurrence is logged at once, later ones are counted and the
// count goes into the next line. Not thread-safe: one per thread that logs the event.
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::steady_clock::duration every) : every_(every) {}
  void log(const std::string& message) {
    auto now = std::chrono::steady_clock::now();
    if (logged_once_ && now - last_ < every_) {
      ++suppressed_;
      return;
    }
    std::string line = message;
    if (suppressed_) line += " (and " + std::to_string(suppressed_) + " more like it since the last line)";
    log_line(line);
    logged_once_ = true;
    last_ = now;
    suppressed_ = 0;
  }

 private:
  std::chrono::steady_clock::duration every_;
  std::chrono::steady_clock::time_point last_{};
  bool logged_once_ = false;
  uint64_t suppressed_ = 0;
};

}  // namespace liner
