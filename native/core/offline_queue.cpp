#include "core/offline_queue.hpp"

#include <algorithm>

#include "core/frame.hpp"

namespace liner {

Status OfflineQueue::open(Store& store) {
  uint64_t length = 0;
  Status s = store.queue_length(ck_, &length);
  if (!s) return s;
  forget();
  total_ = length;
  may_have_backlog_ = length > 0;
  return s;
}

void OfflineQueue::forget() {
  head_.clear();
  read_ = total_ = 0;
}

Status OfflineQueue::push(Store& store, const std::vector<const std::string*>& frames, const NumberRanges& handover) {
  if (frames.empty()) return Status();
  Status s = store.push_messages(ck_, frames, handover);
  // Even a failed push may have stored some (a batch went through before the error).
  may_have_backlog_ = true;
  return s;
}

OfflineQueue::Read OfflineQueue::read_next(Store& store, uint64_t max, const FrameFn& fn, Status* error) {
  uint64_t count = std::min(max, total_ - read_);
  if (count == 0) return Read::ok;
  std::vector<std::string> frames;
  bool overlap = read_ > 0;
  Status s = store.read_messages(ck_, read_ - overlap, count + overlap, &frames);
  if (!s) {
    *error = s;
    return Read::failed;
  }
  if (frames.size() <= size_t(overlap) || (overlap && stored_frame_number(frames.front()) != head_.back())) {
    forget();  // shorter than it was, or shifted: positions are no longer what we think
    return Read::moved;
  }
  for (size_t i = overlap; i < frames.size(); ++i) {
    uint64_t number = stored_frame_number(frames[i]);
    ++read_;
    head_.push_back(number);
    fn(std::move(frames[i]), number);
  }
  return Read::ok;
}

bool OfflineQueue::pop(Store& store, uint64_t acked, uint64_t written, Status* error) {
  uint64_t done = 0;
  while (done < head_.size() && done < written && head_[done] <= acked) ++done;
  if (done == 0) return true;
  uint64_t popped = 0;
  Status s = store.pop_acknowledged(ck_, done, head_[done - 1], acked, &popped);
  if (s && popped == done) {
    head_.erase(head_.begin(), head_.begin() + long(done));
    read_ -= done;
    total_ -= done;
    if (total_ == 0) may_have_backlog_ = false;
    return true;
  }
  // It failed (a time-out: it may or may not have run), or the list was not what we read.
  if (!s) *error = s;
  forget();
  return false;
}

Status OfflineQueue::reread(Store& store) {
  forget();  // even when the length cannot be read: the view is wrong either way
  return open(store);
}

}  // namespace liner
