// Listener + Delivery over real loopback TCP against a fake store that can be slow or fail: a
// slow store must never stall delivery. A channel look-up that takes 1.5 s holds back its own
// connection only; slow ack writes and refusal reports hold back nothing; an unknown key closes
// its connection alone and leaves nothing behind; a failed ack write is retried and reported.
// The fake store counts the slow calls in progress, so "delivered meanwhile" is checked as a
// fact (the call had not returned yet), not as a tight time.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/delivery.hpp"
#include "core/frame.hpp"
#include "core/listener.hpp"
#include "core/net.hpp"
#include "test_support.hpp"
#include "unused_store.hpp"

using namespace liner;
using testing_support::wait_for;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr int32_t kTopicKey = 7;
constexpr auto kSlow = milliseconds(1500);

// What the fake store holds and how it behaves, shared by the test and the store worker.
struct StoreState {
  std::mutex mu;
  std::map<int32_t, std::string> senders;    // lnr_connection:{ck}:sender
  std::map<int32_t, uint64_t> acks;          // lnr_connection:{ck}:mess_number
  std::map<int32_t, milliseconds> slow_look_up;  // sender_topic of these cks takes this long
  milliseconds slow_write{0};                // every set_last_mess_number takes this long
  milliseconds slow_report{0};               // every report_refused takes this long
  int failing_writes = 0;                    // the next this many writes fail
  int write_calls = 0;
  std::vector<int32_t> acks_read;            // cks whose counter was read
  std::vector<std::pair<int32_t, uint64_t>> reports;  // report_refused calls
  std::atomic<int> slow_calls{0};            // slow calls in progress now

  uint64_t ack(int32_t ck) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = acks.find(ck);
    return it == acks.end() ? 0 : it->second;
  }
};

class FakeStore final : public testing_support::UnusedStore {
 public:
  explicit FakeStore(std::shared_ptr<StoreState> s) : s_(std::move(s)) {}

  Status sender_topic(int32_t ck, std::string* topic, bool* found) override {
    milliseconds delay{0};
    {
      std::lock_guard<std::mutex> lock(s_->mu);
      auto it = s_->slow_look_up.find(ck);
      if (it != s_->slow_look_up.end()) delay = it->second;
    }
    pause(delay);
    std::lock_guard<std::mutex> lock(s_->mu);
    auto it = s_->senders.find(ck);
    *found = it != s_->senders.end();
    if (*found) *topic = it->second;
    return Status();
  }
  Status read_ack(int32_t ck, bool create, AckCounter* out) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->acks_read.push_back(ck);
    *out = AckCounter();
    auto it = s_->acks.find(ck);
    out->existed = it != s_->acks.end();
    if (out->existed) out->number = it->second;
    else if (create) s_->acks[ck] = 0;
    return Status();
  }
  Status set_last_mess_number(int32_t ck, uint64_t number) override {
    milliseconds delay;
    {
      std::lock_guard<std::mutex> lock(s_->mu);
      ++s_->write_calls;
      delay = s_->slow_write;
    }
    pause(delay);
    std::lock_guard<std::mutex> lock(s_->mu);
    if (s_->failing_writes > 0) {
      --s_->failing_writes;
      return Status(Err::store, "redis did not answer");
    }
    s_->acks[ck] = number;
    return Status();
  }
  Status report_refused(int32_t ck, uint64_t number, const std::string&) override {
    milliseconds delay;
    {
      std::lock_guard<std::mutex> lock(s_->mu);
      delay = s_->slow_report;
    }
    pause(delay);
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->reports.push_back({ck, number});
    return Status();
  }

 private:
  void pause(milliseconds delay) {
    if (delay.count() == 0) return;
    ++s_->slow_calls;
    std::this_thread::sleep_for(delay);
    --s_->slow_calls;
  }
  std::shared_ptr<StoreState> s_;
};

struct Received {
  std::string from;
  std::string data;  // "<ck>:<number>"
  bool during_slow_call;  // a slow store call had not returned when it was delivered
  uint64_t number() const { return std::stoull(data.substr(data.find(':') + 1)); }
};

// A Listener and its Delivery on 127.0.0.1, serving topic key 7, over a FakeStore.
class Harness {
 public:
  explicit Harness(std::shared_ptr<StoreState> state, size_t max_message = 1 << 20)
      : state_(std::move(state)), status_(nullptr) {
    status_.set([this](const StatusEvent& e) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(e);
    });
    delivery_ = std::make_unique<Delivery>(
        std::make_unique<FakeStore>(state_),
        [this](const std::string&, const std::string& from, const char* data, size_t size) {
          {
            std::lock_guard<std::mutex> lock(mu_);
            received_.push_back({from, std::string(data, size), state_->slow_calls.load() > 0});
          }
          if (from == slow_consumer_of) std::this_thread::sleep_for(milliseconds(500));
        },
        nullptr, 0, max_message, &status_);
    delivery_->set_topic(kTopicKey, "topic");
    listener_ = std::make_unique<Listener>(delivery_.get(), uint32_t(max_message + kBodyHeaderSize));
    EXPECT_TRUE(listener_->bind("127.0.0.1:0", &addr_).ok());
    EXPECT_TRUE(delivery_->start().ok());
    EXPECT_TRUE(listener_->start().ok());
  }
  ~Harness() { stop(); }

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
  std::shared_ptr<StoreState> state_;
  StatusSink status_;
  std::unique_ptr<Delivery> delivery_;
  std::unique_ptr<Listener> listener_;
  std::string addr_;
  std::mutex mu_;
  std::vector<Received> received_;
  std::vector<StatusEvent> events_;
};

// A sender's connection: at-least-once frames of one channel, payload "<ck>:<number>".
class Peer {
 public:
  Peer(int port, int32_t ck) : ck_(ck) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(uint16_t(port));
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Peer() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  static std::string payload(int32_t ck, uint64_t number) {
    return std::to_string(ck) + ":" + std::to_string(number);
  }
  // Frames numbered first..last of channel ck, payloads padded with `pad` bytes.
  static std::string frames(int32_t ck, uint64_t first, uint64_t last, size_t pad = 0) {
    std::string out;
    for (uint64_t n = first; n <= last; ++n) {
      FrameHeader h;
      h.number_mess = n;
      h.connection_key = ck;
      h.topic_key = kTopicKey;
      h.flags = kFlagAtLeastOnce;
      std::string data = payload(ck, n) + std::string(pad, '.');
      encode_frame(out, h, data.data(), data.size());
    }
    return out;
  }
  void write(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      ASSERT_GT(n, 0);
      done += size_t(n);
    }
  }
  // Sends frames numbered first..last of this peer's channel.
  void send(uint64_t first, uint64_t last, size_t pad = 0) { write(frames(ck_, first, last, pad)); }
  // True once the listener closed this connection (EOF or reset), within `timeout`.
  bool closed_by_listener(milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, int(left.count())) <= 0) continue;
      char c;
      ssize_t n = ::recv(fd_, &c, 1, 0);
      if (n <= 0) return true;  // the listener never writes: anything readable is the end
    }
  }

 private:
  int fd_ = -1;
  int32_t ck_;
};

std::vector<std::string> numbered(int32_t ck, uint64_t first, uint64_t last) {
  std::vector<std::string> out;
  for (uint64_t n = first; n <= last; ++n) out.push_back(Peer::payload(ck, n));
  return out;
}

std::shared_ptr<StoreState> store_with_senders(const std::map<int32_t, std::string>& senders) {
  auto s = std::make_shared<StoreState>();
  s->senders = senders;
  return s;
}

}  // namespace

TEST(ListenerSlowStore, ASlowLookUpHoldsBackItsOwnConnectionOnly) {
  auto store = store_with_senders({{1, "fast"}, {2, "slow"}});
  store->slow_look_up[2] = kSlow;
  Harness h(store);
  Peer fast(h.port(), 1);
  fast.send(1, 1);
  ASSERT_TRUE(wait_for([&] { return h.count_from("fast") == 1; }, milliseconds(5000)));

  Peer slow(h.port(), 2);
  slow.send(1, 3);
  ASSERT_TRUE(wait_for([&] { return store->slow_calls.load() > 0; }, milliseconds(5000)));
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
  auto store = store_with_senders({{1, "one"}, {4, "four"}, {6, "six"}});
  store->slow_look_up[4] = milliseconds(300);
  store->slow_look_up[6] = milliseconds(300);
  Harness h(store);
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
  auto store = store_with_senders({{1, "known"}});
  store->slow_look_up[3] = kSlow;  // and unknown
  Harness h(store);
  Peer known(h.port(), 1);
  known.send(1, 1);
  ASSERT_TRUE(wait_for([&] { return h.count_from("known") == 1; }, milliseconds(5000)));

  Peer forged(h.port(), 3);
  forged.send(1, 5);
  ASSERT_TRUE(wait_for([&] { return store->slow_calls.load() > 0; }, milliseconds(5000)));
  known.send(2, 20);
  ASSERT_TRUE(wait_for([&] { return h.count_from("known") == 20; }, milliseconds(5000)));
  EXPECT_EQ(h.delivered_outside_slow_calls("known", 2), std::vector<std::string>());

  EXPECT_TRUE(forged.closed_by_listener(milliseconds(10000)));
  known.send(21, 30);  // the known connection is still served
  ASSERT_TRUE(wait_for([&] { return h.count_from("known") == 30; }, milliseconds(5000)));
  ASSERT_TRUE(wait_for([&] { return store->ack(1) == 30; }, milliseconds(5000)));
  h.stop();
  EXPECT_EQ(h.stats().delivered, 30u);
  std::lock_guard<std::mutex> lock(store->mu);
  EXPECT_EQ(store->acks.count(3), 0u) << "an ack for a key the store does not know";
  for (int32_t ck : store->acks_read) EXPECT_NE(ck, 3);
  auto refused = 0;
  for (const auto& e : h.events(StatusKind::peer_disconnected))
    if (e.message.find("connection refused: unknown connection key 3") != std::string::npos) ++refused;
  EXPECT_EQ(refused, 1);
}

TEST(ListenerSlowStore, SlowAckWritesDoNotDelayDelivery) {
  auto store = store_with_senders({{1, "a"}});
  Harness h(store);
  Peer a(h.port(), 1);
  a.send(1, 10);
  ASSERT_TRUE(wait_for([&] { return store->ack(1) == 10; }, milliseconds(5000)));
  {
    std::lock_guard<std::mutex> lock(store->mu);
    store->slow_write = kSlow;
  }
  a.send(11, 20);  // their ack write starts soon after and takes 1.5 s
  ASSERT_TRUE(wait_for([&] { return store->slow_calls.load() > 0; }, milliseconds(5000)));
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
  auto store = store_with_senders({{1, "a"}});
  store->failing_writes = 3;
  Harness h(store);
  Peer a(h.port(), 1);
  a.send(1, 10);
  ASSERT_TRUE(wait_for([&] { return store->ack(1) == 10; }, milliseconds(10000)));
  // Reported once: the same error again within its pause is held back (StatusSink), so that a
  // retry loop cannot flood the status handler.
  EXPECT_EQ(h.events(StatusKind::listener_store_error).size(), 1u);
  std::lock_guard<std::mutex> lock(store->mu);
  // Retried after a gap (kAckRetryGap), not in a tight loop.
  EXPECT_LE(store->write_calls, 6);
}

TEST(ListenerSlowStore, ALookUpOlderThanAnAckWriteDoesNotRewindTheChannel) {
  auto store = store_with_senders({{1, "a"}, {3, "blocker"}});
  store->slow_look_up[3] = kSlow;
  Harness h(store);
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
  ASSERT_TRUE(wait_for([&] { return store->slow_calls.load() > 0; }, milliseconds(5000)));
  Peer again(h.port(), 1);
  again.send(1, 10);  // resends what it holds: 1..10
  std::this_thread::sleep_for(milliseconds(100));  // its look-up is posted (nothing to wait on)
  a.send(3, 5);
  ASSERT_TRUE(wait_for([&] { return h.count_from("a") == 5; }, milliseconds(5000)));
  ASSERT_GT(store->slow_calls.load(), 0) << "the machine was too slow for this test's order";
  ASSERT_TRUE(wait_for([&] { return h.count_from("a") >= 10; }, milliseconds(10000)));
  std::this_thread::sleep_for(milliseconds(100));
  // 3..5 are not delivered a second time: the stale 2 is not taken for a sender starting over.
  EXPECT_EQ(h.from("a"), numbered(1, 1, 10));
  ASSERT_TRUE(wait_for([&] { return store->ack(1) == 10; }, milliseconds(5000)));
}

TEST(ListenerSlowStore, ASlowRefusalReportDoesNotDelayDelivery) {
  auto store = store_with_senders({{1, "a"}});
  store->slow_report = kSlow;
  Harness h(store, 1000);  // messages above 1,000 bytes are refused
  Peer a(h.port(), 1);
  a.send(1, 1);
  ASSERT_TRUE(wait_for([&] { return h.count_from("a") == 1; }, milliseconds(5000)));
  a.send(2, 2, 5000);  // refused alone, reported to its sender through the store
  ASSERT_TRUE(wait_for([&] { return store->slow_calls.load() > 0; }, milliseconds(5000)));
  a.send(3, 10);
  ASSERT_TRUE(wait_for([&] { return h.count_from("a") == 9; }, milliseconds(5000)));
  EXPECT_EQ(h.delivered_outside_slow_calls("a", 3), std::vector<std::string>());
  ASSERT_TRUE(wait_for([&] { return store->ack(1) == 10; }, milliseconds(10000)));
  std::lock_guard<std::mutex> lock(store->mu);
  ASSERT_EQ(store->reports.size(), 1u);
  EXPECT_EQ(store->reports[0], std::make_pair(int32_t(1), uint64_t(2)));
}

TEST(ListenerSlowStore, StopWritesTheFinalAcksBehindASlowWrite) {
  auto store = store_with_senders({{1, "a"}});
  Harness h(store);
  Peer a(h.port(), 1);
  a.send(1, 5);
  ASSERT_TRUE(wait_for([&] { return store->ack(1) == 5; }, milliseconds(5000)));
  {
    std::lock_guard<std::mutex> lock(store->mu);
    store->slow_write = milliseconds(500);
  }
  a.send(6, 10);
  ASSERT_TRUE(wait_for([&] { return store->slow_calls.load() > 0; }, milliseconds(5000)));
  a.send(11, 20);
  ASSERT_TRUE(wait_for([&] { return h.count_from("a") == 20; }, milliseconds(5000)));
  h.stop();  // a write is in flight: the final one follows it
  EXPECT_EQ(store->ack(1), 20u);
}
