// Listener + Delivery over real loopback TCP against a fake store that can be slow or fail: a
// slow store must never stall delivery. A channel look-up that takes 1.5 s holds back its own
// connection only; slow ack writes and refusal reports hold back nothing; an unknown key closes
// its connection alone and leaves nothing behind; a failed ack write is retried and reported.
// The fake store counts the slow calls in progress, so "delivered meanwhile" is checked as a
// fact (the call had not returned yet), not as a tight time.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/delivery.hpp"
#include "core/frame.hpp"
#include "core/listener.hpp"
#include "fake_peer.hpp"
#include "fake_store.hpp"
#include "test_support.hpp"

using namespace liner;
using testing_support::FakePeer;
using testing_support::FakeStore;
using testing_support::wait_for;
using Clock = std::chrono::steady_clock;
using Op = testing_support::FakeStore::Op;
using std::chrono::milliseconds;

namespace {

constexpr int32_t kTopicKey = 7;
constexpr auto kSlow = milliseconds(1500);

struct Received {
  std::string from;
  std::string data;  // "<ck>:<number>"
  bool during_slow_call;  // a slow store call had not returned when it was delivered
  uint64_t number() const { return std::stoull(data.substr(data.find(':') + 1)); }
};

// A Listener and its Delivery on 127.0.0.1, serving topic key 7, over a FakeStore that knows
// the given senders (ck -> sender topic). The store counts its slow calls in progress
// (FakeStore::paused), so each delivery records whether one had not returned yet.
class Harness {
 public:
  explicit Harness(const std::map<int32_t, std::string>& senders, size_t max_message = 1 << 20)
      : status_(nullptr) {
    status_.set([this](const StatusEvent& e) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(e);
    });
    delivery_ = std::make_unique<Delivery>(
        FakeStore::make(&store),
        [this](const std::string&, const std::string& from, const char* data, size_t size) {
          {
            std::lock_guard<std::mutex> lock(mu_);
            received_.push_back({from, std::string(data, size), store->paused() > 0});
          }
          if (from == slow_consumer_of) std::this_thread::sleep_for(milliseconds(500));
        },
        nullptr, 0, max_message, &status_);
    store->senders = senders;
    delivery_->set_topic(kTopicKey, "topic");
    listener_ = std::make_unique<Listener>(delivery_.get(), uint32_t(max_message + kBodyHeaderSize));
    EXPECT_TRUE(listener_->bind("127.0.0.1:0", &addr_).ok());
    EXPECT_TRUE(delivery_->start().ok());
    EXPECT_TRUE(listener_->start().ok());
  }
  ~Harness() { stop(); }

  FakeStore* store = nullptr;  // owned by the delivery, which outlives stop()
  // Messages of this sender take the receive callback 500 ms (set before any arrives).
  std::string slow_consumer_of;

  void stop() {
    if (!listener_) return;
    listener_->stop();
    delivery_->stop();
    listener_->close_connections();
    listener_.reset();
  }

  int port() const { return std::stoi(addr_.substr(addr_.rfind(':') + 1)); }

  std::vector<Received> received() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  // Payloads delivered from `from`, in order.
  std::vector<std::string> from(const std::string& sender) {
    std::vector<std::string> out;
    for (const auto& r : received())
      if (r.from == sender) out.push_back(r.data);
    return out;
  }
  size_t count_from(const std::string& sender) { return from(sender).size(); }
  // Messages of `sender` numbered `first` or more that were delivered while no slow store call
  // was in progress (empty when all of them came during one).
  std::vector<std::string> delivered_outside_slow_calls(const std::string& sender, uint64_t first) {
    std::vector<std::string> out;
    for (const auto& r : received())
      if (r.from == sender && r.number() >= first && !r.during_slow_call) out.push_back(r.data);
    return out;
  }
  std::vector<StatusEvent> events(StatusKind kind) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<StatusEvent> out;
    for (const auto& e : events_)
      if (e.kind == kind) out.push_back(e);
    return out;
  }
  DeliveryStats stats() const { return delivery_->stats(); }

 private:
  StatusSink status_;
  std::unique_ptr<Delivery> delivery_;
  std::unique_ptr<Listener> listener_;
  std::string addr_;
  std::mutex mu_;
  std::vector<Received> received_;
  std::vector<StatusEvent> events_;
};

// A sender's connection: at-least-once frames of channel `ck`, payload "<ck>:<number>".
struct Peer : FakePeer {
  Peer(int port, int32_t ck) : FakePeer(port, ck, kTopicKey) {}
  // Frames numbered first..last of channel ck, payloads padded with `pad` bytes.
  static std::string frames(int32_t ck, uint64_t first, uint64_t last, size_t pad = 0) {
    return FakePeer::frames(ck, kTopicKey, first, last, pad);
  }
};

std::vector<std::string> numbered(int32_t ck, uint64_t first, uint64_t last) {
  std::vector<std::string> out;
  for (uint64_t n = first; n <= last; ++n) out.push_back(FakePeer::payload(ck, n));
  return out;
}

}  // namespace

TEST(ListenerSlowStore, ASlowLookUpHoldsBackItsOwnConnectionOnly) {
  Harness h({{1, "fast"}, {2, "slow"}});
  FakeStore* store = h.store;
  store->set_delay(Op::sender_topic, kSlow, 2);
  Peer fast(h.port(), 1);
  fast.send(1, 1);
  ASSERT_TRUE(wait_for([&] { return h.count_from("fast") == 1; }, milliseconds(5000)));

  Peer slow(h.port(), 2);
  slow.send(1, 3);
  ASSERT_TRUE(wait_for([&] { return store->paused() > 0; }, milliseconds(5000)));
  auto sent = Clock::now();
  fast.send(2, 50);
  ASSERT_TRUE(wait_for([&] { return h.count_from("fast") == 50; }, milliseconds(5000)));
  auto took = Clock::now() - sent;
  // Delivered while the other channel's look-up was still in the store.
  EXPECT_EQ(h.delivered_outside_slow_calls("fast", 2), std::vector<std::string>());
  EXPECT_LT(took, milliseconds(1000));
  EXPECT_EQ(h.count_from("slow"), 0u);

  // More of the slow channel while it waits: everything arrives in order once it is answered.
  slow.send(4, 10);
  ASSERT_TRUE(wait_for([&] { return h.count_from("slow") == 10; }, milliseconds(10000)));
  EXPECT_EQ(h.from("slow"), numbered(2, 1, 10));
  EXPECT_EQ(h.from("fast"), numbered(1, 1, 50));
  // The stream goes on as usual after the look-up.
  slow.send(11, 12);
  ASSERT_TRUE(wait_for([&] { return h.count_from("slow") == 12; }, milliseconds(5000)));
  ASSERT_TRUE(wait_for([&] { return store->ack(2) == 12 && store->ack(1) == 50; }, milliseconds(5000)));
}

TEST(ListenerSlowStore, AConnectionCarryingSeveralChannelsDeliversThemInOrder) {
  // Not what a liner sender does (one connection per channel), but the protocol allows it:
  // each new channel's look-up parks the connection again, and its frames keep their order.
  Harness h({{1, "one"}, {4, "four"}, {6, "six"}});
  FakeStore* store = h.store;
  store->set_delay(Op::sender_topic, milliseconds(300), 4);
  store->set_delay(Op::sender_topic, milliseconds(300), 6);
  Peer many(h.port(), 1);
  // One read holds all of these: released up to channel 4's first frame, then the rest.
  many.write(Peer::frames(1, 1, 3) + Peer::frames(4, 1, 3) + Peer::frames(1, 4, 6));
  ASSERT_TRUE(wait_for([&] { return h.received().size() == 9; }, milliseconds(10000)));
  // Big frames straddle reads: held in the buffers they were assembled in.
  many.write(Peer::frames(6, 1, 3, 100 * 1024) + Peer::frames(1, 7, 7) + Peer::frames(4, 4, 4));
  ASSERT_TRUE(wait_for([&] { return h.received().size() == 14; }, milliseconds(10000)));
  std::vector<std::string> order;
  for (const auto& r : h.received()) order.push_back(r.data.substr(0, r.data.find('.')));
  EXPECT_EQ(order, (std::vector<std::string>{"1:1", "1:2", "1:3", "4:1", "4:2", "4:3", "1:4", "1:5",
                                             "1:6", "6:1", "6:2", "6:3", "1:7", "4:4"}));
  EXPECT_EQ(h.from("six").size(), 3u);
  ASSERT_TRUE(wait_for([&] { return store->ack(1) == 7 && store->ack(4) == 4 && store->ack(6) == 3; },
                       milliseconds(5000)));
}

TEST(ListenerSlowStore, AnUnknownKeyClosesThatConnectionOnlyAndLeavesNothing) {
  Harness h({{1, "known"}});
  FakeStore* store = h.store;
  store->set_delay(Op::sender_topic, kSlow, 3);  // and unknown
  Peer known(h.port(), 1);
  known.send(1, 1);
  ASSERT_TRUE(wait_for([&] { return h.count_from("known") == 1; }, milliseconds(5000)));

  Peer forged(h.port(), 3);
  forged.send(1, 5);
  ASSERT_TRUE(wait_for([&] { return store->paused() > 0; }, milliseconds(5000)));
  known.send(2, 20);
  ASSERT_TRUE(wait_for([&] { return h.count_from("known") == 20; }, milliseconds(5000)));
  EXPECT_EQ(h.delivered_outside_slow_calls("known", 2), std::vector<std::string>());

  EXPECT_TRUE(forged.closed_by_listener(milliseconds(10000)));
  known.send(21, 30);  // the known connection is still served
  ASSERT_TRUE(wait_for([&] { return h.count_from("known") == 30; }, milliseconds(5000)));
  ASSERT_TRUE(wait_for([&] { return store->ack(1) == 30; }, milliseconds(5000)));
  h.stop();
  EXPECT_EQ(h.stats().delivered, 30u);
  EXPECT_FALSE(store->has_ack(3)) << "an ack for a key the store does not know";
  EXPECT_EQ(store->count(Op::read_ack, 3), 0u);
  auto refused = 0;
  for (const auto& e : h.events(StatusKind::peer_disconnected))
    if (e.message.find("connection refused: unknown connection key 3") != std::string::npos) ++refused;
  EXPECT_EQ(refused, 1);
}

TEST(ListenerSlowStore, SlowAckWritesDoNotDelayDelivery) {
  Harness h({{1, "a"}});
  FakeStore* store = h.store;
  Peer a(h.port(), 1);
  a.send(1, 10);
  ASSERT_TRUE(wait_for([&] { return store->ack(1) == 10; }, milliseconds(5000)));
  store->set_delay(Op::ack_write, kSlow);
  a.send(11, 20);  // their ack write starts soon after and takes 1.5 s
  ASSERT_TRUE(wait_for([&] { return store->paused() > 0; }, milliseconds(5000)));
  auto sent = Clock::now();
  a.send(21, 40);
  ASSERT_TRUE(wait_for([&] { return h.count_from("a") == 40; }, milliseconds(5000)));
  EXPECT_LT(Clock::now() - sent, milliseconds(1000));
  EXPECT_EQ(h.delivered_outside_slow_calls("a", 21), std::vector<std::string>());
  // What was delivered during the slow write is written once that one is done.
  ASSERT_TRUE(wait_for([&] { return store->ack(1) == 40; }, milliseconds(10000)));
  EXPECT_EQ(h.from("a"), numbered(1, 1, 40));
}

TEST(ListenerSlowStore, AFailedAckWriteIsRetriedAndReported) {
  Harness h({{1, "a"}});
  FakeStore* store = h.store;
  store->fail_next(Op::ack_write, 3);
  Peer a(h.port(), 1);
  a.send(1, 10);
  ASSERT_TRUE(wait_for([&] { return store->ack(1) == 10; }, milliseconds(10000)));
  // Reported once: the same error again within its pause is held back (StatusSink), so that a
  // retry loop cannot flood the status handler.
  EXPECT_EQ(h.events(StatusKind::listener_store_error).size(), 1u);
  // Retried after a gap (kAckRetryGap), not in a tight loop.
  EXPECT_LE(store->count(Op::ack_write), 6u);
}

TEST(ListenerSlowStore, ALookUpOlderThanAnAckWriteDoesNotRewindTheChannel) {
  Harness h({{1, "a"}, {3, "blocker"}});
  FakeStore* store = h.store;
  store->set_delay(Op::sender_topic, kSlow, 3);
  h.slow_consumer_of = "blocker";
  Peer a(h.port(), 1);
  a.send(1, 2);
  ASSERT_TRUE(wait_for([&] { return store->ack(1) == 2; }, milliseconds(5000)));
  // The worker is busy with a slow look-up; behind it, a new connection of channel 1 (the
  // sender reconnected) asks for the channel, and only then are 3..5 of the old connection
  // delivered and their ack write posted. The look-up reads 2, the write then stores 5. The
  // blocker's message keeps the listener busy while both complete, so that the write's
  // completion has run when the new connection's first frame applies the look-up.
  Peer blocker(h.port(), 3);
  blocker.send(1, 1);
  ASSERT_TRUE(wait_for([&] { return store->paused() > 0; }, milliseconds(5000)));
  Peer again(h.port(), 1);
  again.send(1, 10);  // resends what it holds: 1..10
  std::this_thread::sleep_for(milliseconds(100));  // its look-up is posted (nothing to wait on)
  a.send(3, 5);
  ASSERT_TRUE(wait_for([&] { return h.count_from("a") == 5; }, milliseconds(5000)));
  ASSERT_GT(store->paused(), 0) << "the machine was too slow for this test's order";
  ASSERT_TRUE(wait_for([&] { return h.count_from("a") >= 10; }, milliseconds(10000)));
  std::this_thread::sleep_for(milliseconds(100));
  // 3..5 are not delivered a second time: the stale 2 is not taken for a sender starting over.
  EXPECT_EQ(h.from("a"), numbered(1, 1, 10));
  ASSERT_TRUE(wait_for([&] { return store->ack(1) == 10; }, milliseconds(5000)));
}

TEST(ListenerSlowStore, ASlowRefusalReportDoesNotDelayDelivery) {
  Harness h({{1, "a"}}, 1000);  // messages above 1,000 bytes are refused
  FakeStore* store = h.store;
  store->set_delay(Op::report_refused, kSlow);
  Peer a(h.port(), 1);
  a.send(1, 1);
  ASSERT_TRUE(wait_for([&] { return h.count_from("a") == 1; }, milliseconds(5000)));
  a.send(2, 2, 5000);  // refused alone, reported to its sender through the store
  ASSERT_TRUE(wait_for([&] { return store->paused() > 0; }, milliseconds(5000)));
  a.send(3, 10);
  ASSERT_TRUE(wait_for([&] { return h.count_from("a") == 9; }, milliseconds(5000)));
  EXPECT_EQ(h.delivered_outside_slow_calls("a", 3), std::vector<std::string>());
  ASSERT_TRUE(wait_for([&] { return store->ack(1) == 10; }, milliseconds(10000)));
  auto reports = store->reports_made();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(std::make_pair(reports[0].ck, reports[0].number), std::make_pair(int32_t(1), uint64_t(2)));
}

TEST(ListenerSlowStore, StopWritesTheFinalAcksBehindASlowWrite) {
  Harness h({{1, "a"}});
  FakeStore* store = h.store;
  Peer a(h.port(), 1);
  a.send(1, 5);
  ASSERT_TRUE(wait_for([&] { return store->ack(1) == 5; }, milliseconds(5000)));
  store->set_delay(Op::ack_write, milliseconds(500));
  a.send(6, 10);
  ASSERT_TRUE(wait_for([&] { return store->paused() > 0; }, milliseconds(5000)));
  a.send(11, 20);
  ASSERT_TRUE(wait_for([&] { return h.count_from("a") == 20; }, milliseconds(5000)));
  h.stop();  // a write is in flight: the final one follows it
  EXPECT_EQ(store->ack(1), 20u);
}
