// Delivery (native/core/delivery.hpp) on its own: the test plays the listener's thread (it
// asks for look-ups, runs the store completions, hands batches of decoded frames to
// deliver() and calls tick()), over a FakeStore that can fail, hold and answer late. What it
// pins: duplicates dropped per channel, the acknowledgement written only after the callback
// returned and retried when the store fails, refusals (oversize, undecodable, a number far
// ahead, a topic not served, an unknown key) that deliver and acknowledge nothing they must
// not, and the state a channel keeps until its acks are in the store.
#include "core/delivery.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/compress.hpp"
#include "core/frame.hpp"
#include "fake_store.hpp"
#include "test_support.hpp"

using namespace liner;
using testing_support::FakeStore;
using Op = testing_support::FakeStore::Op;
using std::chrono::milliseconds;

namespace {

constexpr int32_t kTopicKey = 7;
constexpr auto kWait = milliseconds(5000);

struct Got {
  std::string to, from, data;
};

// A Delivery serving topic key 7 ("topic") and what it handed to the receive callback.
class Rig {
 public:
  explicit Rig(size_t max_message = 1 << 20, size_t max_batch = 0) : status_(nullptr) {
    status_.set([this](const StatusEvent& e) { events_.push_back(e); });
    delivery_ = std::make_unique<Delivery>(
        FakeStore::make(&store),
        [this](const std::string& to, const std::string& from, const char* data, size_t size) {
          got.push_back({to, from, std::string(data, size)});
          if (on_receive) on_receive(got.back());
        },
        nullptr, max_batch, max_message, &status_);
    delivery_->set_topic(kTopicKey, "topic");
  }
  ~Rig() {
    for (Op op : {Op::ack_write, Op::sender_topic, Op::read_ack, Op::report_refused}) store->release(op);
    if (started_) delivery_->stop();
  }

  FakeStore* store = nullptr;  // owned by the delivery
  std::vector<Got> got;
  std::function<void(const Got&)> on_receive;
  Delivery& d() { return *delivery_; }

  void start() {
    ASSERT_TRUE(delivery_->start().ok());
    started_ = true;
  }
  // Sender 1 ("alice"), and with and_bob sender 2 ("bob"), known to the store, the delivery
  // started and channel ck opened on connection ck: where most tests begin.
  bool start_with_alice(bool and_bob = false) {
    store->senders[1] = "alice";
    if (and_bob) store->senders[2] = "bob";
    start();
    return open(1, 1) && (!and_bob || open(2, 2));
  }
  void stop() {
    for (Op op : {Op::ack_write, Op::sender_topic, Op::read_ack, Op::report_refused}) store->release(op);
    delivery_->stop();
    started_ = false;
  }

  // Runs the store completions that are ready (waits up to `timeout` for some).
  void pump(milliseconds timeout = milliseconds(5)) {
    pollfd p{delivery_->store_completions_fd(), POLLIN, 0};
    ::poll(&p, 1, int(timeout.count()));
    delivery_->run_store_completions(answers_);
  }
  // Asks for channel ck on connection conn as the listener does, and waits for the answer.
  bool open(uint64_t conn, int32_t ck) {
    if (!delivery_->look_up(ck, conn)) return false;
    auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      pump();
      for (auto it = answers_.begin(); it != answers_.end(); ++it) {
        if (it->conn_id == conn && it->connection_key == ck) {
          bool accepted = it->accepted;
          answers_.erase(it);
          return accepted;
        }
      }
    }
    ADD_FAILURE() << "no answer to the look-up of channel " << ck;
    return false;
  }
  // Pumps completions and ticks (the listener's idle pass) until `cond` holds.
  bool settle(const std::function<bool()>& cond, milliseconds timeout = kWait) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!cond()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      pump();
      delivery_->tick();
    }
    return true;
  }

  // A decoded frame of channel ck on connection conn, payload "<number>" unless given.
  Inbound frame(uint64_t conn, int32_t ck, uint64_t number, uint8_t flags = kFlagAtLeastOnce,
                int32_t topic_key = kTopicKey, const std::string* payload = nullptr) {
    payloads_.push_back(payload ? *payload : std::to_string(number));
    Inbound in;
    in.conn_id = conn;
    in.header.number_mess = number;
    in.header.connection_key = ck;
    in.header.topic_key = topic_key;
    in.header.flags = flags;
    in.header.data_len = uint32_t(payloads_.back().size());
    in.payload = payloads_.back().data();
    return in;
  }
  std::vector<Inbound> frames(uint64_t conn, int32_t ck, uint64_t first, uint64_t last) {
    std::vector<Inbound> out;
    for (uint64_t n = first; n <= last; ++n) out.push_back(frame(conn, ck, n));
    return out;
  }
  static Inbound closed(uint64_t conn) {
    Inbound in;
    in.conn_id = conn;
    in.closed = true;
    return in;
  }
  // Delivers the frames as one batch; returns the connections Delivery refused.
  size_t answered() const { return answers_.size(); }
  std::vector<uint64_t> deliver(const std::vector<Inbound>& items) {
    InboundBatch batch;
    batch.items = items;
    batch.bytes = items.size() * sizeof(Inbound);
    delivery_->deliver(batch);
    return batch.refused;
  }
  std::vector<std::string> data() const {
    std::vector<std::string> out;
    for (const auto& g : got) out.push_back(g.data);
    return out;
  }
  // "<from>:<data>" of every message handed to the callback, in order.
  std::vector<std::string> from_and_data() const {
    std::vector<std::string> out;
    for (const auto& g : got) out.push_back(g.from + ":" + g.data);
    return out;
  }
  size_t events(StatusKind kind, const std::string& containing = "") const {
    size_t n = 0;
    for (const auto& e : events_)
      if (e.kind == kind && e.message.find(containing) != std::string::npos) ++n;
    return n;
  }

 private:
  StatusSink status_;
  std::vector<StatusEvent> events_;  // emitted on the test's thread or the store worker's
  std::unique_ptr<Delivery> delivery_;
  std::vector<LookUpAnswer> answers_;
  std::deque<std::string> payloads_;  // stable addresses
  bool started_ = false;
};

std::vector<std::string> numbers(uint64_t first, uint64_t last) {
  std::vector<std::string> out;
  for (uint64_t n = first; n <= last; ++n) out.push_back(std::to_string(n));
  return out;
}

std::vector<Inbound> operator+(std::vector<Inbound> a, const std::vector<Inbound>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST(Delivery, DropsANumberItAlreadyDelivered) {
  Rig r;
  ASSERT_TRUE(r.start_with_alice());
  r.deliver(r.frames(1, 1, 1, 3));
  r.deliver(r.frames(1, 1, 2, 4));  // a sender resending what it still holds
  EXPECT_EQ(r.data(), numbers(1, 4));
  EXPECT_EQ(r.got[0].from, "alice");
  EXPECT_EQ(r.got[0].to, "topic");
  EXPECT_EQ(r.d().stats().duplicates, 2u);
  EXPECT_EQ(r.d().stats().delivered, 4u);
}

TEST(Delivery, ALowerNumberAfterAHigherOneIsADuplicate) {
  // Numbers only grow on a channel: one that goes back was delivered (or skipped) before.
  Rig r;
  ASSERT_TRUE(r.start_with_alice());
  r.deliver({r.frame(1, 1, 1), r.frame(1, 1, 3), r.frame(1, 1, 2), r.frame(1, 1, 4)});
  EXPECT_EQ(r.data(), (std::vector<std::string>{"1", "3", "4"}));
  EXPECT_EQ(r.d().stats().duplicates, 1u);
}

TEST(Delivery, StartsAfterTheNumberTheStoreHoldsAsAcknowledged) {
  Rig r;
  r.store->senders[1] = "alice";
  r.store->acks[1] = 5;
  r.start();
  ASSERT_TRUE(r.open(1, 1));
  r.deliver(r.frames(1, 1, 3, 7));
  EXPECT_EQ(r.data(), numbers(6, 7));
  EXPECT_EQ(r.d().stats().duplicates, 3u);
}

TEST(Delivery, KeepsOneBaselinePerChannel) {
  // Dedup is keyed by connection key: channel 2's numbers are not compared with channel 1's.
  Rig r;
  ASSERT_TRUE(r.start_with_alice(true));
  r.deliver({r.frame(1, 1, 1), r.frame(1, 1, 2), r.frame(2, 2, 1), r.frame(1, 1, 3), r.frame(2, 2, 2)});
  EXPECT_EQ(r.from_and_data(), (std::vector<std::string>{"alice:1", "alice:2", "bob:1", "alice:3", "bob:2"}));
  ASSERT_TRUE(r.settle([&] { return r.store->ack(1) == 3 && r.store->ack(2) == 2; }));
}

TEST(Delivery, WritesTheAckOnlyAfterTheCallbackReturned) {
  Rig r;
  r.store->senders[1] = "alice";
  std::atomic<uint64_t> returned{0};
  std::atomic<int> early{0};
  r.store->before_call = [&](Op op, int32_t, uint64_t number) {
    if (op == Op::ack_write && number > returned.load()) ++early;
  };
  uint64_t seen_in_callback = 0;
  r.on_receive = [&](const Got& g) {
    uint64_t n = std::stoull(g.data);
    // The ack covering this message is not in the store while its callback runs.
    EXPECT_LT(r.store->ack(1), n);
    seen_in_callback = n;
    returned = n;  // the callback's last act: any write posted from here on may cover it
  };
  r.start();
  ASSERT_TRUE(r.open(1, 1));
  for (uint64_t first = 1; first <= 40; first += 4) {
    r.deliver(r.frames(1, 1, first, first + 3));
    r.pump();
    r.d().tick();
  }
  ASSERT_TRUE(r.settle([&] { return r.store->ack(1) == 40; }));
  EXPECT_EQ(seen_in_callback, 40u);
  EXPECT_EQ(early.load(), 0) << "an ack was written for a message whose callback had not returned";
  // The counter only ever moves forward.
  uint64_t last = 0;
  for (const auto& c : r.store->calls) {
    if (c.op != Op::ack_write) continue;
    EXPECT_GE(c.number, last);
    last = c.number;
  }
}

TEST(Delivery, ASlowAckWriteHoldsBackNoDelivery) {
  Rig r;
  ASSERT_TRUE(r.start_with_alice());
  r.store->hold(Op::ack_write);
  r.deliver(r.frames(1, 1, 1, 3));
  ASSERT_TRUE(r.settle([&] { return r.store->waiting(Op::ack_write) == 1; }));
  r.deliver(r.frames(1, 1, 4, 6));  // the write has not returned
  EXPECT_EQ(r.data(), numbers(1, 6));
  EXPECT_EQ(r.store->ack(1), 0u);
  r.store->release(Op::ack_write);
  // What was delivered meanwhile is written once the write in flight is done.
  ASSERT_TRUE(r.settle([&] { return r.store->ack(1) == 6; }));
}

TEST(Delivery, RetriesAFailedAckWriteAndReportsIt) {
  Rig r;
  ASSERT_TRUE(r.start_with_alice());
  r.store->fail_next(Op::ack_write, 2);
  r.deliver(r.frames(1, 1, 1, 3));
  ASSERT_TRUE(r.settle([&] { return r.store->ack(1) == 3; }));
  EXPECT_GE(r.store->count(Op::ack_write, 1), 3u);
  EXPECT_EQ(r.events(StatusKind::listener_store_error), 1u);  // the same error twice: told once
}

TEST(Delivery, AReconnectBeforeTheAckIsWrittenDeliversNothingTwice) {
  // The channel's state outlives its connection until its acks are in the store: a sender that
  // reconnects and resends what the listener delivered but could not acknowledge yet gets no
  // duplicate, whatever the store's counter still says.
  Rig r;
  ASSERT_TRUE(r.start_with_alice());
  r.store->fail_next(Op::ack_write, 3);
  r.deliver(r.frames(1, 1, 1, 5) + std::vector<Inbound>{Rig::closed(1)});
  ASSERT_TRUE(r.settle([&] { return r.store->count(Op::ack_write) >= 1; }));
  ASSERT_TRUE(r.open(2, 1));
  r.deliver(r.frames(2, 1, 1, 7));
  EXPECT_EQ(r.data(), numbers(1, 7));
  ASSERT_TRUE(r.settle([&] { return r.store->ack(1) == 7; }));
}

TEST(Delivery, ASenderThatClearedItsChannelStartsOverOnceTheAcksAreWritten) {
  Rig r;
  ASSERT_TRUE(r.start_with_alice());
  r.deliver(r.frames(1, 1, 1, 5) + std::vector<Inbound>{Rig::closed(1)});
  ASSERT_TRUE(r.settle([&] { return r.store->ack(1) == 5; }));
  {
    auto l = r.store->lock();
    r.store->acks[1] = 0;  // clear_stored_messages: the counter starts over
  }
  ASSERT_TRUE(r.open(2, 1));
  r.deliver(r.frames(2, 1, 1, 2));
  EXPECT_EQ(r.data(), (std::vector<std::string>{"1", "2", "3", "4", "5", "1", "2"}));
}

TEST(Delivery, RefusesAnOversizeFrameAloneAcknowledgesAndReportsIt) {
  Rig r(1000);
  ASSERT_TRUE(r.start_with_alice());
  Inbound big = r.frame(1, 1, 2);
  big.oversize = true;  // the listener skipped its body
  big.payload = nullptr;
  big.header.data_len = 5000;
  auto refused = r.deliver({r.frame(1, 1, 1), big, r.frame(1, 1, 3)});
  EXPECT_TRUE(refused.empty()) << "an oversize message refuses itself, not its connection";
  EXPECT_EQ(r.data(), (std::vector<std::string>{"1", "3"}));
  EXPECT_EQ(r.d().stats().undecodable, 1u);
  ASSERT_TRUE(r.settle([&] { return r.store->ack(1) == 3 && r.store->reports_made().size() == 1; }));
  auto reports = r.store->reports_made();
  EXPECT_EQ(reports[0].ck, 1);
  EXPECT_EQ(reports[0].number, 2u);
  EXPECT_NE(reports[0].reason.find("5000"), std::string::npos) << reports[0].reason;
}

TEST(Delivery, RefusesAnUndecodableCompressedFrameAndDecompressesAGoodOne) {
  Rig r(1000);
  ASSERT_TRUE(r.start_with_alice());
  std::string garbage = "not a zstd frame";
  std::string good, bomb;
  ASSERT_TRUE(zstd_compress("hello", 5, good));
  std::string zeros(100000, '\0');  // decompresses past this receiver's 1,000 bytes
  ASSERT_TRUE(zstd_compress(zeros.data(), zeros.size(), bomb));
  uint8_t flags = kFlagAtLeastOnce | kFlagCompress;
  r.deliver({r.frame(1, 1, 1), r.frame(1, 1, 2, flags, kTopicKey, &garbage), r.frame(1, 1, 3, flags, kTopicKey, &good),
             r.frame(1, 1, 4, flags, kTopicKey, &bomb), r.frame(1, 1, 5)});
  EXPECT_EQ(r.data(), (std::vector<std::string>{"1", "hello", "5"}));
  EXPECT_EQ(r.d().stats().undecodable, 2u);
  ASSERT_TRUE(r.settle([&] { return r.store->ack(1) == 5 && r.store->reports_made().size() == 2; }));
  auto reports = r.store->reports_made();
  EXPECT_EQ(reports[0].number, 2u);
  EXPECT_EQ(reports[1].number, 4u);
}

TEST(Delivery, RefusesANumberFarAheadAndTheRestOfItsConnection) {
  Rig r;
  ASSERT_TRUE(r.start_with_alice(true));
  r.deliver({r.frame(1, 1, 1), r.frame(2, 2, 1)});
  // Channel 2 may jump exactly kMaxNumberJump; channel 1 one more is a forgery.
  auto refused = r.deliver({r.frame(1, 1, 2 + kMaxNumberJump), r.frame(1, 1, 2), r.frame(2, 2, 1 + kMaxNumberJump)});
  EXPECT_EQ(refused, std::vector<uint64_t>{1});
  refused = r.deliver({r.frame(1, 1, 3)});  // more of that connection before it is closed
  EXPECT_TRUE(refused.empty());
  EXPECT_EQ(r.from_and_data(), (std::vector<std::string>{"alice:1", "bob:1", "bob:" + std::to_string(1 + kMaxNumberJump)}));
  r.deliver({Rig::closed(1)});
  r.stop();
  EXPECT_EQ(r.store->ack(1), 1u) << "nothing after the forged number is acknowledged";
  EXPECT_EQ(r.store->ack(2), 1 + kMaxNumberJump);
}

TEST(Delivery, RefusesAnAtLeastOnceFrameForATopicItDoesNotServe) {
  Rig r;
  ASSERT_TRUE(r.start_with_alice());
  auto refused = r.deliver({r.frame(1, 1, 1), r.frame(1, 1, 2, kFlagAtLeastOnce, 99), r.frame(1, 1, 3)});
  EXPECT_EQ(refused, std::vector<uint64_t>{1});
  EXPECT_EQ(r.data(), numbers(1, 1));
  r.deliver({Rig::closed(1)});
  r.stop();
  EXPECT_EQ(r.store->ack(1), 1u) << "a message meant for someone else was acknowledged";
  EXPECT_EQ(r.events(StatusKind::peer_disconnected, "topic key 99 is not served here"), 1u);
}

TEST(Delivery, AcknowledgesAndDropsBestEffortAndUnsubscribedTopicFrames) {
  Rig r;
  r.store->senders[1] = "alice";
  r.d().set_topic(8, "left");
  r.d().remove_topic(8);  // deliberately unsubscribed: acked as liner_broker does
  r.start();
  ASSERT_TRUE(r.open(1, 1));
  auto refused = r.deliver({r.frame(1, 1, 1), r.frame(1, 1, 2, 0, 99), r.frame(1, 1, 3, kFlagAtLeastOnce, 8),
                            r.frame(1, 1, 4)});
  EXPECT_TRUE(refused.empty());
  EXPECT_EQ(r.data(), (std::vector<std::string>{"1", "4"}));
  EXPECT_EQ(r.d().stats().unknown_topic, 2u);
  r.deliver({r.frame(1, 1, 5, kFlagAtLeastOnce, 8)});  // the last one is a dropped one
  ASSERT_TRUE(r.settle([&] { return r.store->ack(1) == 5; }));
}

TEST(Delivery, RefusesAnUnknownConnectionKeyAndLeavesNoTrace) {
  Rig r;
  r.start();
  EXPECT_FALSE(r.open(1, 3));
  EXPECT_EQ(r.store->count(Op::read_ack, 3), 0u);
  r.stop();
  EXPECT_FALSE(r.store->has_ack(3));
  EXPECT_EQ(r.store->count(Op::ack_write), 0u);
  EXPECT_EQ(r.events(StatusKind::peer_disconnected, "unknown connection key 3"), 1u);
}

TEST(Delivery, RefusesAChannelWhoseCounterCannotBeRead) {
  // Without the counter, duplicates cannot be told apart: the sender must try again.
  Rig r;
  r.store->senders[1] = "alice";
  r.start();
  r.store->fail_next(Op::read_ack, 1);
  EXPECT_FALSE(r.open(1, 1));
  EXPECT_EQ(r.events(StatusKind::listener_store_error), 1u);
  EXPECT_TRUE(r.open(2, 1));  // the store answers again: the next connection goes through
}

TEST(Delivery, RewritesACounterThatIsNotANumber) {
  Rig r;
  r.store->senders[1] = "alice";
  r.store->unreadable_acks.insert(1);
  r.start();
  ASSERT_TRUE(r.open(1, 1));
  r.deliver(r.frames(1, 1, 1, 2));
  EXPECT_EQ(r.data(), numbers(1, 2));
  ASSERT_TRUE(r.settle([&] { return r.store->ack(1) == 2; }));
  EXPECT_EQ(r.events(StatusKind::listener_store_error, "is not a number"), 1u);
}

TEST(Delivery, ACallbackThatThrowsStillCountsItsMessageAsDelivered) {
  Rig r;
  r.on_receive = [](const Got& g) {
    if (g.data == "2") throw std::runtime_error("user bug");
  };
  ASSERT_TRUE(r.start_with_alice());
  r.deliver(r.frames(1, 1, 1, 3));
  r.deliver(r.frames(1, 1, 2, 2));
  EXPECT_EQ(r.data(), numbers(1, 3));
  ASSERT_TRUE(r.settle([&] { return r.store->ack(1) == 3; }));
}

TEST(Delivery, StopWritesTheFinalAcks) {
  Rig r;
  ASSERT_TRUE(r.start_with_alice());
  r.deliver(r.frames(1, 1, 1, 3));
  r.stop();
  EXPECT_EQ(r.store->ack(1), 3u);
}

TEST(Delivery, BoundsTheLookUpsWaitingForTheStore) {
  Rig r;
  r.store->senders[1] = "alice";
  r.start();
  r.store->hold(Op::sender_topic);
  for (uint64_t conn = 1; conn <= Delivery::kMaxLookUps; ++conn) ASSERT_TRUE(r.d().look_up(1, conn)) << conn;
  EXPECT_FALSE(r.d().look_up(1, Delivery::kMaxLookUps + 1));
  EXPECT_EQ(r.events(StatusKind::peer_disconnected, "too many channel look-ups"), 1u);
  r.store->release(Op::sender_topic);
  ASSERT_TRUE(r.settle([&] { return r.answered() == Delivery::kMaxLookUps; }));
  EXPECT_TRUE(r.open(Delivery::kMaxLookUps + 2, 1));  // room again once they were answered
}

TEST(Delivery, CapsItsBatchBudget) {
  EXPECT_EQ(Rig(1 << 20, 0).d().max_batch_bytes(), size_t(1) << 20);
  EXPECT_EQ(Rig(1 << 20, 4096).d().max_batch_bytes(), 4096u);
  EXPECT_EQ(Rig(1 << 20, size_t(64) << 20).d().max_batch_bytes(), size_t(1) << 20);
}
