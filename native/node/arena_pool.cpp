#include "node/arena_pool.hpp"

#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

namespace liner_node::arena_pool {

namespace {

struct Pool {
  std::mutex mu;
  std::vector<char*> free_blocks;
};

// Never destroyed: finalizers of Buffers may still run while the process exits.
Pool& pool() {
  static Pool* p = [] {
    auto* made = new Pool;
    made->free_blocks.reserve(kMaxPooled);
    return made;
  }();
  return *p;
}

}  // namespace

char* get() {
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mu);
    if (!p.free_blocks.empty()) {
      char* block = p.free_blocks.back();
      p.free_blocks.pop_back();
      return block;
    }
  }
  char* block = static_cast<char*>(std::malloc(kBlockSize));
  if (!block) throw std::bad_alloc();
  return block;
}

void put(char* block) {
  if (!block) return;
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mu);
    if (p.free_blocks.size() < kMaxPooled) {
      p.free_blocks.push_back(block);
      return;
    }
  }
  std::free(block);
}

}  // namespace liner_node::arena_pool
