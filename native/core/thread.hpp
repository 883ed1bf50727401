// Starting the core's threads: one place that turns a failed start into a Status and names
// the thread (visible in top -H, gdb and /proc/<pid>/task/*/comm).
#pragma once
#include <pthread.h>

#include <string>
#include <thread>
#include <utility>

#include "core/status.hpp"

namespace liner {

template <class Body>
Status start_thread(std::thread* thread, const char* name, Body&& body) {
  try {
    *thread = std::thread(std::forward<Body>(body));
  } catch (const std::exception& e) {
    return Status(Err::startup, std::string(name) + " thread: " + e.what());
  }
  pthread_setname_np(thread->native_handle(), name);  // at most 15 characters
  return Status();
}

}  // namespace liner
