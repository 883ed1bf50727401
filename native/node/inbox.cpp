#include "node/inbox.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>

namespace liner_node {

namespace {

// How long receive() sleeps between checks while it waits for room. Only a bound on how late
// it notices set_closing()/abandon() if a notification were missed; room is signalled at once.
constexpr auto kRoomPoll = std::chrono::milliseconds(100);

char* allocate(size_t bytes) {
  char* p = static_cast<char*>(std::malloc(bytes));
  if (!p) throw std::bad_alloc();
  return p;
}

}  // namespace

Inbox::Inbox(size_t max_pending_bytes, std::function<void()> wake)
    : max_pending_bytes_(max_pending_bytes), wake_(std::move(wake)) {}

Inbox::~Inbox() {
  std::free(current_.data);
  for (size_t i = sealed_head_; i < sealed_.size(); ++i) std::free(sealed_[i].data);
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
  new_names_.push_back(name);
  return id;
}

void Inbox::seal_current() {
  if (current_.used == 0) return;
  // A partly filled arena is handed over at its used size: give the rest back to malloc
  // (glibc shrinks in place), so a trickle of small messages does not pin 64 KiB each.
  if (current_.used < current_.capacity) {
    if (char* p = static_cast<char*>(std::realloc(current_.data, current_.used))) current_.data = p;
    current_.capacity = current_.used;
  }
  sealed_.push_back(std::move(current_));
  current_ = Arena();
}

void Inbox::wake_locked() {
  if (wake_pending_ || abandoned_) return;
  wake_pending_ = true;
  ++stats_.wakes;
  wake_();
}

void Inbox::receive(const std::string& to, const std::string& from, const char* data, size_t size) {
  std::unique_lock<std::mutex> lock(mu_);
  // One message larger than the cap still goes through when nothing else is waiting.
  while (!closing_ && !abandoned_ && stats_.pending_bytes > 0 &&
         stats_.pending_bytes + size > max_pending_bytes_) {
    ++stats_.blocked;
    room_.wait_for(lock, kRoomPoll);
  }
  if (abandoned_) {
    ++stats_.dropped;
    return;
  }
  if (current_.capacity - current_.used < size) {
    seal_current();
    current_.capacity = size > kArenaSize / 2 ? size : kArenaSize;  // big ones get their own
    current_.data = allocate(current_.capacity);
    current_.meta.reserve(current_.capacity == kArenaSize ? 4096 : 4);
  }
  std::memcpy(current_.data + current_.used, data, size);
  current_.meta.push_back(uint32_t(current_.used));
  current_.meta.push_back(uint32_t(size));
  current_.meta.push_back(name_id(to, recent_to_));
  current_.meta.push_back(name_id(from, recent_from_));
  current_.used += size;
  ++stats_.messages;
  stats_.bytes += size;
  stats_.pending_bytes += size;
  if (stats_.pending_bytes > stats_.max_pending_bytes) stats_.max_pending_bytes = stats_.pending_bytes;
  if (js_idle_) wake_locked();
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

bool Inbox::take(Arena* out, std::vector<std::string>* new_names) {
  std::lock_guard<std::mutex> lock(mu_);
  if (sealed_head_ == sealed_.size()) {
    sealed_.clear();
    sealed_head_ = 0;
    seal_current();
  }
  if (sealed_head_ == sealed_.size()) {
    js_idle_ = true;
    return false;
  }
  js_idle_ = false;
  *out = std::move(sealed_[sealed_head_++]);
  new_names->swap(new_names_);
  new_names_.clear();
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
  return stats_;
}

}  // namespace liner_node
