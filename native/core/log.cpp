#include "core/log.hpp"

#include <cstdio>
#include <mutex>

namespace liner {
namespace {
std::mutex g_mu;
LogSink g_sink = nullptr;
void* g_udata = nullptr;
}  // namespace

void set_log_sink(LogSink sink, void* udata) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_sink = sink;
  g_udata = udata;
}

void log_line(const std::string& message) {
  std::string line = "liner: " + message;
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_sink) {
    g_sink(line.c_str(), g_udata);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

}  // namespace liner
