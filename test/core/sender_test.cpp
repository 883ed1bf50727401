// Sender (native/core/sender.hpp) over a FakeStore, without a listener: a peer's queue is
// capped (Err::busy, one busy event), a peer nobody listens at gets its at-least-once frames
// spilled to the offline queue with the hand-over marks of send_to frames and its best-effort
// ones dropped, and a channel that resumes numbers past kResumeGap so that a restarted sender
// never reuses a number a listener may have delivered.
#include "core/sender.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/frame.hpp"
#include "fake_store.hpp"
#include "test_support.hpp"

using namespace liner;
using testing_support::FakeStore;
using testing_support::wait_for;
using std::chrono::milliseconds;

namespace {

constexpr auto kWait = milliseconds(10000);
constexpr uint64_t kResumeGap = uint64_t(1) << 24;  // sender.cpp

class Rig {
 public:
  explicit Rig(size_t max_bytes = 0, size_t max_messages = 0) : status_(nullptr) {
    status_.set([this](const StatusEvent& e) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(e);
    });
    SenderOptions o;
    o.unique_name = "U";
    o.source_topic = "S";
    o.max_queue_bytes = max_bytes;
    o.max_queue_messages = max_messages;
    o.status = &status_;
    sender = std::make_unique<Sender>(o, FakeStore::make(&store));
    // Nobody listens there: connects are refused.
    addr = "127.0.0.1:" + std::to_string(testing_support::free_port());
  }
  ~Rig() { sender->stop(milliseconds(0)); }

  FakeStore* store = nullptr;  // owned by the sender
  std::unique_ptr<Sender> sender;
  std::string addr;

  Status open() { return sender->open_channel(*store, addr, "L", "T"); }
  Status send(const std::string& data, bool at_least_once, bool handover = false) {
    Payload p{data.data(), data.size()};
    Sender::Enqueued e = sender->enqueue(addr, "T", 3, &p, 1, at_least_once, handover);
    EXPECT_FALSE(e.no_channel);
    return e.status;
  }
  size_t events(StatusKind kind) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto& e : events_) n += e.kind == kind;
    return n;
  }
  // Numbers pushed to the offline queue of ck, in order.
  std::vector<uint64_t> pushed(int32_t ck) {
    std::vector<uint64_t> out;
    for (const auto& p : store->pushes_made())
      if (p.ck == ck) out.insert(out.end(), p.numbers.begin(), p.numbers.end());
    return out;
  }

 private:
  StatusSink status_;
  std::mutex mu_;
  std::vector<StatusEvent> events_;
};

}  // namespace

TEST(Sender, RefusesWithBusyOnceThePeersQueueIsFull) {
  Rig r(4096);  // bytes per peer, not started: nothing leaves the queue
  ASSERT_TRUE(r.open().ok());
  std::string msg(100, 'x');
  int queued = 0;
  Status s;
  while ((s = r.send(msg, true)).ok()) ASSERT_LT(++queued, 1000);
  EXPECT_EQ(s.code, Err::busy) << s.message;
  EXPECT_GT(queued, 0);
  // Each message costs its frame and the per-message overhead against the cap.
  EXPECT_LE(queued * (kFrameOverhead + msg.size()), 4096u);
  EXPECT_LE(r.sender->stats().queued_bytes, 4096u);
  EXPECT_EQ(r.sender->stats().queued_messages, uint64_t(queued));
  EXPECT_EQ(r.send(msg, true).code, Err::busy);
  EXPECT_EQ(r.events(StatusKind::busy), 1u) << "a full queue is reported once, not per refused send";
}

TEST(Sender, ABatchStopsAtTheFirstMessageThatDoesNotFit) {
  Rig r(0, 3);  // three messages per peer
  ASSERT_TRUE(r.open().ok());
  std::string a = "a";
  std::vector<Payload> five(5, Payload{a.data(), a.size()});
  Sender::Enqueued e = r.sender->enqueue(r.addr, "T", 3, five.data(), five.size(), true, false);
  EXPECT_EQ(e.status.code, Err::busy);
  EXPECT_EQ(e.queued, 3u);
  EXPECT_EQ(r.sender->stats().queued_messages, 3u);
}

// The caller opens channels (store round trips it may not make on its thread): an address
// without one is said so, distinctly from an error, and nothing is queued. A handle on a
// channel is looked up again once the channel is no longer at its address.
TEST(Sender, AnAddressWithoutAChannelIsSaidSoAndNothingIsQueued) {
  Rig r;
  std::string m = "m";
  Payload p{m.data(), m.size()};
  Sender::ChannelRef ref;
  Sender::Enqueued e = r.sender->enqueue(r.addr, "T", 3, &p, 1, true, false, &ref);
  EXPECT_TRUE(e.no_channel);
  EXPECT_TRUE(e.status.ok());
  EXPECT_EQ(e.queued, 0u);
  EXPECT_EQ(r.sender->stats().queued_messages, 0u);

  ASSERT_TRUE(r.open().ok());
  e = r.sender->enqueue(r.addr, "T", 3, &p, 1, true, false, &ref);
  EXPECT_FALSE(e.no_channel);
  EXPECT_TRUE(e.status.ok());
  EXPECT_EQ(e.queued, 1u);
  // The same handle, another address: not that channel's.
  e = r.sender->enqueue("127.0.0.1:1", "T", 3, &p, 1, true, false, &ref);
  EXPECT_TRUE(e.no_channel);
  EXPECT_EQ(r.sender->stats().queued_messages, 1u);
}

TEST(Sender, SpillsAtLeastOnceFramesOfAnUnreachablePeerAndDropsBestEffortOnes) {
  Rig r;
  ASSERT_TRUE(r.open().ok());
  ASSERT_EQ(r.store->connection_keys.size(), 1u);
  int32_t ck = r.store->connection_keys.begin()->second;
  ASSERT_TRUE(r.sender->start().ok());
  // Numbers depend on timing (a best-effort message to a peer already known to be down is
  // dropped before it gets one): the payload says which send a frame came from.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(r.send("to" + std::to_string(i), true, true).ok());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(r.send("be" + std::to_string(i), false).ok());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(r.send("all" + std::to_string(i), true, false).ok());
  ASSERT_TRUE(wait_for([&] { return r.pushed(ck).size() == 5 && r.sender->stats().dropped == 2; }, kWait))
      << r.pushed(ck).size() << " pushed, " << r.sender->stats().dropped << " dropped";
  std::vector<std::string> payloads;
  std::set<uint64_t> send_to_numbers, marked;
  uint64_t last = 0;
  {
    auto l = r.store->lock();
    for (const auto& f : r.store->queues[ck]) {
      FrameHeader h;
      const uint8_t* data = nullptr;
      std::string err;
      ASSERT_TRUE(decode_stored_frame(f, &h, &data, &err)) << err;
      EXPECT_GT(h.number_mess, last) << "stored out of number order";
      last = h.number_mess;
      EXPECT_EQ(h.connection_key, ck);
      EXPECT_EQ(h.topic_key, 3);
      EXPECT_TRUE(h.flags & kFlagAtLeastOnce);
      payloads.emplace_back(reinterpret_cast<const char*>(data), h.data_len);
      if (payloads.back().rfind("to", 0) == 0) send_to_numbers.insert(h.number_mess);
    }
    for (const auto& range : r.store->handover[ck])
      for (uint64_t n = range.first; n <= range.second; ++n) marked.insert(n);
  }
  EXPECT_EQ(payloads, (std::vector<std::string>{"to0", "to1", "to2", "all0", "all1"}));
  EXPECT_EQ(marked, send_to_numbers) << "only send_to frames may be handed to another replica";
  EXPECT_FALSE(r.sender->reachable(r.addr));
  ASSERT_TRUE(wait_for([&] { return r.sender->stats().queued_messages == 0; }, kWait))
      << "stored frames still count against the peer's queue";
}

TEST(Sender, ASpillTheStoreRefusedIsStoredLaterInOrder) {
  // The first push fails (the store did not answer): the frames go back in front of the
  // queue and a later spill stores them, each once and in number order.
  Rig r;
  ASSERT_TRUE(r.open().ok());
  int32_t ck = r.store->connection_keys.begin()->second;
  r.store->op_script[FakeStore::Op::push] = {FakeStore::Fault::fail};
  ASSERT_TRUE(r.sender->start().ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(r.send("m", true).ok());
  ASSERT_TRUE(wait_for([&] { return r.store->stored_numbers(ck).size() >= 4; }, kWait));
  EXPECT_EQ(r.store->stored_numbers(ck), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_GE(r.events(StatusKind::sender_store_error), 1u);
}

TEST(Sender, AResumedChannelNumbersPastTheGap) {
  // An earlier incarnation of this sender had channel 5 with the listener "L", acknowledged up
  // to 10: it may have sent numbers past 10 that the listener delivered without acknowledging.
  Rig r;
  r.store->connection_keys["U:S:L"] = 5;
  r.store->acks[5] = 10;
  ASSERT_TRUE(r.open().ok());
  ASSERT_TRUE(r.sender->start().ok());
  ASSERT_TRUE(r.send("m", true).ok());
  ASSERT_TRUE(wait_for([&] { return r.pushed(5).size() == 1; }, kWait));
  EXPECT_EQ(r.pushed(5)[0], 10 + kResumeGap + 1);
}

TEST(Sender, AResumedChannelNumbersPastItsStoredFramesToo) {
  Rig r;
  r.store->connection_keys["U:S:L"] = 5;
  r.store->acks[5] = 3;
  r.store->queues[5].push_back(testing_support::numbered_frame(40));  // stored by a previous run
  ASSERT_TRUE(r.open().ok());
  ASSERT_TRUE(r.sender->start().ok());
  ASSERT_TRUE(r.send("m", true).ok());
  ASSERT_TRUE(wait_for([&] { return r.pushed(5).size() == 1; }, kWait));
  EXPECT_EQ(r.pushed(5)[0], 40 + kResumeGap + 1);
  EXPECT_EQ(r.store->stored_numbers(5), (std::vector<uint64_t>{40, 40 + kResumeGap + 1}));
}

TEST(Sender, AClearedChannelStartsOverFromOne) {
  // clear_stored_messages deletes the counter and the queue: the key alone does not resume.
  Rig r;
  r.store->connection_keys["U:S:L"] = 5;
  ASSERT_TRUE(r.open().ok());
  ASSERT_TRUE(r.sender->start().ok());
  ASSERT_TRUE(r.send("m", true).ok());
  ASSERT_TRUE(wait_for([&] { return r.pushed(5).size() == 1; }, kWait));
  EXPECT_EQ(r.pushed(5)[0], 1u);
}
