// The one log sink of the library: one line per event, prefixed "liner: ".
// stderr by default; the C API can replace it process-wide.
#pragma once
#include <string>

namespace liner {

using LogSink = void (*)(const char* line, void* udata);

void set_log_sink(LogSink sink, void* udata);  // nullptr restores stderr
void log_line(const std::string& message);

}  // namespace liner
