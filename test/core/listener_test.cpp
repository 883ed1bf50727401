// Listener (native/core/listener.hpp) with its Delivery over a FakeStore, fed by fake peers on
// real loopback sockets: frames reach delivery in order however TCP splits them; an invalid
// frame, a stalled frame or a stream that ends mid-frame closes that connection only; an
// oversize frame is skipped and the stream goes on; the connection cap refuses the extra
// connection; idle connections are closed; a consumer that does not keep up pushes back on
// the sender through TCP.
#include "core/listener.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "core/delivery.hpp"
#include "core/frame.hpp"
#include "fake_peer.hpp"
#include "fake_store.hpp"
#include "test_support.hpp"

using namespace liner;
using testing_support::FakePeer;
using testing_support::FakeStore;
using testing_support::wait_for;
using Op = testing_support::FakeStore::Op;
using std::chrono::milliseconds;

namespace {

constexpr int32_t kTopicKey = 7;
constexpr auto kWait = milliseconds(10000);

struct Knobs {
  size_t max_message = 1 << 20;
  size_t max_batch = 0;
  milliseconds stall = milliseconds(10000);
  ListenerOptions options;
};

// A Listener and its Delivery on 127.0.0.1:0, serving topic key 7; senders 1..9 are known to
// the store as "s<ck>".
class Harness {
 public:
  explicit Harness(Knobs setup = Knobs()) : status_(nullptr) {
    delivery_ = std::make_unique<Delivery>(
        FakeStore::make(&store),
        [this](const std::string&, const std::string& from, const char* data, size_t size) {
          std::unique_lock<std::mutex> lock(mu_);
          received_.push_back(from + "/" + std::string(data, size).substr(0, std::string(data, size).find('.')));
          cv_.wait(lock, [this] { return !gate_closed_; });
        },
        nullptr, setup.max_batch, setup.max_message, &status_);
    for (int32_t ck = 1; ck <= 9; ++ck) store->senders[ck] = "s" + std::to_string(ck);
    delivery_->set_topic(kTopicKey, "topic");
    listener_ = std::make_unique<Listener>(delivery_.get(), uint32_t(setup.max_message + kBodyHeaderSize),
                                           setup.stall, setup.options);
    std::string addr;
    EXPECT_TRUE(listener_->bind("127.0.0.1:0", &addr).ok());
    port_ = std::stoi(addr.substr(addr.rfind(':') + 1));
    EXPECT_TRUE(delivery_->start().ok());
    EXPECT_TRUE(listener_->start().ok());
  }
  ~Harness() {
    open_gate();
    listener_->stop();
    delivery_->stop();
    listener_->close_connections();
  }

  FakeStore* store = nullptr;  // owned by the delivery
  Listener& listener() { return *listener_; }
  Delivery& delivery() { return *delivery_; }
  int port() const { return port_; }

  // The receive callback waits while the gate is closed (a consumer that does not keep up).
  void close_gate() {
    std::lock_guard<std::mutex> lock(mu_);
    gate_closed_ = true;
  }
  void open_gate() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      gate_closed_ = false;
    }
    cv_.notify_all();
  }
  // "<from>/<ck>:<number>" of every message delivered, in order.
  std::vector<std::string> received() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  size_t count() { return received().size(); }

 private:
  StatusSink status_;
  std::unique_ptr<Delivery> delivery_;
  std::unique_ptr<Listener> listener_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool gate_closed_ = false;
  std::vector<std::string> received_;
};

std::vector<std::string> expected(int32_t ck, uint64_t first, uint64_t last) {
  std::vector<std::string> out;
  for (uint64_t n = first; n <= last; ++n) out.push_back("s" + std::to_string(ck) + "/" + FakePeer::payload(ck, n));
  return out;
}

// A frame body of `body_len` (prefix) holding `data_len` as its data length.
std::string raw_frame(uint32_t body_len, uint32_t data_len, size_t bytes_after_prefix) {
  std::string out(4 + bytes_after_prefix, '\0');
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) out[at + i] = char(v >> (24 - 8 * i));
  };
  put32(0, body_len);
  if (bytes_after_prefix >= 21) {
    out[4 + 7] = 1;   // number_mess 1
    out[4 + 11] = 1;  // ck 1
    out[4 + 15] = char(kTopicKey);
    put32(4 + 17, data_len);
  }
  return out;
}

}  // namespace

TEST(Listener, PassesFramesOnInOrderHoweverTheStreamIsSplit) {
  Harness h;
  FakePeer p(h.port(), 1, kTopicKey);
  std::string stream = p.frames(1, 200) + p.frames(201, 201, 300 * 1024) + p.frames(202, 400);
  std::mt19937 rng(7);
  for (size_t at = 0; at < stream.size();) {
    size_t n = std::min<size_t>(stream.size() - at, 1 + rng() % (at < 20000 ? 97 : 65536));
    p.write(stream.substr(at, n));
    at += n;
  }
  ASSERT_TRUE(wait_for([&] { return h.count() == 400; }, kWait));
  EXPECT_EQ(h.received(), expected(1, 1, 400));
  ASSERT_TRUE(wait_for([&] { return h.store->ack(1) == 400; }, kWait));
  EXPECT_TRUE(p.open_now());
  EXPECT_EQ(h.listener().rejected_connections(), 0u);
}

TEST(Listener, AFrameShorterThanItsHeaderClosesItsConnectionOnly) {
  Harness h;
  FakePeer bad(h.port(), 1, kTopicKey), good(h.port(), 2, kTopicKey);
  bad.send(1, 2);
  good.send(1, 1);
  ASSERT_TRUE(wait_for([&] { return h.count() == 3; }, kWait));
  bad.write(raw_frame(5, 0, 5));
  EXPECT_TRUE(bad.closed_by_listener(kWait));
  good.send(2, 3);
  ASSERT_TRUE(wait_for([&] { return h.count() == 5; }, kWait));
  EXPECT_TRUE(good.open_now());
  EXPECT_EQ(h.listener().rejected_connections(), 1u);
  ASSERT_TRUE(wait_for([&] { return h.store->ack(1) == 2 && h.store->ack(2) == 3; }, kWait));
}

TEST(Listener, ADataLengthPastItsBodyClosesTheConnection) {
  Harness h;
  FakePeer bad(h.port(), 1, kTopicKey);
  bad.send(1, 1);
  ASSERT_TRUE(wait_for([&] { return h.count() == 1; }, kWait));
  bad.write(raw_frame(30, 100, 30));
  EXPECT_TRUE(bad.closed_by_listener(kWait));
  EXPECT_EQ(h.listener().rejected_connections(), 1u);
  EXPECT_EQ(h.count(), 1u);
}

TEST(Listener, ALengthAboveTheProtocolMaximumClosesTheConnection) {
  Harness h;
  FakePeer zero(h.port(), 1, kTopicKey), huge(h.port(), 2, kTopicKey);
  zero.write(raw_frame(0, 0, 0));
  huge.write(raw_frame(kDefaultMaxBodySize + 1, 0, 21));
  EXPECT_TRUE(zero.closed_by_listener(kWait));
  EXPECT_TRUE(huge.closed_by_listener(kWait));
  EXPECT_EQ(h.listener().rejected_connections(), 2u);
  EXPECT_EQ(h.count(), 0u);
}

TEST(Listener, SkipsAnOversizeFrameAndGoesOnWithTheStream) {
  Knobs s;
  s.max_message = 1000;
  Harness h(s);
  FakePeer p(h.port(), 1, kTopicKey);
  p.write(p.frames(1, 1) + p.frames(2, 2, 200 * 1024) + p.frames(3, 4));
  ASSERT_TRUE(wait_for([&] { return h.count() == 3; }, kWait));
  EXPECT_EQ(h.received(), (std::vector<std::string>{"s1/1:1", "s1/1:3", "s1/1:4"}));
  ASSERT_TRUE(wait_for([&] { return h.store->ack(1) == 4 && h.store->reports_made().size() == 1; }, kWait));
  EXPECT_EQ(h.store->reports_made()[0].number, 2u);
  EXPECT_TRUE(p.open_now());
  EXPECT_EQ(h.listener().rejected_connections(), 0u);
}

TEST(Listener, AStreamThatEndsMidFrameIsRejectedAndOneThatEndsCleanlyIsNot) {
  Harness h;
  FakePeer clean(h.port(), 1, kTopicKey), cut(h.port(), 2, kTopicKey);
  clean.send(1, 2);
  cut.send(1, 1);
  ASSERT_TRUE(wait_for([&] { return h.count() == 3; }, kWait));
  clean.close();
  ASSERT_TRUE(wait_for([&] { return h.store->ack(1) == 2; }, kWait));
  std::string frame = cut.frames(2, 2);
  cut.write(frame.substr(0, frame.size() / 2));
  ::shutdown(cut.fd(), SHUT_WR);
  EXPECT_TRUE(cut.closed_by_listener(kWait));
  ASSERT_TRUE(wait_for([&] { return h.listener().rejected_connections() == 1; }, kWait));
  EXPECT_EQ(h.count(), 3u);
}

TEST(Listener, ClosesAFrameThatStallsButNotAQuietConnection) {
  Knobs s;
  s.stall = milliseconds(200);
  s.options.idle_timeout = milliseconds(0);  // quiet connections are never closed
  Harness h(s);
  FakePeer quiet(h.port(), 1, kTopicKey), stalled(h.port(), 2, kTopicKey);
  quiet.send(1, 1);
  stalled.send(1, 1);
  ASSERT_TRUE(wait_for([&] { return h.count() == 2; }, kWait));
  std::string frame = stalled.frames(2, 2);
  stalled.write(frame.substr(0, frame.size() - 3));
  EXPECT_TRUE(stalled.closed_by_listener(kWait));
  // The quiet one has carried nothing for at least as long.
  EXPECT_TRUE(quiet.open_now());
  EXPECT_EQ(h.listener().rejected_connections(), 1u);
  EXPECT_EQ(h.listener().idle_closed_connections(), 0u);
  quiet.send(2, 2);
  ASSERT_TRUE(wait_for([&] { return h.count() == 3; }, kWait));
}

TEST(Listener, ClosesAnIdleConnectionAndWritesItsAcks) {
  Knobs s;
  s.options.idle_timeout = milliseconds(200);
  Harness h(s);
  FakePeer p(h.port(), 1, kTopicKey);
  p.send(1, 3);
  EXPECT_TRUE(p.closed_by_listener(kWait));
  EXPECT_EQ(h.received(), expected(1, 1, 3));
  // Counted just after the close (the peer may see it first).
  EXPECT_TRUE(wait_for([&] { return h.listener().idle_closed_connections() == 1; }, kWait));
  EXPECT_EQ(h.listener().rejected_connections(), 0u);
  ASSERT_TRUE(wait_for([&] { return h.store->ack(1) == 3; }, kWait));
}

TEST(Listener, RefusesAConnectionOverTheCapAndServesTheOthers) {
  Knobs s;
  s.options.max_connections = 2;
  Harness h(s);
  EXPECT_EQ(h.listener().max_connections(), 2u);
  auto a = std::make_unique<FakePeer>(h.port(), 1, kTopicKey);
  FakePeer b(h.port(), 2, kTopicKey);
  a->send(1, 1);
  b.send(1, 1);
  ASSERT_TRUE(wait_for([&] { return h.count() == 2; }, kWait));
  FakePeer c(h.port(), 3, kTopicKey);  // the kernel accepts it; the listener resets it
  EXPECT_TRUE(c.closed_by_listener(kWait));
  // Counted just after the close (the peer may see the reset first).
  EXPECT_TRUE(wait_for([&] { return h.listener().rejected_connections() == 1; }, kWait));
  b.send(2, 2);
  ASSERT_TRUE(wait_for([&] { return h.count() == 3; }, kWait));
  // A closed connection frees its place: once the listener has seen a's end, d is served.
  a.reset();
  ASSERT_TRUE(wait_for([&] { return h.store->count(Op::ack_write, 1) > 0 && h.store->ack(1) == 1; }, kWait));
  bool served = wait_for([&] {
    FakePeer d(h.port(), 4, kTopicKey);
    d.send(1, 1);
    return wait_for([&] { return h.count() == 4; }, milliseconds(300));
  }, kWait);
  EXPECT_TRUE(served);
}

TEST(Listener, AConsumerThatDoesNotKeepUpPushesBackOnTheSender) {
  Knobs s;
  s.max_batch = 64 * 1024;
  Harness h(s);
  FakePeer p(h.port(), 1, kTopicKey);
  p.send(1, 1);
  ASSERT_TRUE(wait_for([&] { return h.count() == 1; }, kWait));
  h.close_gate();  // the callback of message 2 does not return
  // 1 KiB messages, up to 256 MiB: the sender's socket fills up long before.
  const uint64_t last = 256 * 1024;
  std::string chunk;
  uint64_t next = 2;
  size_t written = 0;
  bool pushed_back = false;
  while (next <= last) {
    std::string frames = p.frames(next, std::min(last, next + 999), 1000);
    size_t n = p.write_some(frames);
    written += n;
    if (n < frames.size()) {  // the socket is full: keep the rest for later
      chunk = frames.substr(n);
      next = std::min(last, next + 999) + 1;
      pushed_back = true;
      break;
    }
    next = std::min(last, next + 999) + 1;
  }
  ASSERT_TRUE(pushed_back) << "wrote " << written << " bytes without the listener pushing back";
  EXPECT_LT(written, size_t(64) << 20);
  // What the listener holds while its consumer is stuck stays near its batch budget (a read
  // burst of 1 MiB may complete a batch), whatever the sender has waiting.
  EXPECT_LE(h.delivery().stats().queued_bytes, size_t(4) << 20);
  h.open_gate();
  p.write(chunk);
  ASSERT_TRUE(wait_for([&] { return h.count() == next - 1; }, kWait));
  EXPECT_EQ(h.received(), expected(1, 1, next - 1));
}
