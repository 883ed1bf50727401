// The unit in which cores hand memory to each other. Data one thread writes often and another
// reads often goes on a line of its own (alignas(kCacheLine)): when unrelated fields share the
// line, every write by one core makes the other's next read of any of them a miss.
// std::hardware_destructive_interference_size says the same, but GCC warns that its value may
// differ between compilers and so between the core and a program built against it.
#pragma once
#include <cstddef>

namespace liner {

constexpr std::size_t kCacheLine = 64;

}  // namespace liner
