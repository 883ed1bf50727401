// Blocks of arena memory (kBlockSize bytes) that JS let go of, kept for the next arenas.
//
// Every arena the delivery thread fills becomes a Buffer on the JS thread; when V8 collects
// that Buffer, its block comes back here instead of to malloc. A stream then cycles through a
// handful of warm blocks: no malloc/free per arena, no heap trimming, and none of the page
// faults that memory fresh from the kernel costs on its first write (a large share of the
// delivery cost at 1 KiB messages before this pool).
//
// One pool per process, shared by every client and worker thread, so the blocks it keeps are
// bounded once (kMaxPooled). Thread-safe: blocks are taken on delivery threads and returned
// wherever V8 runs a Buffer's finalizer.
#pragma once
#include <cstddef>

namespace liner_node::arena_pool {

constexpr size_t kBlockSize = 64 * 1024;
constexpr size_t kMaxPooled = 64;  // 4 MiB kept at most

// A block of kBlockSize bytes. Throws std::bad_alloc when memory is out.
char* get();
// Gives back a block from get(); freed when the pool is full.
void put(char* block);

}  // namespace liner_node::arena_pool
