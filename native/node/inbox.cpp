#include "node/inbox.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>

#include "node/arena_pool.hpp"

namespace liner_node {

namespace {

// How long publishing sleeps between checks while it waits for room. Only a bound on how late
// it notices set_closing()/abandon() if a notification were missed; room is signalled at once.
constexpr auto kRoomPoll = std::chrono::milliseconds(100);
// Smallest arena, whatever the cap: below it the per-arena costs would dominate.
constexpr size_t kMinArenaSize = 4096;
// Metadata vectors kept for reuse: about the arenas in flight between the two threads.
constexpr size_t kMaxSpareMeta = 8;

char* allocate(size_t bytes) {
  char* p = static_cast<char*>(std::malloc(bytes));
  if (!p) throw std::bad_alloc();
  return p;
}

}  // namespace

void release_block(char* data, bool pooled) {
  if (pooled)
    arena_pool::put(data);
  else
    std::free(data);
}

Inbox::Inbox(size_t max_pending_bytes, std::function<void()> wake)
    : max_pending_bytes_(max_pending_bytes),
      arena_size_(std::clamp(max_pending_bytes, kMinArenaSize, arena_pool::kBlockSize)),
      wake_(std::move(wake)) {}

Inbox::~Inbox() {
  release_block(filling_.data, filling_.pooled);
  for (size_t i = published_head_; i < published_.size(); ++i)
    release_block(published_[i].data, published_[i].pooled);
}

uint32_t Inbox::name_id(const std::string& name, RecentName& recent) {
  // Messages come in runs from one sender to one topic: a compare instead of a hash per name.
  if (recent.known && recent.name == name) return recent.id;
  recent.id = lookup_id(name);
  recent.name = name;
  recent.known = true;
  return recent.id;
}

uint32_t Inbox::lookup_id(const std::string& name) {
  auto it = ids_.find(name);
  if (it != ids_.end()) return it->second;
  uint32_t id = uint32_t(ids_.size());
  ids_.emplace(name, id);
  filling_.new_names.push_back(name);
  return id;
}

void Inbox::start_arena(size_t size) {
  if (size > arena_size_ / 2) {  // big ones get their own
    filling_.capacity = size;
    filling_.pooled = false;
    filling_.data = allocate(size);
  } else {
    filling_.capacity = arena_size_;
    filling_.pooled = arena_size_ == arena_pool::kBlockSize;
    filling_.data = filling_.pooled ? arena_pool::get() : allocate(arena_size_);
  }
  filling_.meta.swap(next_meta_);
}

void Inbox::receive(const std::string& to, const std::string& from, const char* data, size_t size) {
  if (abandoned_.load(std::memory_order_relaxed)) {
    dropped_unpublished_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (filling_.data && filling_.capacity - filling_.used < size) publish();
  if (!filling_.data) start_arena(size);
  if (size) std::memcpy(filling_.data + filling_.used, data, size);
  filling_.meta.push_back(uint32_t(filling_.used));
  filling_.meta.push_back(uint32_t(size));
  filling_.meta.push_back(name_id(to, recent_to_));
  filling_.meta.push_back(name_id(from, recent_from_));
  filling_.used += size;
}

void Inbox::flush() {
  if (filling_.meta.empty()) return;
  // A sparse arena is handed over at its used size (glibc shrinks in place), so a trickle of
  // small messages does not pin a whole block each; a fuller one stays a pool block.
  if (filling_.used < filling_.capacity / 2) {
    if (char* p = static_cast<char*>(std::realloc(filling_.data, filling_.used ? filling_.used : 1))) {
      filling_.data = p;
      filling_.capacity = filling_.used;
      filling_.pooled = false;
    }
  }
  publish();
}

void Inbox::publish() {
  Arena arena = std::move(filling_);
  filling_ = Arena();
  size_t messages = arena.meta.size() / 4;
  std::unique_lock<std::mutex> lock(mu_);
  // An arena larger than the cap still goes through when nothing else is waiting.
  while (!closing_ && !abandoned_ && stats_.pending_bytes > 0 &&
         stats_.pending_bytes + arena.used > max_pending_bytes_) {
    ++stats_.blocked;
    room_.wait_for(lock, kRoomPoll);
  }
  if (!spare_meta_.empty()) {
    next_meta_ = std::move(spare_meta_.back());
    spare_meta_.pop_back();
  }
  if (abandoned_) {
    stats_.dropped += messages;
    release_block(arena.data, arena.pooled);
    return;
  }
  stats_.messages += messages;
  stats_.bytes += arena.used;
  stats_.pending_bytes += arena.used;
  stats_.max_pending_bytes = std::max(stats_.max_pending_bytes, stats_.pending_bytes);
  published_.push_back(std::move(arena));
  if (js_idle_) wake_locked();
}

void Inbox::wake_locked() {
  if (wake_pending_ || abandoned_) return;
  wake_pending_ = true;
  ++stats_.wakes;
  wake_();
}

void Inbox::status(const liner::StatusEvent& event) {
  std::lock_guard<std::mutex> lock(mu_);
  if (abandoned_) return;
  if (events_.size() >= kMaxEvents) {
    ++stats_.events_dropped;
    return;
  }
  events_.push_back(event);
  wake_locked();
}

bool Inbox::take(Arena* out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (out->meta.capacity() > 0 && spare_meta_.size() < kMaxSpareMeta) {
    out->meta.clear();
    spare_meta_.push_back(std::move(out->meta));
  }
  if (published_head_ == published_.size()) {
    published_.clear();
    published_head_ = 0;
    js_idle_ = true;
    return false;
  }
  js_idle_ = false;
  *out = std::move(published_[published_head_++]);
  stats_.pending_bytes -= out->used;
  ++stats_.arenas;
  room_.notify_all();
  return true;
}

void Inbox::take_events(std::vector<liner::StatusEvent>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  wake_pending_ = false;
  out->swap(events_);
  events_.clear();
}

void Inbox::set_closing(bool closing) {
  std::lock_guard<std::mutex> lock(mu_);
  closing_ = closing;
  room_.notify_all();
}

void Inbox::abandon() {
  std::lock_guard<std::mutex> lock(mu_);
  abandoned_ = true;
  room_.notify_all();
}

InboxStats Inbox::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  InboxStats out = stats_;
  out.dropped += dropped_unpublished_.load(std::memory_order_relaxed);
  return out;
}

}  // namespace liner_node
