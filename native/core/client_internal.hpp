// Internal to the client (client*.cpp): what its files share.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>

#include "core/status.hpp"

namespace liner {

// Bumped whenever any client's route cache changes (or a client goes away). A thread's
// remembered route for send_to (client_send.cpp) is used only while this has not moved.
extern std::atomic<uint64_t> g_route_epoch;

inline void routes_changed() { g_route_epoch.fetch_add(1, std::memory_order_release); }

inline Status not_running(const char* action) {
  return Status(Err::not_running, std::string("you can't ") + action +
                                      " because the client is not running (call run first)");
}

}  // namespace liner
