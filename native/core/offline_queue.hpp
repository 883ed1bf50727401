// One channel's offline queue ("lnr_connection:{ck}:messages", whole frames in number order) as
// its sender sees it: what waits there, what of it was read, and what may be removed.
//
// Where a channel's at-least-once messages are (numbers are number_mess):
// - in RAM, not yet written (the sender's pending segments), numbered above everything stored:
//   the sender stores RAM only by spilling all of it at once, when the peer is unreachable;
// - in the store: frames that left RAM unacknowledged, oldest first;
// - read from the store's head: head_ holds their places and numbers, in queue order, the first
//   of them written to the current connection, the rest waiting in the sender's backlog segments;
// - written and unacknowledged (the sender's unacked segments, or head_ entries above the ack);
// - acknowledged: the listener's counter ("lnr_connection:{ck}:mess_number") is at or above
//   their number. Only these ever leave the store.
//
// Invariants this unit keeps:
// - A frame leaves the store only through pop(), which removes through the place of a frame
//   read, written and acknowledged, after which only such frames come (Store places ascend and
//   new frames come after them): a pop that is retried, repeated, or whose reply came too late
//   removes nothing else.
// - Reads resume after the last place read, so frames removed meanwhile (handed to another
//   replica) shift nothing. A failed pop drops the view and the queue is read again from its
//   head; frames that were already written are recognised by number (at or below the last number
//   written) and not written again, so nothing is skipped and nothing reordered.
// - may_have_backlog() stays true until a pop or a length read shows the store empty: a
//   listener that dies before acknowledging the replay gets it again when it returns, without
//   waiting for a new send.
//
// Threads: one at a time. The sender runs each call as a job on its store worker and reads the
// queue on its own thread only while no job of the channel is in flight (sender_store.cpp,
// post_store). Every call is one or two store round trips on the store it is given.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "core/store.hpp"

namespace liner {

class OfflineQueue {
 public:
  explicit OfflineQueue(int32_t ck = 0) : ck_(ck) {}

  // What the caller does with each frame read: (frame, its number; 0 if it is not a frame).
  using FrameFn = std::function<void(std::string&& frame, uint64_t number)>;

  // A new connection: forgets the view and reads the queue's length.
  Status open(Store& store);
  // The connection is gone: the view is dropped (the store keeps everything).
  void forget();
  // Stores frames that leave RAM unacknowledged (spill), after everything stored before;
  // `handover`: those of them sent with send_to (Store::push_messages).
  Status push(Store& store, const std::vector<const std::string*>& frames, const NumberRanges& handover);

  bool may_have_backlog() const { return may_have_backlog_; }
  // The channel was created while the store held nothing for it.
  void open_empty() { may_have_backlog_ = false; }
  // Frames left to read on this connection.
  bool has_unread() const { return unread_ > 0; }
  // Frames read and not popped yet (the sender polls acks while there are some).
  bool has_unpopped() const { return !head_.empty(); }

  // Reads up to `max` more frames after the last one read, passing each to `fn`.
  Status read_next(Store& store, uint64_t max, const FrameFn& fn);

  // Pops the acknowledged frames among the first `written` read (the others still wait in the
  // sender's RAM). Returns false when the view was dropped: call reread().
  bool pop(Store& store, uint64_t acked, uint64_t written, Status* error);
  // Drops the view and reads the length again; the next read_next starts at the head.
  Status reread(Store& store);

  // Frames read and not popped yet.
  uint64_t read_count() const { return head_.size(); }

 private:
  struct Read {
    uint64_t place;   // in the store
    uint64_t number;  // the frame's number; 0 if it is not a frame
  };
  int32_t ck_;  // the channel's connection key
  bool may_have_backlog_ = true;
  uint64_t unread_ = 0;  // frames left to read, as far as the length read at open() tells
  uint64_t after_ = 0;   // the place of the last frame read; 0: none yet
  std::deque<Read> head_;
};

}  // namespace liner
