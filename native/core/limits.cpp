#include "core/limits.hpp"

namespace liner {

Limits& limits() {
  static Limits instance;
  return instance;
}

}  // namespace liner
