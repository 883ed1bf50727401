// The liner_broker 1.4 extensions of include/liner.h, each with its error paths: version and
// last-error codes, stop/is_running, status events (within a second, sender and listener side,
// including a SIGKILLed peer in a child process), the log sink, list_addresses, pending queues,
// limits (max message size on both sides, busy and writable), advertise/published addresses and
// stats.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "liner.h"
#include "test_support.hpp"

using testing_support::redis;
using testing_support::RedisServer;
using testing_support::wait_for;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

constexpr auto kLatency = milliseconds(1000);  // status events: within a second (issue 6)
constexpr size_t kDefaultMaxMessage = (size_t(1) << 30) - 21;

// ---- receiving -------------------------------------------------------------------------------

struct Inbox {
  std::mutex mu;
  std::vector<std::tuple<std::string, std::string, std::string>> got;  // to, from, data
  size_t size() {
    std::lock_guard<std::mutex> l(mu);
    return got.size();
  }
  std::vector<std::string> payloads() {
    std::lock_guard<std::mutex> l(mu);
    std::vector<std::string> out;
    for (auto& g : got) out.push_back(std::get<2>(g));
    return out;
  }
  bool wait_count(size_t n, milliseconds timeout = seconds(10)) {
    return wait_for([&] { return size() >= n; }, timeout);
  }
};

void on_receive(const char* to, const char* from, const char* data, size_t size, lnr_uData ud) {
  auto* in = static_cast<Inbox*>(ud);
  std::lock_guard<std::mutex> l(in->mu);
  in->got.emplace_back(to, from, std::string(data, size));
}

void ignore(const char*, const char*, const char*, size_t, lnr_uData) {}

// ---- status events ---------------------------------------------------------------------------

struct Event {
  Clock::time_point at;
  int kind;
  std::string topic, peer, message;
};

std::ostream& operator<<(std::ostream& os, const Event& e) {
  return os << "{kind " << e.kind << ", topic '" << e.topic << "', peer '" << e.peer << "', '"
            << e.message << "'}";
}

struct EventLog {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Event> events;

  // The first event of `kind` (and topic/peer unless nullptr) at or after `since`.
  bool wait(int kind, const char* topic, const char* peer, Clock::time_point since, Event* out,
            milliseconds timeout = seconds(10)) {
    std::unique_lock<std::mutex> l(mu);
    auto deadline = Clock::now() + timeout;
    for (;;) {
      for (const auto& e : events)
        if (e.kind == kind && e.at >= since && (!topic || e.topic == topic) && (!peer || e.peer == peer)) {
          if (out) *out = e;
          return true;
        }
      if (cv.wait_until(l, deadline) == std::cv_status::timeout && Clock::now() >= deadline) return false;
    }
  }
  size_t count(int kind, const char* topic = nullptr) {
    std::lock_guard<std::mutex> l(mu);
    return size_t(std::count_if(events.begin(), events.end(), [&](const Event& e) {
      return e.kind == kind && (!topic || e.topic == topic);
    }));
  }
  std::vector<Event> snapshot() {
    std::lock_guard<std::mutex> l(mu);
    return events;
  }
  std::string dump() {
    std::ostringstream os;
    for (const auto& e : snapshot()) os << e << " ";
    return os.str();
  }
};

void on_status(int kind, const char* topic, const char* peer, const char* message, lnr_uData ud) {
  auto* log = static_cast<EventLog*>(ud);
  std::lock_guard<std::mutex> l(log->mu);
  log->events.push_back({Clock::now(), kind, topic, peer, message});
  log->cv.notify_all();
}

// Asserts that an event matching the arguments arrives, no later than kLatency after `done`.
::testing::AssertionResult event_within(EventLog& log, int kind, const char* topic, const char* peer,
                                        Clock::time_point since, Clock::time_point done) {
  Event e;
  if (!log.wait(kind, topic, peer, since, &e))
    return ::testing::AssertionFailure() << "no event of kind " << kind << " for topic '"
                                         << (topic ? topic : "*") << "' peer '" << (peer ? peer : "*")
                                         << "'; got: " << log.dump();
  if (e.at - done > kLatency)
    return ::testing::AssertionFailure()
           << e << " came " << std::chrono::duration_cast<milliseconds>(e.at - done).count()
           << " ms after the action";
  if (e.message.empty()) return ::testing::AssertionFailure() << e << " has no message";
  return ::testing::AssertionSuccess();
}

// ---- helpers ---------------------------------------------------------------------------------

std::string str(const char* s) { return s ? s : "(null)"; }

std::string port_of(const std::string& addr) { return addr.substr(addr.rfind(':') + 1); }

std::string loopback(int port) { return "127.0.0.1:" + std::to_string(port); }

using Rows = std::vector<std::pair<std::string, std::string>>;

// HGETALL as sorted (field, value) pairs.
Rows hgetall(const RedisServer& r, const std::string& key) {
  std::string out = r.cli({"HGETALL", key});
  std::vector<std::string> lines;
  for (size_t p = 0; !out.empty() && p <= out.size();) {
    size_t e = out.find('\n', p);
    lines.push_back(out.substr(p, e == std::string::npos ? std::string::npos : e - p));
    if (e == std::string::npos) break;
    p = e + 1;
  }
  std::vector<std::pair<std::string, std::string>> rows;
  for (size_t i = 0; i + 1 < lines.size(); i += 2) rows.emplace_back(lines[i], lines[i + 1]);
  std::sort(rows.begin(), rows.end());
  return rows;
}

void collect_addr(const char* addr, const char* unique, lnr_uData ud) {
  static_cast<std::vector<std::pair<std::string, std::string>>*>(ud)->emplace_back(addr, unique);
}

using PendingRow = std::tuple<std::string, std::string, std::string, long long>;
void collect_pending(const char* addr, const char* topic, const char* unique, long long count, lnr_uData ud) {
  static_cast<std::vector<PendingRow>*>(ud)->emplace_back(addr, topic, unique, count);
}

std::string seq(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%010d", i);
  return buf;
}

// Sends at-least-once, retrying while busy; false on any other refusal.
bool send_retrying(lnr_hClient c, const char* topic, const std::string& data) {
  auto deadline = Clock::now() + seconds(15);
  while (lnr_send_to(c, topic, data.data(), data.size(), TRUE) != TRUE) {
    if (lnr_last_error_code(c) != LNR_ERR_BUSY || Clock::now() > deadline) {
      ADD_FAILURE() << "send refused: " << lnr_last_error_code(c) << " " << str(lnr_last_error_message(c));
      return false;
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

// Checks that numbered payloads 1..last arrived exactly once, in order.
void expect_exactly_once_in_order(Inbox& in, int last) {
  EXPECT_TRUE(in.wait_count(size_t(last), seconds(30))) << in.size() << " of " << last << " delivered";
  std::this_thread::sleep_for(milliseconds(1000));  // a duplicate would show up here
  std::vector<std::string> got = in.payloads();
  std::vector<int> nums;
  for (auto& p : got) nums.push_back(std::atoi(p.c_str()));
  std::set<int> distinct(nums.begin(), nums.end());
  int missing = 0, first_missing = 0;
  for (int i = 1; i <= last; ++i)
    if (!distinct.count(i) && !missing++) first_missing = i;
  EXPECT_EQ(missing, 0) << "lost " << missing << " messages, first " << first_missing;
  EXPECT_EQ(nums.size(), size_t(last)) << "deliveries for " << last << " messages";
  EXPECT_TRUE(std::is_sorted(nums.begin(), nums.end()) && distinct.size() == nums.size()) << "order broken";
}

// Restores the process-wide limits at scope exit.
struct LimitsGuard {
  size_t msg = lnr_get_max_message_size(), threshold = lnr_get_compress_threshold(),
         queue = lnr_get_max_send_queue(), queue_bytes = lnr_get_max_send_queue_bytes();
  ~LimitsGuard() {
    lnr_set_max_message_size(msg);
    lnr_set_compress_threshold(threshold);
    lnr_set_max_send_queue(queue);
    lnr_set_max_send_queue_bytes(queue_bytes);
  }
};

// A plain TCP connection to "ip:port".
int connect_to(const std::string& addr) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(std::stoi(port_of(addr))));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// True when the peer closes (EOF or reset) within `timeout`; a listener never writes.
bool closed_by_peer(int fd, milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, int(timeout.count())) <= 0) return false;
  char c;
  ssize_t n = ::recv(fd, &c, 1, 0);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

std::string be32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 3; i >= 0; --i, v >>= 8) s[size_t(i)] = char(v & 0xff);
  return s;
}

// A frame of spec §1.3 with `payload_len` bytes of data.
std::string raw_frame(uint64_t number, int32_t ck, int32_t tk, size_t payload_len, char fill = 'z') {
  std::string body;
  body += be32(uint32_t(number >> 32)) + be32(uint32_t(number));
  body += be32(uint32_t(ck)) + be32(uint32_t(tk));
  body.push_back(char(0x02));
  body += be32(uint32_t(payload_len)) + std::string(payload_len, fill);
  return be32(uint32_t(body.size())) + body;
}

bool write_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += size_t(n);
  }
  return true;
}

// Captures what is written to file descriptor 2 while alive.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    char tmpl[] = "/tmp/liner-stderr-XXXXXX";
    fd_ = mkstemp(tmpl);
    path_ = tmpl;
    saved_ = dup(2);
    dup2(fd_, 2);
  }
  ~StderrCapture() { restore(); }
  std::string restore() {
    if (saved_ >= 0) {
      std::fflush(stderr);
      dup2(saved_, 2);
      ::close(saved_);
      saved_ = -1;
      text_ = testing_support::read_file(path_);
      ::close(fd_);
      ::unlink(path_.c_str());
    }
    return text_;
  }

 private:
  int fd_ = -1, saved_ = -1;
  std::string path_, text_;
};

// ---- a peer in a child process (to be SIGKILLed) ---------------------------------------------
//
// The child is this test binary again, running only CapiPeerProcess.DISABLED_RunUntilKilled with
// its role in the environment: a fresh process, not a fork of this multi-threaded one.

class PeerProcess {
 public:
  PeerProcess(const std::string& role, const std::string& unique, const std::string& topic,
              const std::string& url, const std::string& to = "", int count = 0) {
    int out[2], in[2];
    if (pipe(out) != 0 || pipe(in) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      dup2(in[0], 0);
      ::close(out[0]);
      ::close(in[1]);
      setenv("LINER_PEER_ROLE", role.c_str(), 1);
      setenv("LINER_PEER_UNIQUE", unique.c_str(), 1);
      setenv("LINER_PEER_TOPIC", topic.c_str(), 1);
      setenv("LINER_PEER_REDIS", url.c_str(), 1);
      setenv("LINER_PEER_TO", to.c_str(), 1);
      setenv("LINER_PEER_COUNT", std::to_string(count).c_str(), 1);
      execl("/proc/self/exe", "capi_extended_test", "--gtest_also_run_disabled_tests",
            "--gtest_filter=CapiPeerProcess.DISABLED_RunUntilKilled", (char*)nullptr);
      _exit(127);
    }
    ::close(out[1]);
    ::close(in[0]);
    out_ = out[0];
    in_ = in[1];
  }
  ~PeerProcess() {
    kill();
    if (out_ >= 0) ::close(out_);
    if (in_ >= 0) ::close(in_);
  }
  // The rest of the first output line starting with `prefix` ("" after a timeout).
  std::string expect(const std::string& prefix, milliseconds timeout = seconds(20)) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      size_t nl;
      while ((nl = buf_.find('\n')) != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (line.compare(0, prefix.size(), prefix) == 0) return line.substr(std::min(line.size(), prefix.size() + 1));
      }
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return "";
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, int(left)) <= 0) continue;
      char chunk[4096];
      ssize_t n = ::read(out_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buf_.append(chunk, size_t(n));
    }
  }
  void kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1, in_ = -1;
  std::string buf_;
};

void print_received(const char*, const char* from, const char* data, size_t size, lnr_uData) {
  std::printf("GOT %s %.*s\n", from, int(size), data);
  std::fflush(stdout);
}

// ---- fixture ---------------------------------------------------------------------------------

class CapiExtended : public ::testing::Test {
 protected:
  void SetUp() override { redis().flush(); }
  void TearDown() override {
    for (auto it = clients_.rbegin(); it != clients_.rend(); ++it) EXPECT_EQ(lnr_delete_client(*it), TRUE);
  }
  // A client deleted after the test (or by drop()).
  lnr_hClient make(const char* name, const char* topic, const std::string& host = "127.0.0.1:0",
                   const std::string& url = "") {
    lnr_hClient c = lnr_new_client_redis(name, topic, host.c_str(), (url.empty() ? redis().url() : url).c_str());
    EXPECT_NE(c, nullptr) << lnr_last_create_error();
    if (c) clients_.push_back(c);
    return c;
  }
  lnr_hClient run(const char* name, const char* topic, Inbox* inbox, const std::string& host = "127.0.0.1:0",
                  const std::string& url = "") {
    lnr_hClient c = make(name, topic, host, url);
    EXPECT_EQ(lnr_run(c, on_receive, inbox), TRUE) << str(lnr_last_error_message(c));
    return c;
  }
  void drop(lnr_hClient c) {
    clients_.erase(std::remove(clients_.begin(), clients_.end(), c), clients_.end());
    EXPECT_EQ(lnr_delete_client(c), TRUE);
  }
  // An object that callbacks of this test's clients may use: it lives until the fixture is
  // destroyed, after TearDown deleted the clients (a local would die while they still run).
  template <class T>
  T& keep() {
    auto p = std::make_shared<T>();
    kept_.push_back(p);
    return *p;
  }
  std::vector<lnr_hClient> clients_;
  std::vector<std::shared_ptr<void>> kept_;
};

#define EXPECT_CODE(client, call, code)                                                          \
  do {                                                                                           \
    EXPECT_EQ((call), FALSE) << #call;                                                           \
    EXPECT_EQ(lnr_last_error_code(client), (code)) << #call << ": " << str(lnr_last_error_message(client)); \
    EXPECT_STRNE(lnr_last_error_message(client), "") << #call;                                  \
  } while (0)

#define EXPECT_OK(client, call)                                                                  \
  do {                                                                                           \
    EXPECT_EQ((call), TRUE) << #call << ": " << str(lnr_last_error_message(client));            \
    EXPECT_EQ(lnr_last_error_code(client), LNR_OK) << #call;                                     \
    EXPECT_STREQ(lnr_last_error_message(client), "") << #call;                                   \
  } while (0)

}  // namespace

// The child side of PeerProcess; disabled, so that it only runs when a test starts it.
TEST(CapiPeerProcess, DISABLED_RunUntilKilled) {
  const char* role = std::getenv("LINER_PEER_ROLE");
  if (!role) GTEST_SKIP() << "started by PeerProcess only";
  std::string to = std::getenv("LINER_PEER_TO"), topic = std::getenv("LINER_PEER_TOPIC");
  lnr_hClient c = lnr_new_client_redis(std::getenv("LINER_PEER_UNIQUE"), topic.c_str(), "127.0.0.1:0",
                                       std::getenv("LINER_PEER_REDIS"));
  ASSERT_NE(c, nullptr) << lnr_last_create_error();
  ASSERT_EQ(lnr_run(c, print_received, nullptr), TRUE);
  std::printf("READY %s\n", lnr_published_addr(c));
  std::fflush(stdout);
  int count = std::atoi(std::getenv("LINER_PEER_COUNT"));
  for (int i = 1; i <= count; ++i) {
    std::string data = std::to_string(i);
    auto deadline = Clock::now() + seconds(10);
    while (lnr_send_to(c, to.c_str(), data.data(), data.size(), TRUE) != TRUE && Clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(10));
  }
  if (count) std::printf("SENT %d\n", count);
  std::fflush(stdout);
  char b;
  while (::read(0, &b, 1) > 0) {
  }  // until the parent goes away
  lnr_delete_client(c);
}

// ---- version, error codes, bad handles -------------------------------------------------------

TEST(CapiVersion, IsAStaticNonEmptyString) {
  const char* v = lnr_version();
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(std::string(v).compare(0, 2, "1."), 0) << v;
  EXPECT_EQ(lnr_version(), v);
}

TEST(CapiExtendedHandles, NullDeletedAndUnknownHandlesAreRefusedByEveryExtension) {
  lnr_hClient c = lnr_new_client_redis("h_u", "h_t", "127.0.0.1:0", redis().url().c_str());
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(lnr_delete_client(c), TRUE);
  EventLog log;
  Rows rows;
  std::vector<PendingRow> pending;
  lnr_stats_t st{};
  st.size = sizeof st;
  for (lnr_hClient h : {lnr_hClient(nullptr), c, lnr_hClient(reinterpret_cast<void*>(0xdead))}) {
    EXPECT_EQ(lnr_stop(h), FALSE);
    EXPECT_EQ(lnr_is_running(h), FALSE);
    EXPECT_EQ(lnr_set_status_cb(h, on_status, &log), FALSE);
    EXPECT_EQ(lnr_list_addresses(h, "x", collect_addr, &rows), FALSE);
    EXPECT_EQ(lnr_pending_count(h), -1);
    EXPECT_EQ(lnr_pending_by_peer(h, collect_pending, &pending), FALSE);
    EXPECT_EQ(lnr_set_advertise_addr(h, "127.0.0.1:0"), FALSE);
    EXPECT_EQ(lnr_advertise_addr(h), nullptr);
    EXPECT_EQ(lnr_published_addr(h), nullptr);
    EXPECT_EQ(lnr_bound_listen_addr(h), nullptr);
    EXPECT_EQ(lnr_stats(h, &st), FALSE);
    EXPECT_EQ(lnr_last_error_code(h), LNR_OK);
    EXPECT_EQ(lnr_last_error_message(h), nullptr);
  }
  EXPECT_TRUE(log.snapshot().empty() && rows.empty() && pending.empty());
}

TEST_F(CapiExtended, EveryCallRecordsItsOutcome) {
  lnr_hClient c = make("c", "c_topic");
  EXPECT_EQ(lnr_last_error_code(c), LNR_OK);
  EXPECT_STREQ(lnr_last_error_message(c), "");
  EXPECT_CODE(c, lnr_send_to(c, "other", "x", 1, TRUE), LNR_ERR_NOT_RUNNING);
  EXPECT_CODE(c, lnr_run(c, nullptr, nullptr), LNR_ERR_INVALID_ARG);
  EXPECT_OK(c, lnr_subscribe(c, "news"));
  EXPECT_OK(c, lnr_run(c, ignore, nullptr));
  EXPECT_OK(c, lnr_is_running(c));
  EXPECT_CODE(c, lnr_send_to(c, "c_topic", "x", 1, TRUE), LNR_ERR_SELF_TOPIC);
  EXPECT_CODE(c, lnr_send_all(c, "__#internal_channel", "x", 1, TRUE), LNR_ERR_INTERNAL_TOPIC);
  EXPECT_CODE(c, lnr_send_to(c, "nobody", "x", 1, TRUE), LNR_ERR_NO_ADDR);
  EXPECT_CODE(c, lnr_refresh_address_topic(c, "nobody"), LNR_ERR_NO_ADDR);
  // Argument checks are recorded on the handle too (liner_broker 1.4's C shim did not).
  EXPECT_CODE(c, lnr_send_to(c, nullptr, "x", 1, TRUE), LNR_ERR_INVALID_ARG);
  EXPECT_CODE(c, lnr_send_to(c, "other", nullptr, 1, TRUE), LNR_ERR_INVALID_ARG);
  EXPECT_CODE(c, lnr_send_to(c, "other", "x", 0, TRUE), LNR_ERR_INVALID_ARG);
  EXPECT_CODE(c, lnr_list_addresses(c, nullptr, collect_addr, nullptr), LNR_ERR_INVALID_ARG);
  EXPECT_CODE(c, lnr_list_addresses(c, "t", nullptr, nullptr), LNR_ERR_INVALID_ARG);
  EXPECT_CODE(c, lnr_list_addresses(c, "bad\xff", collect_addr, nullptr), LNR_ERR_INVALID_ARG);
  EXPECT_CODE(c, lnr_pending_by_peer(c, nullptr, nullptr), LNR_ERR_INVALID_ARG);
  EXPECT_CODE(c, lnr_stats(c, nullptr), LNR_ERR_INVALID_ARG);
  lnr_stats_t tiny{};
  tiny.size = sizeof(size_t) - 1;
  EXPECT_CODE(c, lnr_stats(c, &tiny), LNR_ERR_INVALID_ARG);
  EXPECT_CODE(c, lnr_set_advertise_addr(c, "127.0.0.1:0"), LNR_ERR_ALREADY_RUNNING);
  EXPECT_CODE(c, lnr_clear_stored_messages(c), LNR_ERR_CLEAR_WHILE_RUNNING);
  EXPECT_CODE(c, lnr_clear_addresses_of_topic(c), LNR_ERR_CLEAR_WHILE_RUNNING);
  EXPECT_OK(c, lnr_set_status_cb(c, nullptr, nullptr));
  EXPECT_OK(c, lnr_unsubscribe(c, "news"));
  EXPECT_OK(c, lnr_stop(c));
  EXPECT_EQ(lnr_is_running(c), FALSE);
  EXPECT_EQ(lnr_last_error_code(c), LNR_OK);  // "not running" is an answer, not an error
  EXPECT_OK(c, lnr_clear_stored_messages(c));
  EXPECT_OK(c, lnr_set_advertise_addr(c, nullptr));
}

TEST_F(CapiExtended, ErrorCodesArePerThread) {
  lnr_hClient c = run("c", "c_topic", nullptr);
  EXPECT_EQ(lnr_send_to(c, "c_topic", "x", 1, TRUE), FALSE);
  int other = -1;
  std::thread t([&] {
    lnr_send_to(c, "nobody", "x", 1, TRUE);
    other = lnr_last_error_code(c);
  });
  t.join();
  EXPECT_EQ(other, LNR_ERR_NO_ADDR);
  EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_SELF_TOPIC);
}

TEST_F(CapiExtended, BindFailureIsReported) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ::listen(fd, 1);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  lnr_hClient c = make("c", "c_topic", loopback(ntohs(a.sin_port)));
  EXPECT_CODE(c, lnr_run(c, ignore, nullptr), LNR_ERR_BIND);
  EXPECT_EQ(lnr_is_running(c), FALSE);
  EXPECT_EQ(lnr_published_addr(c), nullptr);
  ::close(fd);
}

TEST(CapiCreateCodes, CreationFailuresHaveACode) {
  EXPECT_EQ(lnr_new_client_redis("u", "t", "no-port", redis().url().c_str()), nullptr);
  EXPECT_EQ(lnr_last_create_error_code(), LNR_ERR_INVALID_ARG);
  EXPECT_EQ(lnr_new_client_redis("u", "__#internal_channel", "127.0.0.1:0", redis().url().c_str()), nullptr);
  EXPECT_EQ(lnr_last_create_error_code(), LNR_ERR_INTERNAL_TOPIC);
  std::string down = "redis://127.0.0.1:" + std::to_string(testing_support::free_port()) + "/0";
  EXPECT_EQ(lnr_new_client_redis("u", "t", "127.0.0.1:0", down.c_str()), nullptr);
  EXPECT_EQ(lnr_last_create_error_code(), LNR_ERR_STORE);
  EXPECT_STRNE(lnr_last_create_error(), "");
  lnr_hClient c = lnr_new_client_redis("u", "t", "127.0.0.1:0", redis().url().c_str());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(lnr_last_create_error_code(), LNR_OK);
  EXPECT_STREQ(lnr_last_create_error(), "");
  EXPECT_EQ(lnr_delete_client(c), TRUE);
}

TEST_F(CapiExtended, StoreDownIsReportedByEveryStoreCall) {
  RedisServer own(true);
  lnr_hClient c = make("c", "c_topic", "127.0.0.1:0", own.url());
  own.stop();
  EXPECT_CODE(c, lnr_run(c, ignore, nullptr), LNR_ERR_STORE);
  EXPECT_EQ(lnr_is_running(c), FALSE);
  std::vector<std::pair<std::string, std::string>> rows;
  EXPECT_CODE(c, lnr_list_addresses(c, "t", collect_addr, &rows), LNR_ERR_STORE);
  EXPECT_EQ(lnr_pending_count(c), -1);
  EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_STORE);
  std::vector<PendingRow> pending;
  EXPECT_CODE(c, lnr_pending_by_peer(c, collect_pending, &pending), LNR_ERR_STORE);
  EXPECT_CODE(c, lnr_clear_stored_messages(c), LNR_ERR_STORE);
  EXPECT_TRUE(rows.empty() && pending.empty());
  own.start();
  EXPECT_TRUE(wait_for([&] { return lnr_run(c, ignore, nullptr) == TRUE; }, seconds(10)));
  EXPECT_EQ(lnr_pending_count(c), 0);
  drop(c);
}

// ---- stop / run ------------------------------------------------------------------------------

TEST_F(CapiExtended, StopAndIsRunningFollowTheLifecycle) {
  lnr_hClient c = make("u", "t");
  EXPECT_EQ(lnr_is_running(c), FALSE);
  EXPECT_EQ(lnr_published_addr(c), nullptr);
  EXPECT_EQ(lnr_bound_listen_addr(c), nullptr);
  EXPECT_OK(c, lnr_stop(c));  // nothing to stop
  ASSERT_EQ(lnr_run(c, ignore, nullptr), TRUE);
  EXPECT_EQ(lnr_is_running(c), TRUE);
  std::string bound = str(lnr_bound_listen_addr(c));
  EXPECT_EQ(str(lnr_published_addr(c)), bound);
  EXPECT_EQ(hgetall(redis(), "lnr_topic:t:addr"), (Rows{{bound, "u"}}));

  EXPECT_OK(c, lnr_stop(c));
  EXPECT_EQ(lnr_is_running(c), FALSE);
  EXPECT_EQ(lnr_published_addr(c), nullptr);
  EXPECT_EQ(str(lnr_bound_listen_addr(c)), bound);  // kept after stop
  EXPECT_EQ(redis().cli({"EXISTS", "lnr_topic:t:addr"}), "0");
  EXPECT_OK(c, lnr_stop(c));
  EXPECT_CODE(c, lnr_send_to(c, "x", "d", 1, TRUE), LNR_ERR_NOT_RUNNING);
  EXPECT_OK(c, lnr_clear_stored_messages(c));
  EXPECT_OK(c, lnr_clear_addresses_of_topic(c));
  EXPECT_OK(c, lnr_run(c, ignore, nullptr));
  EXPECT_EQ(lnr_is_running(c), TRUE);
  EXPECT_EQ(redis().cli({"HGET", "lnr_topic:t:addr", str(lnr_published_addr(c))}), "u");
}

TEST_F(CapiExtended, SenderStopAndRunAgainLosesAndDoublesNothing) {
  Inbox& in = keep<Inbox>();
  Inbox& ignored = keep<Inbox>();
  run("listener", "listener_topic", &in);
  lnr_hClient s = run("sender", "sender_topic", &ignored);
  int n = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 300; ++i) ASSERT_TRUE(send_retrying(s, "listener_topic", seq(++n)));
    ASSERT_EQ(lnr_stop(s), TRUE);  // right away: most of it is still in flight
    ASSERT_EQ(lnr_run(s, on_receive, &ignored), TRUE);
  }
  expect_exactly_once_in_order(in, n);
}

// A listener on a fixed port stopped and run again while a sender keeps sending.
TEST_F(CapiExtended, ListenerStopAndRunAgainMidStreamLosesAndDoublesNothing) {
  Inbox& in = keep<Inbox>();
  Inbox& ignored = keep<Inbox>();
  std::string addr = loopback(testing_support::free_port());
  lnr_hClient l = run("listener", "listener_topic", &in, addr);
  lnr_hClient s = run("sender", "sender_topic", &ignored);
  std::atomic<bool> halt{false};
  std::atomic<int> sent{0};
  std::thread pump([&] {
    while (!halt) {
      for (int i = 0; i < 20; ++i)
        if (!send_retrying(s, "listener_topic", seq(sent + 1))) return;
        else ++sent;
      std::this_thread::sleep_for(milliseconds(2));
    }
  });
  for (int round = 0; round < 2; ++round) {
    size_t seen = in.size();
    EXPECT_TRUE(in.wait_count(seen + 1));
    std::this_thread::sleep_for(milliseconds(300));
    EXPECT_EQ(lnr_stop(l), TRUE);
    std::this_thread::sleep_for(milliseconds(300));
    EXPECT_EQ(lnr_run(l, on_receive, &in), TRUE);
  }
  size_t seen = in.size();
  EXPECT_TRUE(in.wait_count(seen + 1));  // traffic resumed
  halt = true;
  pump.join();
  expect_exactly_once_in_order(in, sent);
}

namespace {
struct SelfStop {
  lnr_hClient self = nullptr;
  std::atomic<int> result{-1}, code{-1}, running{-1};
};
void stop_self(const char*, const char*, const char*, size_t, lnr_uData ud) {
  auto* s = static_cast<SelfStop*>(ud);
  s->result = lnr_stop(s->self);
  s->code = lnr_last_error_code(s->self);
  s->running = lnr_is_running(s->self);
}
}  // namespace

TEST_F(CapiExtended, StopFromTheOwnReceiveCallbackIsRefused) {
  SelfStop& st = keep<SelfStop>();
  lnr_hClient l = make("listener", "listener_topic");
  st.self = l;
  ASSERT_EQ(lnr_run(l, stop_self, &st), TRUE);
  lnr_hClient s = run("sender", "sender_topic", nullptr);
  ASSERT_EQ(lnr_send_to(s, "listener_topic", "x", 1, TRUE), TRUE);
  ASSERT_TRUE(wait_for([&] { return st.result != -1; }, seconds(10)));
  EXPECT_EQ(st.result, FALSE);
  EXPECT_EQ(st.code, LNR_ERR_INVALID_ARG);
  EXPECT_EQ(st.running, TRUE);
  EXPECT_EQ(lnr_is_running(l), TRUE);
}

// ---- status events ---------------------------------------------------------------------------

TEST_F(CapiExtended, SenderSideSeesAPeerStartSubscribeUnsubscribeAndStop) {
  EventLog& log = keep<EventLog>();
  lnr_hClient w = make("watcher", "watcher_topic");
  ASSERT_EQ(lnr_set_status_cb(w, on_status, &log), TRUE);
  ASSERT_EQ(lnr_run(w, ignore, nullptr), TRUE);
  for (const char* t : {"peer_topic", "news"}) EXPECT_CODE(w, lnr_send_to(w, t, "x", 1, TRUE), LNR_ERR_NO_ADDR);

  auto t0 = Clock::now();
  lnr_hClient p = run("peer", "peer_topic", nullptr);
  std::string addr = str(lnr_published_addr(p));
  EXPECT_TRUE(event_within(log, LNR_PEER_CONNECTED, "peer_topic", addr.c_str(), t0, Clock::now()));
  t0 = Clock::now();
  ASSERT_EQ(lnr_subscribe(p, "news"), TRUE);
  EXPECT_TRUE(event_within(log, LNR_PEER_SUBSCRIBED, "news", addr.c_str(), t0, Clock::now()));
  t0 = Clock::now();
  ASSERT_EQ(lnr_unsubscribe(p, "news"), TRUE);
  EXPECT_TRUE(event_within(log, LNR_PEER_UNSUBSCRIBED, "news", addr.c_str(), t0, Clock::now()));
  t0 = Clock::now();
  ASSERT_EQ(lnr_stop(p), TRUE);
  EXPECT_TRUE(event_within(log, LNR_PEER_DISCONNECTED, "peer_topic", addr.c_str(), t0, Clock::now()));
  for (const auto& e : log.snapshot()) {
    EXPECT_TRUE(e.topic == "peer_topic" || e.topic == "news") << e;
    EXPECT_LE(e.kind, LNR_PEER_UNSUBSCRIBED) << e;
  }
}

TEST_F(CapiExtended, ARefreshedTopicIsWatched) {
  EventLog& log = keep<EventLog>();
  lnr_hClient w = make("watcher", "watcher_topic");
  ASSERT_EQ(lnr_set_status_cb(w, on_status, &log), TRUE);
  ASSERT_EQ(lnr_run(w, ignore, nullptr), TRUE);
  EXPECT_CODE(w, lnr_refresh_address_topic(w, "peer_topic"), LNR_ERR_NO_ADDR);  // nobody yet
  auto t0 = Clock::now();
  lnr_hClient p = run("peer", "peer_topic", nullptr);
  EXPECT_TRUE(event_within(log, LNR_PEER_CONNECTED, "peer_topic", lnr_published_addr(p), t0, Clock::now()));
}

TEST_F(CapiExtended, ConnectionEventsOnBothSides) {
  EventLog& slog = keep<EventLog>();
  EventLog& llog = keep<EventLog>();
  Inbox& in = keep<Inbox>();
  lnr_hClient l = make("listener", "listener_topic");
  ASSERT_EQ(lnr_set_status_cb(l, on_status, &llog), TRUE);
  ASSERT_EQ(lnr_run(l, on_receive, &in), TRUE);
  std::string addr = str(lnr_published_addr(l));
  lnr_hClient s = make("sender", "sender_topic");
  ASSERT_EQ(lnr_set_status_cb(s, on_status, &slog), TRUE);
  ASSERT_EQ(lnr_run(s, ignore, nullptr), TRUE);

  auto t0 = Clock::now();
  ASSERT_EQ(lnr_send_to(s, "listener_topic", "hi", 2, TRUE), TRUE);
  EXPECT_TRUE(event_within(slog, LNR_PEER_CONNECTED, "listener_topic", addr.c_str(), t0, Clock::now()));
  EXPECT_TRUE(event_within(llog, LNR_PEER_CONNECTED, "sender_topic", "", t0, Clock::now()));
  ASSERT_TRUE(in.wait_count(1));

  t0 = Clock::now();
  ASSERT_EQ(lnr_stop(s), TRUE);  // the listener sees its sender go
  EXPECT_TRUE(event_within(llog, LNR_PEER_DISCONNECTED, "sender_topic", "", t0, Clock::now()));
  ASSERT_EQ(lnr_run(s, ignore, nullptr), TRUE);
  ASSERT_EQ(lnr_send_to(s, "listener_topic", "again", 5, TRUE), TRUE);
  ASSERT_TRUE(in.wait_count(2));
  t0 = Clock::now();
  ASSERT_EQ(lnr_stop(l), TRUE);  // the sender sees its listener go
  EXPECT_TRUE(event_within(slog, LNR_PEER_DISCONNECTED, "listener_topic", addr.c_str(), t0, Clock::now()));
}

TEST_F(CapiExtended, SenderSideSeesAKilledPeer) {
  EventLog& log = keep<EventLog>();
  lnr_hClient w = make("watcher", "watcher_topic");
  ASSERT_EQ(lnr_set_status_cb(w, on_status, &log), TRUE);
  ASSERT_EQ(lnr_run(w, ignore, nullptr), TRUE);
  PeerProcess victim("listener", "victim", "victim_topic", redis().url());
  std::string addr = victim.expect("READY");
  ASSERT_FALSE(addr.empty());
  ASSERT_TRUE(wait_for([&] { return lnr_send_to(w, "victim_topic", "1", 1, TRUE) == TRUE; }, seconds(5)));
  EXPECT_EQ(victim.expect("GOT"), "watcher_topic 1");
  ASSERT_TRUE(log.wait(LNR_PEER_CONNECTED, "victim_topic", addr.c_str(), Clock::time_point(), nullptr));
  auto t0 = Clock::now();
  victim.kill();
  EXPECT_TRUE(event_within(log, LNR_PEER_DISCONNECTED, "victim_topic", addr.c_str(), t0, Clock::now()));
}

TEST_F(CapiExtended, ListenerSideSeesAKilledSender) {
  EventLog& log = keep<EventLog>();
  Inbox& in = keep<Inbox>();
  lnr_hClient l = make("listener", "listener_topic");
  ASSERT_EQ(lnr_set_status_cb(l, on_status, &log), TRUE);
  ASSERT_EQ(lnr_run(l, on_receive, &in), TRUE);
  PeerProcess victim("sender", "victim", "victim_topic", redis().url(), "listener_topic", 3);
  ASSERT_EQ(victim.expect("SENT"), "3");
  ASSERT_TRUE(in.wait_count(3));
  ASSERT_TRUE(log.wait(LNR_PEER_CONNECTED, "victim_topic", nullptr, Clock::time_point(), nullptr));
  auto t0 = Clock::now();
  victim.kill();
  EXPECT_TRUE(event_within(log, LNR_PEER_DISCONNECTED, "victim_topic", nullptr, t0, Clock::now()));
}

TEST_F(CapiExtended, AnUnreachablePeerIsALostRoute) {
  std::string ghost = loopback(testing_support::free_port());  // registered, nobody listening
  redis().cli({"HSET", "lnr_topic:ghost_topic:addr", ghost, "ghost"});
  EventLog& log = keep<EventLog>();
  lnr_hClient s = make("sender", "sender_topic");
  ASSERT_EQ(lnr_set_status_cb(s, on_status, &log), TRUE);
  ASSERT_EQ(lnr_run(s, ignore, nullptr), TRUE);
  auto t0 = Clock::now();
  ASSERT_EQ(lnr_send_to(s, "ghost_topic", "boo", 3, TRUE), TRUE);
  EXPECT_TRUE(event_within(log, LNR_SENDER_ROUTE_LOST, "ghost_topic", ghost.c_str(), t0, Clock::now()));
  EXPECT_TRUE(wait_for([&] { return lnr_pending_count(s) == 1; }, seconds(5)));
}

TEST_F(CapiExtended, StoreErrorsAreReportedBySenderAndListener) {
  RedisServer own(true);
  EventLog& slog = keep<EventLog>();
  EventLog& llog = keep<EventLog>();
  Inbox& in = keep<Inbox>();
  lnr_hClient l = make("listener", "listener_topic", "127.0.0.1:0", own.url());
  lnr_hClient s = make("sender", "sender_topic", "127.0.0.1:0", own.url());
  ASSERT_EQ(lnr_set_status_cb(l, on_status, &llog), TRUE);
  ASSERT_EQ(lnr_set_status_cb(s, on_status, &slog), TRUE);
  ASSERT_EQ(lnr_run(l, on_receive, &in), TRUE);
  ASSERT_EQ(lnr_run(s, ignore, nullptr), TRUE);
  ASSERT_EQ(lnr_send_to(s, "listener_topic", "warm-up", 7, TRUE), TRUE);
  ASSERT_TRUE(in.wait_count(1));

  own.stop();
  auto t0 = Clock::now();
  // Route and connection are known: delivered, but neither the listener's ack nor the sender's
  // ack poll reaches Redis.
  ASSERT_EQ(lnr_send_to(s, "listener_topic", "down", 4, TRUE), TRUE);
  EXPECT_TRUE(in.wait_count(2));
  Event e;
  ASSERT_TRUE(llog.wait(LNR_LISTENER_STORE_ERROR, "sender_topic", nullptr, t0, &e)) << llog.dump();
  EXPECT_FALSE(e.message.empty());
  EXPECT_LT(e.at - t0, seconds(5));
  ASSERT_TRUE(slog.wait(LNR_SENDER_STORE_ERROR, "listener_topic", nullptr, t0, &e)) << slog.dump();
  EXPECT_FALSE(e.message.empty());
  EXPECT_LT(e.at - t0, seconds(5));
  own.start();
  drop(s);
  drop(l);
}

namespace {
// Accepts connections, reads nothing for 200 ms and resets them (SO_LINGER 0): a sender that
// streams has filled the socket buffers by then and waits for room to write when the reset
// lands, so its due write fails (however slow a sanitizer makes it).
class ResettingServer {
 public:
  ResettingServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    addr = loopback(ntohs(a.sin_port));
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) continue;
        ++accepted;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        linger lg{1, 0};
        setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        ::close(c);
      }
    });
  }
  ~ResettingServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string addr;
  std::atomic<int> accepted{0};

 private:
  int fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};
}  // namespace

TEST_F(CapiExtended, AFailedWriteIsASendErrorAndDoesNotKillTheProcess) {
  ResettingServer server;
  redis().cli({"HSET", "lnr_topic:reset_topic:addr", server.addr, "resetter"});
  EventLog& log = keep<EventLog>();
  lnr_hClient s = make("sender", "sender_topic");
  ASSERT_EQ(lnr_set_status_cb(s, on_status, &log), TRUE);
  ASSERT_EQ(lnr_run(s, ignore, nullptr), TRUE);
  // Keep writing while the peer resets its connections: a reset that lands while the sender is
  // writing is a failed write. (A C program does not ignore SIGPIPE: it must survive.)
  std::string data(64 * 1024, 'x');
  auto deadline = Clock::now() + seconds(20);
  while (log.count(LNR_SENDER_SEND_ERROR) == 0 && Clock::now() < deadline) {
    for (int i = 0; i < 20; ++i) lnr_send_to(s, "reset_topic", data.data(), data.size(), TRUE);
    std::this_thread::sleep_for(milliseconds(1));
  }
  Event e;
  ASSERT_TRUE(log.wait(LNR_SENDER_SEND_ERROR, "reset_topic", server.addr.c_str(), Clock::time_point(), &e,
                       seconds(1)))
      << server.accepted << " connections; " << log.dump();
  EXPECT_FALSE(e.message.empty());
  drop(s);
}

TEST_F(CapiExtended, NullClearsTheStatusCallback) {
  EventLog& cleared = keep<EventLog>();
  EventLog& kept = keep<EventLog>();
  lnr_hClient a = make("a", "a_topic");
  lnr_hClient b = make("b", "b_topic");
  ASSERT_EQ(lnr_set_status_cb(a, on_status, &cleared), TRUE);
  ASSERT_EQ(lnr_set_status_cb(b, on_status, &kept), TRUE);
  ASSERT_EQ(lnr_run(a, ignore, nullptr), TRUE);
  ASSERT_EQ(lnr_run(b, ignore, nullptr), TRUE);
  lnr_send_to(a, "peer_topic", "x", 1, TRUE);
  lnr_send_to(b, "peer_topic", "x", 1, TRUE);
  EXPECT_OK(a, lnr_set_status_cb(a, nullptr, nullptr));
  run("peer", "peer_topic", nullptr);
  ASSERT_TRUE(kept.wait(LNR_PEER_CONNECTED, "peer_topic", nullptr, Clock::time_point(), nullptr));
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_TRUE(cleared.snapshot().empty()) << cleared.dump();
}

// ---- limits ----------------------------------------------------------------------------------

TEST(CapiLimits, DefaultsSettersAndRefusals) {
  LimitsGuard guard;
  EXPECT_EQ(lnr_get_max_message_size(), kDefaultMaxMessage);
  EXPECT_EQ(lnr_get_compress_threshold(), size_t(1) << 20);
  EXPECT_EQ(lnr_get_max_send_queue(), 0u);
  EXPECT_EQ(lnr_get_max_send_queue_bytes(), size_t(8) << 20);

  EXPECT_EQ(lnr_set_max_message_size(1000), TRUE);
  EXPECT_EQ(lnr_get_max_message_size(), 1000u);
  EXPECT_EQ(lnr_set_compress_threshold(10), TRUE);
  EXPECT_EQ(lnr_get_compress_threshold(), 10u);
  EXPECT_EQ(lnr_set_max_send_queue(7), TRUE);
  EXPECT_EQ(lnr_get_max_send_queue(), 7u);
  EXPECT_EQ(lnr_set_max_send_queue(0), TRUE);  // no count limit
  EXPECT_EQ(lnr_set_max_send_queue_bytes(4096), TRUE);
  EXPECT_EQ(lnr_get_max_send_queue_bytes(), 4096u);

  EXPECT_EQ(lnr_set_max_message_size(0), FALSE);
  EXPECT_EQ(lnr_set_max_message_size(kDefaultMaxMessage + 1), FALSE);
  EXPECT_EQ(lnr_set_max_message_size(SIZE_MAX), FALSE);
  EXPECT_EQ(lnr_set_compress_threshold(0), FALSE);
  EXPECT_EQ(lnr_set_max_send_queue_bytes(0), FALSE);
  EXPECT_EQ(lnr_get_max_message_size(), 1000u);
  EXPECT_EQ(lnr_get_compress_threshold(), 10u);
  EXPECT_EQ(lnr_get_max_send_queue(), 0u);
  EXPECT_EQ(lnr_get_max_send_queue_bytes(), 4096u);
}

TEST_F(CapiExtended, SenderRefusesAPayloadAboveTheMaxMessageSize) {
  LimitsGuard guard;
  Inbox& in = keep<Inbox>();
  run("listener", "listener_topic", &in);
  lnr_hClient s = run("sender", "sender_topic", nullptr);
  ASSERT_EQ(lnr_set_max_message_size(1000), TRUE);
  std::string big(1001, 'x'), max(1000, 'y');
  for (BOOL alo : {TRUE, FALSE}) {
    EXPECT_CODE(s, lnr_send_to(s, "listener_topic", big.data(), big.size(), alo), LNR_ERR_INVALID_ARG);
    EXPECT_CODE(s, lnr_send_all(s, "listener_topic", big.data(), big.size(), alo), LNR_ERR_INVALID_ARG);
  }
  EXPECT_OK(s, lnr_send_to(s, "listener_topic", max.data(), max.size(), TRUE));
  ASSERT_TRUE(in.wait_count(1));
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(in.payloads(), std::vector<std::string>{max});
}

TEST_F(CapiExtended, ListenerSkipsAFrameAboveItsMaxAndRefusesMadeUpKeys) {
  LimitsGuard guard;
  ASSERT_EQ(lnr_set_max_message_size(1000), TRUE);
  Inbox& in = keep<Inbox>();
  lnr_hClient l = run("listener", "listener_topic", &in);  // applies the max from this run
  std::string addr = str(lnr_bound_listen_addr(l));
  lnr_hClient s = run("sender", "sender_topic", nullptr);
  std::string max(1000, 'a');
  ASSERT_EQ(lnr_send_to(s, "listener_topic", max.data(), max.size(), TRUE), TRUE);
  ASSERT_TRUE(in.wait_count(1));

  // Above the max but valid on the wire: only the length prefix so far. The listener waits for
  // the header, to skip the body and refuse that message alone; the connection stays.
  int raw = connect_to(addr);
  ASSERT_GE(raw, 0);
  ASSERT_TRUE(write_all(raw, be32(21 + 5000)));
  EXPECT_FALSE(closed_by_peer(raw, milliseconds(500))) << "an oversize frame closed the stream";
  ::close(raw);
  // Oversize, then its header: a connection key nobody allocated, so the stream is refused.
  raw = connect_to(addr);
  ASSERT_TRUE(write_all(raw, raw_frame(1, 99999, 99999, 1001)));
  EXPECT_TRUE(closed_by_peer(raw, seconds(10))) << "the listener kept a made-up key's stream open";
  ::close(raw);
  raw = connect_to(addr);  // within the max, same made-up key: refused too
  ASSERT_TRUE(write_all(raw, raw_frame(1, 99999, 99999, 1000)));
  EXPECT_TRUE(closed_by_peer(raw, seconds(10)));
  ::close(raw);

  ASSERT_EQ(lnr_set_max_message_size(kDefaultMaxMessage), TRUE);
  ASSERT_EQ(lnr_send_to(s, "listener_topic", "b", 1, TRUE), TRUE);  // still served
  ASSERT_TRUE(in.wait_count(2));
  EXPECT_EQ(in.payloads(), (std::vector<std::string>{max, "b"}));
}

TEST_F(CapiExtended, AFullSendQueueIsBusyThenWritableAgain) {
  LimitsGuard guard;
  Inbox& in = keep<Inbox>();
  EventLog& log = keep<EventLog>();
  lnr_hClient l = run("listener", "listener_topic", &in);
  std::string addr = str(lnr_published_addr(l));
  lnr_hClient s = make("sender", "sender_topic");
  ASSERT_EQ(lnr_set_status_cb(s, on_status, &log), TRUE);
  ASSERT_EQ(lnr_run(s, ignore, nullptr), TRUE);
  ASSERT_EQ(lnr_set_max_send_queue(4), TRUE);

  // Messages stay held until the listener's ack is in Redis (about a second): the fifth is busy.
  auto t0 = Clock::now();
  int n = 0;
  while (n < 1000 && lnr_send_to(s, "listener_topic", seq(n + 1).data(), 10, TRUE) == TRUE) ++n;
  EXPECT_EQ(n, 4);
  EXPECT_EQ(lnr_last_error_code(s), LNR_ERR_BUSY);
  EXPECT_STRNE(lnr_last_error_message(s), "");
  Event busy;
  ASSERT_TRUE(log.wait(LNR_SENDER_BUSY, "listener_topic", addr.c_str(), t0, &busy)) << log.dump();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(lnr_send_to(s, "listener_topic", "r", 1, TRUE), FALSE);
  EXPECT_EQ(log.count(LNR_SENDER_BUSY), 1u);  // once per episode
  ASSERT_TRUE(log.wait(LNR_SENDER_WRITABLE, "listener_topic", addr.c_str(), busy.at, nullptr, seconds(15)))
      << log.dump();
  EXPECT_OK(s, lnr_send_to(s, "listener_topic", seq(n + 1).data(), 10, TRUE));  // recovered
  ++n;
  ASSERT_TRUE(in.wait_count(size_t(n)));
  std::this_thread::sleep_for(milliseconds(300));
  std::vector<std::string> expected;
  for (int i = 1; i <= n; ++i) expected.push_back(seq(i));
  EXPECT_EQ(in.payloads(), expected);
}

TEST_F(CapiExtended, TheByteLimitOfTheSendQueueIsBusyToo) {
  LimitsGuard guard;
  Inbox& in = keep<Inbox>();
  EventLog& log = keep<EventLog>();
  run("listener", "listener_topic", &in);
  lnr_hClient s = make("sender", "sender_topic");
  ASSERT_EQ(lnr_set_status_cb(s, on_status, &log), TRUE);
  ASSERT_EQ(lnr_run(s, ignore, nullptr), TRUE);
  // The channel open first: messages that wait for a new one may hold 4 byte caps (they wait
  // uncompressed); this is the open channel's own limit.
  ASSERT_EQ(lnr_send_to(s, "listener_topic", "w", 1, TRUE), TRUE);
  ASSERT_TRUE(in.wait_count(1));
  ASSERT_EQ(lnr_set_max_send_queue_bytes(20000), TRUE);
  std::string p(4000, 'p');
  int sent = 0;
  while (sent < 100 && lnr_send_to(s, "listener_topic", p.data(), p.size(), TRUE) == TRUE) ++sent;
  EXPECT_EQ(lnr_last_error_code(s), LNR_ERR_BUSY);
  EXPECT_GE(sent, 1);
  EXPECT_LE(sent, 5);
  EXPECT_TRUE(log.wait(LNR_SENDER_BUSY, "listener_topic", nullptr, Clock::time_point(), nullptr));
  EXPECT_TRUE(log.wait(LNR_SENDER_WRITABLE, "listener_topic", nullptr, Clock::time_point(), nullptr, seconds(15)));
  EXPECT_OK(s, lnr_send_to(s, "listener_topic", p.data(), p.size(), TRUE));
  EXPECT_TRUE(in.wait_count(size_t(sent + 2)));
}

TEST_F(CapiExtended, MessagesWaitingForANewChannelHoldAtMostFourByteCaps) {
  LimitsGuard guard;
  Inbox& in = keep<Inbox>();
  run("listener", "listener_topic", &in);
  lnr_hClient s = make("sender", "sender_topic");
  ASSERT_EQ(lnr_run(s, ignore, nullptr), TRUE);
  ASSERT_EQ(lnr_refresh_address_topic(s, "listener_topic"), TRUE);
  ASSERT_EQ(lnr_set_max_send_queue_bytes(20000), TRUE);
  // Redis takes no writes for a while, so the channel (whose connection key is a write) stays
  // unopened and every message below waits for it. Reads go on: the route is already known.
  redis().cli({"CLIENT", "PAUSE", "2000", "WRITE"});
  std::string p(4000, 'p');
  int sent = 0;
  while (sent < 100 && lnr_send_to(s, "listener_topic", p.data(), p.size(), TRUE) == TRUE) ++sent;
  EXPECT_EQ(lnr_last_error_code(s), LNR_ERR_BUSY);
  EXPECT_GE(sent, 4 * 5 - 1);  // 4 caps of 20,000 bytes wait for the channel...
  EXPECT_LE(sent, 4 * 5);      // ...and no more
  EXPECT_TRUE(in.wait_count(size_t(sent), seconds(15)));
  EXPECT_EQ(in.size(), size_t(sent));
}

// ---- advertise / published addresses ---------------------------------------------------------

TEST_F(CapiExtended, APeerBoundToAnyAddressAdvertisingLoopbackIsReachable) {
  Inbox& in = keep<Inbox>();
  lnr_hClient l = make("listener", "listener_topic", "0.0.0.0:0");
  EXPECT_EQ(lnr_advertise_addr(l), nullptr);
  EXPECT_OK(l, lnr_set_advertise_addr(l, "127.0.0.1:0"));
  EXPECT_STREQ(lnr_advertise_addr(l), "127.0.0.1:0");
  EXPECT_EQ(lnr_published_addr(l), nullptr);
  ASSERT_EQ(lnr_run(l, on_receive, &in), TRUE);
  std::string bound = str(lnr_bound_listen_addr(l));
  EXPECT_EQ(bound.substr(0, bound.rfind(':')), "0.0.0.0");
  std::string published = "127.0.0.1:" + port_of(bound);
  EXPECT_EQ(str(lnr_published_addr(l)), published);
  EXPECT_EQ(hgetall(redis(), "lnr_topic:listener_topic:addr"), (Rows{{published, "listener"}}));

  lnr_hClient s = run("sender", "sender_topic", nullptr);
  std::vector<std::pair<std::string, std::string>> rows;
  ASSERT_EQ(lnr_list_addresses(s, "listener_topic", collect_addr, &rows), TRUE);
  EXPECT_EQ(rows, (decltype(rows){{published, "listener"}}));
  ASSERT_EQ(lnr_send_to(s, "listener_topic", "hello", 5, TRUE), TRUE);
  ASSERT_TRUE(in.wait_count(1));
  EXPECT_EQ(in.payloads(), std::vector<std::string>{"hello"});

  EXPECT_CODE(l, lnr_set_advertise_addr(l, "127.0.0.1:1"), LNR_ERR_ALREADY_RUNNING);
  EXPECT_CODE(l, lnr_set_advertise_addr(l, nullptr), LNR_ERR_ALREADY_RUNNING);
  EXPECT_STREQ(lnr_advertise_addr(l), "127.0.0.1:0");
  ASSERT_EQ(lnr_stop(l), TRUE);
  EXPECT_EQ(lnr_published_addr(l), nullptr);
  EXPECT_EQ(str(lnr_bound_listen_addr(l)), bound);
  EXPECT_OK(l, lnr_set_advertise_addr(l, nullptr));  // stopped: allowed; NULL clears
  EXPECT_EQ(lnr_advertise_addr(l), nullptr);
}

TEST_F(CapiExtended, AdvertiseAddressMustBeALiteralAddress) {
  lnr_hClient c = make("c", "c_topic");
  for (const char* bad : {"not-an-address", "localhost:4000", "127.0.0.1", "127.0.0.1:99999", "[::1]",
                          "127.0.0.1:\xff"})
    EXPECT_CODE(c, lnr_set_advertise_addr(c, bad), LNR_ERR_INVALID_ARG);
  EXPECT_EQ(lnr_advertise_addr(c), nullptr);
  EXPECT_OK(c, lnr_set_advertise_addr(c, "[::1]:0"));
  EXPECT_STREQ(lnr_advertise_addr(c), "[::1]:0");
  EXPECT_OK(c, lnr_set_advertise_addr(c, ""));  // "" clears too
  EXPECT_EQ(lnr_advertise_addr(c), nullptr);
  int port = testing_support::free_port();
  lnr_hClient d = make("d", "d_topic", "0.0.0.0:" + std::to_string(port));
  EXPECT_OK(d, lnr_set_advertise_addr(d, loopback(port).c_str()));
  ASSERT_EQ(lnr_run(d, ignore, nullptr), TRUE);
  EXPECT_EQ(str(lnr_published_addr(d)), loopback(port));
}

// ---- list_addresses and pending queues -------------------------------------------------------

TEST_F(CapiExtended, ListAddressesReturnsTheDirectoryRows) {
  lnr_hClient o0 = run("owner0", "jobs", nullptr);
  lnr_hClient o1 = run("owner1", "jobs", nullptr);
  lnr_hClient r = make("reader", "reader_topic");
  ASSERT_EQ(lnr_subscribe(r, "jobs"), TRUE);
  ASSERT_EQ(lnr_run(r, ignore, nullptr), TRUE);
  lnr_hClient looker = make("looker", "looker_topic");  // not running: works all the same

  std::vector<std::pair<std::string, std::string>> rows;
  EXPECT_OK(looker, lnr_list_addresses(looker, "jobs", collect_addr, &rows));
  std::sort(rows.begin(), rows.end());
  EXPECT_EQ(rows, hgetall(redis(), "lnr_topic:jobs:addr"));
  decltype(rows) expected = {{str(lnr_published_addr(o0)), "owner0"},
                             {str(lnr_published_addr(o1)), "owner1"},
                             {str(lnr_published_addr(r)), "reader"}};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(rows, expected);
  rows.clear();
  EXPECT_OK(looker, lnr_list_addresses(looker, "nobody", collect_addr, &rows));
  EXPECT_TRUE(rows.empty());
}

namespace {
std::string ck_of(const std::string& listener_unique) {
  return redis().cli({"GET", "lnr_connection:sender:sender_topic:" + listener_unique + ":key"});
}
long long llen(const std::string& ck) {
  return std::atoll(redis().cli({"LLEN", "lnr_connection:" + ck + ":messages"}).c_str());
}
}  // namespace

class CapiPending : public CapiExtended {
 protected:
  // l1 and l2 (fixed ports) received a warm-up from the sender and stopped; the sender then
  // queued 30 and 12 at-least-once messages for them.
  void fill() {
    s = run("sender", "sender_topic", nullptr);
    EXPECT_EQ(lnr_pending_count(s), 0);
    EXPECT_EQ(lnr_last_error_code(s), LNR_OK);
    for (int i = 0; i < 2; ++i) {
      std::string name = "l" + std::to_string(i + 1), topic = name + "_topic";
      port[i] = testing_support::free_port();
      l[i] = run(name.c_str(), topic.c_str(), &in[i], loopback(port[i]));
      ASSERT_EQ(lnr_send_to(s, topic.c_str(), "warm-up", 7, TRUE), TRUE);
      ASSERT_TRUE(in[i].wait_count(1));
    }
    for (auto* c : l) ASSERT_EQ(lnr_stop(c), TRUE);
    for (int i = 0; i < 30; ++i) ASSERT_EQ(lnr_send_to(s, "l1_topic", "a", 1, TRUE), TRUE) << i;
    for (int i = 0; i < 12; ++i) ASSERT_EQ(lnr_send_to(s, "l2_topic", "b", 1, TRUE), TRUE) << i;
    EXPECT_CODE(s, lnr_send_to(s, "l2_topic", "best effort", 11, FALSE), LNR_ERR_NO_ADDR);
    ASSERT_TRUE(wait_for([&] { return llen(ck_of("l1")) == 30 && llen(ck_of("l2")) == 12; }, seconds(10)));
    expected = {{loopback(port[0]), "l1_topic", "l1", 30}, {loopback(port[1]), "l2_topic", "l2", 12}};
    std::sort(expected.begin(), expected.end());
  }
  std::vector<PendingRow> by_peer() {
    std::vector<PendingRow> rows;
    EXPECT_OK(s, lnr_pending_by_peer(s, collect_pending, &rows));
    std::sort(rows.begin(), rows.end());
    return rows;
  }
  lnr_hClient s = nullptr;
  lnr_hClient l[2] = {nullptr, nullptr};
  Inbox in[2];
  int port[2] = {0, 0};
  std::vector<PendingRow> expected;
};

TEST_F(CapiPending, CountsMatchTheOfflineQueues) {
  fill();
  EXPECT_EQ(lnr_pending_count(s), 42);
  EXPECT_EQ(lnr_last_error_code(s), LNR_OK);
  EXPECT_EQ(by_peer(), expected);
  for (int i = 0; i < 2; ++i) ASSERT_EQ(lnr_run(l[i], on_receive, &in[i]), TRUE);
  EXPECT_TRUE(in[0].wait_count(31, seconds(15)) && in[1].wait_count(13, seconds(15)));
  EXPECT_TRUE(wait_for([&] { return lnr_pending_count(s) == 0; }, seconds(10)));
  for (auto& row : by_peer()) EXPECT_EQ(std::get<3>(row), 0);
  EXPECT_EQ(llen(ck_of("l1")) + llen(ck_of("l2")), 0);
}

TEST_F(CapiPending, AStoppedSenderStillCountsItsOfflineQueues) {
  fill();
  ASSERT_EQ(lnr_stop(s), TRUE);
  EXPECT_EQ(llen(ck_of("l1")) + llen(ck_of("l2")), 42);
  EXPECT_EQ(lnr_pending_count(s), 42);
  EXPECT_EQ(by_peer(), expected);
}

// ---- stats -----------------------------------------------------------------------------------

TEST_F(CapiExtended, StatsCountersMoveWithTraffic) {
  Inbox& in = keep<Inbox>();
  std::string addr = loopback(testing_support::free_port());
  lnr_hClient l = run("listener", "listener_topic", &in, addr);
  lnr_hClient s = run("sender", "sender_topic", nullptr);
  lnr_stats_t st{};
  st.size = sizeof st;
  EXPECT_OK(s, lnr_stats(s, &st));
  EXPECT_EQ(st.messages_sent + st.persisted + st.messages_delivered, 0u);

  std::vector<size_t> sizes = {1, 10, 100, 1000, 5000};
  size_t bytes = 0;
  for (size_t n : sizes) {
    std::string p(n, 's');
    ASSERT_EQ(lnr_send_to(s, "listener_topic", p.data(), p.size(), TRUE), TRUE);
    bytes += n;
  }
  ASSERT_TRUE(in.wait_count(sizes.size()));
  auto stats_of = [](lnr_hClient c) {
    lnr_stats_t x{};
    x.size = sizeof x;
    lnr_stats(c, &x);
    return x;
  };
  EXPECT_TRUE(wait_for([&] { return stats_of(s).send_queue_messages == 0; }, seconds(10)));
  st = stats_of(s);
  EXPECT_EQ(st.messages_sent, sizes.size());
  EXPECT_EQ(st.bytes_sent, bytes + 25 * sizes.size());
  EXPECT_EQ(st.send_queue_bytes, 0u);
  EXPECT_EQ(st.persisted + st.reloaded + st.dropped + st.reconnects, 0u);
  EXPECT_TRUE(wait_for([&] { return stats_of(l).messages_delivered == sizes.size(); }, seconds(5)));
  lnr_stats_t ls = stats_of(l);
  EXPECT_EQ(ls.bytes_delivered, bytes);
  EXPECT_EQ(ls.receive_queue_bytes, 0u);
  EXPECT_EQ(ls.messages_sent, 0u);

  // Offline: persisted, then reloaded; reconnects count the connection that broke.
  ASSERT_EQ(lnr_stop(l), TRUE);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(lnr_send_to(s, "listener_topic", "m", 1, TRUE), TRUE);
  EXPECT_TRUE(wait_for([&] { return stats_of(s).persisted == 20; }, seconds(10)));
  EXPECT_EQ(stats_of(s).reconnects, 1u);
  ASSERT_EQ(lnr_run(l, on_receive, &in), TRUE);
  EXPECT_TRUE(in.wait_count(sizes.size() + 20, seconds(15)));
  EXPECT_TRUE(wait_for([&] { return stats_of(s).reloaded >= 20; }, seconds(10)));
  EXPECT_TRUE(wait_for([&] { return stats_of(s).send_queue_messages == 0 && lnr_pending_count(s) == 0; },
                       seconds(10)));
  EXPECT_TRUE(wait_for([&] { return stats_of(l).messages_delivered == sizes.size() + 20; }, seconds(5)));
  EXPECT_EQ(stats_of(l).duplicates, 0u);
}

TEST_F(CapiExtended, StatsHonoursTheSizeField) {
  lnr_hClient c = run("c", "c_topic", nullptr);
  // A caller built against a shorter struct: nothing beyond its size is written.
  lnr_stats_t st;
  std::memset(&st, 0xab, sizeof st);
  st.size = offsetof(lnr_stats_t, messages_delivered);
  EXPECT_OK(c, lnr_stats(c, &st));
  EXPECT_EQ(st.size, offsetof(lnr_stats_t, messages_delivered));
  EXPECT_EQ(st.messages_sent, 0u);
  EXPECT_EQ(st.bytes_sent, 0u);
  EXPECT_EQ(st.messages_delivered, 0xababababababababull);
  EXPECT_EQ(st.receive_queue_bytes, 0xababababababababull);
  // A caller built against a longer (future) struct: the known fields are filled.
  struct Longer {
    lnr_stats_t base;
    unsigned long long future;
  } longer;
  std::memset(&longer, 0xab, sizeof longer);
  longer.base.size = sizeof longer;
  EXPECT_OK(c, lnr_stats(c, &longer.base));
  EXPECT_EQ(longer.base.receive_queue_bytes, 0u);
  // Too short to even hold the size field.
  st.size = 0;
  EXPECT_CODE(c, lnr_stats(c, &st), LNR_ERR_INVALID_ARG);
}

// ---- log sink --------------------------------------------------------------------------------

namespace {
struct LogLines {
  std::mutex mu;
  std::vector<std::string> lines;
  bool contains(const std::string& what) {
    std::lock_guard<std::mutex> l(mu);
    for (auto& s : lines)
      if (s.find(what) != std::string::npos) return true;
    return false;
  }
};
void on_log(const char* line, lnr_uData ud) {
  auto* l = static_cast<LogLines*>(ud);
  std::lock_guard<std::mutex> g(l->mu);
  l->lines.push_back(line);
}
// Restores stderr as the log sink at scope exit, also when an assertion returns early.
struct LogSinkGuard {
  ~LogSinkGuard() { lnr_set_log_cb(nullptr, nullptr); }
};
}  // namespace

TEST_F(CapiExtended, LogLinesGoToTheSinkAndNullRestoresStderr) {
  lnr_hClient c = run("c", "c_topic", nullptr);
  LogLines log;
  LogSinkGuard restore;
  {
    StderrCapture err;
    ASSERT_EQ(lnr_set_log_cb(on_log, &log), TRUE);
    EXPECT_EQ(lnr_send_to(c, "unknown_topic", "x", 1, TRUE), FALSE);
    ASSERT_EQ(lnr_set_log_cb(nullptr, nullptr), TRUE);
    EXPECT_EQ(err.restore().find("unknown_topic"), std::string::npos);
  }
  EXPECT_TRUE(log.contains("unknown_topic"));
  for (auto& line : log.lines) {
    EXPECT_EQ(line.compare(0, 7, "liner: "), 0) << line;
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  }
  size_t before = log.lines.size();
  StderrCapture err;
  EXPECT_EQ(lnr_send_to(c, "other_unknown", "x", 1, TRUE), FALSE);
  std::string text = err.restore();
  EXPECT_NE(text.find("liner: "), std::string::npos) << text;
  EXPECT_NE(text.find("other_unknown"), std::string::npos) << text;
  EXPECT_EQ(log.lines.size(), before);
}

TEST_F(CapiExtended, BackgroundThreadsLogThroughTheSink) {
  lnr_hClient l = run("listener", "listener_topic", nullptr);
  LogLines log;
  LogSinkGuard restore;
  ASSERT_EQ(lnr_set_log_cb(on_log, &log), TRUE);
  int raw = connect_to(str(lnr_bound_listen_addr(l)));
  ASSERT_GE(raw, 0);
  EXPECT_TRUE(write_all(raw, be32(3)));  // a body shorter than its header
  EXPECT_TRUE(closed_by_peer(raw, seconds(10)));
  ::close(raw);
  EXPECT_TRUE(wait_for([&] { return log.contains("closing connection"); }, seconds(5)));
  ASSERT_EQ(lnr_set_log_cb(nullptr, nullptr), TRUE);
}
