// OfflineQueue against a fake store that can fail an operation, or run it and then fail (a
// reply that came too late), or run it later than asked (a command that reached the server
// after the client gave up). The property: nothing unacknowledged is ever removed from the
// store, and every frame stored is written at least once, in number order per connection.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "core/frame.hpp"
#include "core/offline_queue.hpp"
#include "fake_store.hpp"
#include "test_support.hpp"

using namespace liner;
using testing_support::FakeStore;
using testing_support::numbered_frame;

namespace {

// The sender's side, reduced to what touches the queue: a connection that writes what it
// reads, in order, and a listener that acknowledges what it got.
struct Channel {
  OfflineQueue q{7};
  uint64_t last_written = 0;  // this connection
  uint64_t delivered = 0;     // the listener's highest number (it drops lower ones)
  uint64_t acked = 0;         // what the listener wrote to the store
  std::set<uint64_t> written_ever;
  std::vector<uint64_t> connection_writes;

  void connect(Store& s) {
    q.forget();
    last_written = acked;
    connection_writes.clear();
    while (!q.open(s)) {
    }
  }
  // One pass: reads a chunk and writes it, as Sender::flush/load_backlog do.
  bool pump(Store& s, uint64_t chunk) {
    if (!q.has_unread()) return false;
    // A failed read is tried again on the next pass.
    (void)q.read_next(s, chunk, [&](std::string&&, uint64_t n) {
      if (n <= last_written) return;
      last_written = n;
      connection_writes.push_back(n);
      written_ever.insert(n);
      delivered = std::max(delivered, n);
    });
    return true;
  }
  void ack_and_pop(Store& s) {
    acked = delivered;
    Status err;
    if (!q.pop(s, acked, q.read_count(), &err)) q.reread(s);
  }
};

std::vector<std::string> frames_numbered(uint64_t from, uint64_t to) {
  std::vector<std::string> out;
  for (uint64_t n = from; n <= to; ++n) out.push_back(numbered_frame(n));
  return out;
}

Status push(OfflineQueue& q, Store& s, const std::vector<std::string>& frames) {
  std::vector<const std::string*> refs;
  for (auto& f : frames) refs.push_back(&f);
  return q.push(s, refs, {});
}

// Stores frames 1..n, opens the queue and reads them all.
void stored_and_read(OfflineQueue& q, FakeStore& store, uint64_t n) {
  ASSERT_TRUE(push(q, store, frames_numbered(1, n)));
  ASSERT_TRUE(q.open(store));
  ASSERT_TRUE(q.read_next(store, n, [](std::string&&, uint64_t) {}));
}

// Stores frames 1..n and connects `ch`; returns the frames.
std::vector<std::string> stored_and_connected(Channel& ch, FakeStore& store, uint64_t n) {
  auto frames = frames_numbered(1, n);
  EXPECT_TRUE(push(ch.q, store, frames));
  ch.connect(store);
  return frames;
}

}  // namespace

TEST(OfflineQueue, ALatePopReplyDoesNotMakeTheNextReadSkipFrames) {
  FakeStore store;
  Channel ch;
  stored_and_connected(ch, store, 10);
  ASSERT_TRUE(ch.pump(store, 4));  // reads 1..4, writes them
  ch.delivered = 4;
  store.script = {FakeStore::Fault::late_reply};  // the pop runs; its reply never comes
  ch.ack_and_pop(store);
  EXPECT_EQ(store.queues[7].size(), 6u);
  while (ch.pump(store, 4)) ch.ack_and_pop(store);
  EXPECT_EQ(ch.written_ever, (std::set<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
}

TEST(OfflineQueue, APopThatReachesTheStoreLaterSkipsNothing) {
  FakeStore store;
  Channel ch;
  ASSERT_TRUE(push(ch.q, store, frames_numbered(1, 12)));
  ch.connect(store);
  ASSERT_TRUE(ch.pump(store, 4));
  ch.delivered = 4;
  store.script = {FakeStore::Fault::runs_later};  // runs on the server at the next operation
  ch.ack_and_pop(store);  // failed: view dropped, reread (the delayed pop runs before its LLEN)
  while (ch.pump(store, 4)) ch.ack_and_pop(store);
  EXPECT_EQ(ch.written_ever.size(), 12u);
  EXPECT_TRUE(store.queues[7].empty());
}

TEST(OfflineQueue, APopThatRunsBetweenTwoReadsSkipsNothing) {
  FakeStore store;
  Channel ch;
  ASSERT_TRUE(push(ch.q, store, frames_numbered(1, 12)));
  ch.connect(store);
  ASSERT_TRUE(ch.pump(store, 4));  // 1..4
  ch.delivered = 4;
  store.delay_ops = 3;  // the failed pop runs after the reread's length and first read
  store.script = {FakeStore::Fault::runs_later};
  ch.ack_and_pop(store);
  while (ch.pump(store, 4)) {
  }
  EXPECT_EQ(ch.written_ever.size(), 12u);
}

// A pop removes through a place: run again (a retry, a reply that came too late), it finds
// nothing there, whatever came after.
TEST(OfflineQueue, ARepeatedPopRemovesNothingUnacknowledged) {
  FakeStore store;
  OfflineQueue q(7);
  ASSERT_NO_FATAL_FAILURE(stored_and_read(q, store, 6));
  Status err;
  ASSERT_TRUE(store.drop_messages_through(7, 3, nullptr));  // an earlier attempt
  EXPECT_TRUE(q.pop(store, 3, 6, &err)) << err.message;
  ASSERT_TRUE(push(q, store, frames_numbered(7, 8)));
  ASSERT_TRUE(store.drop_messages_through(7, 3, nullptr));
  EXPECT_EQ(store.queues[7].size(), 5u);
  EXPECT_EQ(stored_frame_number(store.queues[7].front()), 4u);
  EXPECT_EQ(q.read_count(), 3u);  // the view holds: 4..6 read, waiting for their ack
}

// Frames taken from the queue while it is read (handed to another replica) shift nothing: the
// next read goes on after the last frame read, and a pop removes no frame it did not read.
TEST(OfflineQueue, FramesRemovedWhileReadingShiftNothing) {
  FakeStore store;
  Channel ch;
  auto frames = stored_and_connected(ch, store, 10);
  ASSERT_TRUE(ch.pump(store, 4));  // 1..4
  uint64_t removed = 0;
  ASSERT_TRUE(store.remove_messages(7, {frames[1], frames[3], frames[5]}, &removed));  // 2, 4, 6
  ASSERT_EQ(removed, 3u);
  ch.delivered = 3;
  ch.ack_and_pop(store);  // through 3
  EXPECT_EQ(stored_frame_number(store.queues[7].front()), 5u);
  while (ch.pump(store, 4)) ch.ack_and_pop(store);
  EXPECT_EQ(ch.connection_writes, (std::vector<uint64_t>{1, 2, 3, 4, 5, 7, 8, 9, 10}));
  EXPECT_TRUE(store.queues[7].empty());
  EXPECT_FALSE(ch.q.may_have_backlog());
}

// A pop asks the store for the acknowledged head only: the queue, not the store's own check,
// keeps the unacknowledged tail (and the view stays valid, so nothing is read twice).
TEST(OfflineQueue, APopTakesTheAcknowledgedHeadAndKeepsItsView) {
  FakeStore store;
  OfflineQueue q(7);
  ASSERT_NO_FATAL_FAILURE(stored_and_read(q, store, 6));
  Status err;
  EXPECT_TRUE(q.pop(store, 4, 6, &err)) << err.message;
  EXPECT_EQ(store.queues[7].size(), 2u);
  EXPECT_EQ(stored_frame_number(store.queues[7].front()), 5u);
  EXPECT_EQ(q.read_count(), 2u);
  EXPECT_TRUE(q.pop(store, 4, 2, &err));  // nothing more acknowledged: nothing asked of the store
  EXPECT_EQ(store.queues[7].size(), 2u);
}

TEST(OfflineQueue, StaysInterestingUntilPopsEmptyIt) {
  FakeStore store;
  Channel ch;
  ASSERT_TRUE(push(ch.q, store, frames_numbered(1, 5)));
  ch.connect(store);
  while (ch.pump(store, 10)) {
  }
  // Everything written, nothing acknowledged: the listener dies here.
  EXPECT_TRUE(ch.q.may_have_backlog());
  ch.connect(store);
  EXPECT_TRUE(ch.q.may_have_backlog());
  ch.delivered = ch.acked = 0;  // the new listener had not delivered them
  while (ch.pump(store, 10)) ch.ack_and_pop(store);
  ch.ack_and_pop(store);
  EXPECT_FALSE(ch.q.may_have_backlog());
  EXPECT_TRUE(store.queues[7].empty());
}

// Random faults on every operation, random chunk sizes, reconnects and spills of more frames:
// nothing unacknowledged leaves the store, and everything is written at least once.
TEST(OfflineQueue, PropertyNothingAcknowledgedIsLostNothingUnacknowledgedDropped) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 rng(seed);
    FakeStore store;
    Channel ch;
    uint64_t next = 1;
    std::set<uint64_t> stored;
    for (int step = 0; step < 300; ++step) {
      store.rng = &rng;
      store.fault_percent = 20;
      switch (rng() % 6) {
        case 0: {  // the peer was unreachable: frames spilled from RAM
          uint64_t n = 1 + rng() % 20;
          auto frames = frames_numbered(next, next + n - 1);
          if (push(ch.q, store, frames)) {
            for (uint64_t k = next; k < next + n; ++k) stored.insert(k);
            next += n;
          } else {
            // A failed push may have stored them (late reply): the sender keeps them in RAM and
            // pushes again; here they are written from RAM instead, which the listener counts.
            for (uint64_t k = next; k < next + n; ++k) {
              bool in_store = false;
              for (auto& f : store.queues[7]) in_store = in_store || stored_frame_number(f) == k;
              if (in_store) stored.insert(k);
            }
            next += n;
          }
          break;
        }
        case 1:  // connection lost and made again
          store.fault_percent = 0;
          ch.connect(store);
          break;
        default:
          ch.pump(store, 1 + rng() % 8);
          if (rng() % 2) ch.ack_and_pop(store);
      }
      // The property, at every step: the store holds every stored frame not yet acknowledged.
      std::set<uint64_t> in_store;
      for (auto& f : store.queues[7]) in_store.insert(stored_frame_number(f));
      for (uint64_t k : stored)
        if (k > ch.acked) ASSERT_TRUE(in_store.count(k)) << "seed " << seed << " step " << step << " lost " << k;
    }
    // Faults stop; the channel drains.
    store.rng = nullptr;
    for (auto& d : store.delayed) d.op();
    store.delayed.clear();
    ch.connect(store);
    for (int i = 0; i < 1000 && (ch.q.has_unread() || !store.queues[7].empty()); ++i) {
      if (!ch.pump(store, 8)) ch.connect(store);
      ch.ack_and_pop(store);
    }
    for (uint64_t k : stored) ASSERT_TRUE(ch.written_ever.count(k)) << "seed " << seed << ": " << k << " never written";
    ASSERT_TRUE(store.queues[7].empty()) << "seed " << seed;
    // Order within a connection.
    ASSERT_TRUE(std::is_sorted(ch.connection_writes.begin(), ch.connection_writes.end()));
  }
}
