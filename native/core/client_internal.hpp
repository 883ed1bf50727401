// Internal to the client (client*.cpp): what its files share.
#pragma once
#include <string>

#include "core/status.hpp"

namespace liner {

inline Status not_running(const char* action) {
  return Status(Err::not_running, std::string("you can't ") + action +
                                      " because the client is not running (call run first)");
}

}  // namespace liner
