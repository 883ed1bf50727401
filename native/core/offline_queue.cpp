#include "core/offline_queue.hpp"

#include <algorithm>

#include "core/frame.hpp"

namespace liner {

Status OfflineQueue::open(Store& store) {
  uint64_t length = 0;
  Status s = store.queue_length(ck_, &length);
  if (!s) return s;
  forget();
  unread_ = length;
  may_have_backlog_ = length > 0;
  return s;
}

void OfflineQueue::forget() {
  head_.clear();
  unread_ = after_ = 0;
}

Status OfflineQueue::push(Store& store, const std::vector<const std::string*>& frames, const NumberRanges& handover) {
  if (frames.empty()) return Status();
  Status s = store.push_messages(ck_, frames, handover);
  // Even a failed push may have stored some (a batch went through before the error).
  may_have_backlog_ = true;
  return s;
}

Status OfflineQueue::read_next(Store& store, uint64_t max, const FrameFn& fn) {
  uint64_t count = std::min(max, unread_);
  if (count == 0) return Status();
  std::vector<QueuedFrame> frames;
  Status s = store.read_messages_after(ck_, after_, count, &frames);
  if (!s) return s;
  // Fewer than the length promised: some were removed meanwhile (handed over), none is left.
  unread_ = frames.size() < count ? 0 : unread_ - count;
  for (auto& f : frames) {
    uint64_t number = stored_frame_number(f.frame);
    after_ = f.place;
    head_.push_back(Read{f.place, number});
    fn(std::move(f.frame), number);
  }
  return s;
}

bool OfflineQueue::pop(Store& store, uint64_t acked, uint64_t written, Status* error) {
  uint64_t done = 0;
  while (done < head_.size() && done < written && head_[done].number <= acked) ++done;
  if (done == 0) return true;
  // The highest place among them: Redis places are numbers, which a push made again repeats.
  uint64_t through = 0;
  for (uint64_t i = 0; i < done; ++i) through = std::max(through, head_[i].place);
  bool empty = false;
  Status s = store.drop_messages_through(ck_, through, &empty);
  if (s) {
    head_.erase(head_.begin(), head_.begin() + long(done));
    if (empty) {  // what else was read is gone too (handed over)
      forget();
      may_have_backlog_ = false;
    }
    return true;
  }
  // It failed (a time-out: it may or may not have run).
  *error = s;
  forget();
  return false;
}

Status OfflineQueue::reread(Store& store) {
  forget();  // even when the length cannot be read: the view is wrong either way
  return open(store);
}

}  // namespace liner
