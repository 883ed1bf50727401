// RedisConn's health: what counts as the connection being lost and found again. A restarted
// Redis accepts connections while it reads its data and answers LOADING until it is done; that
// is the outage going on, so the connection must not report "up" (and the client
// STORE_RECOVERED) before the server answers, nor report an error over a working connection
// (a second store error for the same outage) when LOADING comes.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/redis_conn.hpp"
#include "test_support.hpp"

using namespace liner;

namespace {

// A RESP server on loopback that answers PONG to PING and OK to anything else, except that the
// next `n` commands after answer_error(n, text) get the error reply `text`. One connection at
// a time, which is how RedisConn uses it.
class LoadingRedis {
 public:
  LoadingRedis() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(listen_fd_, 4) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("fake redis: cannot listen");
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~LoadingRedis() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    thread_.join();
  }
  int port() const { return port_; }
  void answer_error(int commands, std::string text) {
    std::lock_guard<std::mutex> lock(mu_);
    errors_left_ = commands;
    error_ = std::move(text);
  }
  void answer_loading(int commands) { answer_error(commands, "LOADING Redis is loading the dataset in memory"); }

 private:
  void serve() {
    while (!stopping_) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      std::string in;
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
        in.append(buf, size_t(n));
        for (std::string command; take_command(&in, &command);) reply(fd, command);
      }
      ::close(fd);
    }
  }
  // Takes one whole command (an array of bulk strings) off `in`; its first word into *command.
  static bool take_command(std::string* in, std::string* command) {
    size_t at = 0;
    auto line = [&](std::string* out) {
      size_t end = in->find("\r\n", at);
      if (end == std::string::npos) return false;
      *out = in->substr(at, end - at);
      at = end + 2;
      return true;
    };
    std::string head;
    if (!line(&head) || head.empty() || head[0] != '*') return false;
    int words = std::stoi(head.substr(1));
    for (int i = 0; i < words; ++i) {
      std::string size;
      if (!line(&size)) return false;
      size_t n = std::stoul(size.substr(1));
      if (in->size() < at + n + 2) return false;
      if (i == 0) *command = in->substr(at, n);
      at += n + 2;
    }
    in->erase(0, at);
    return true;
  }
  void reply(int fd, const std::string& command) {
    std::string out = command == "PING" ? "+PONG\r\n" : "+OK\r\n";
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (errors_left_ > 0) {
        --errors_left_;
        out = "-" + error_ + "\r\n";
      }
    }
    if (::write(fd, out.data(), out.size()) < 0) return;
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::mutex mu_;
  int errors_left_ = 0;
  std::string error_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

struct HealthLog {
  std::mutex mu;
  std::vector<bool> changes;  // true: up again, false: lost
  void operator()(bool up, const std::string&) {
    std::lock_guard<std::mutex> lock(mu);
    changes.push_back(up);
  }
  std::vector<bool> seen() {
    std::lock_guard<std::mutex> lock(mu);
    return changes;
  }
};

RedisEndpoint endpoint_of(const LoadingRedis& server) {
  RedisEndpoint e;
  e.host = "127.0.0.1";
  e.port = server.port();
  return e;
}

// A connection to a fake server, its health changes logged.
struct Rig {
  LoadingRedis server;
  HealthLog health;  // before conn: conn's callback refers to it
  RedisConn conn{endpoint_of(server), 1000};
  Rig() { conn.on_health(std::ref(health)); }
};

// Calls GET until it succeeds (reconnects are paused by the back-off) or 10 s passed.
Status command_until_ok(RedisConn& conn) {
  Status s;
  testing_support::wait_for([&] { return bool(s = conn.command({"GET", "k"})); }, std::chrono::seconds(10));
  return s;
}

}  // namespace

TEST(RedisConnHealth, AServerThatIsLoadingIsNotUpUntilItAnswers) {
  Rig r;
  r.server.answer_loading(3);

  Status first = r.conn.connect();
  EXPECT_EQ(first.code, Err::store);
  EXPECT_NE(first.message.find("not ready"), std::string::npos) << first.message;
  EXPECT_EQ(r.health.seen(), std::vector<bool>{false});

  ASSERT_TRUE(command_until_ok(r.conn));
  EXPECT_EQ(r.health.seen(), (std::vector<bool>{false, true})) << "one loss, one recovery, nothing between";
}

TEST(RedisConnHealth, LoadingOverAWorkingConnectionIsALossNotAnErrorReply) {
  Rig r;
  ASSERT_TRUE(r.conn.connect());
  ASSERT_TRUE(r.conn.command({"GET", "k"}));
  EXPECT_TRUE(r.health.seen().empty()) << "the first connect is not a recovery";

  r.server.answer_loading(2);  // this command, then the PING of the reconnect
  Status s = r.conn.command({"GET", "k"});
  EXPECT_EQ(s.code, Err::store);
  EXPECT_NE(s.message.find("not ready"), std::string::npos) << s.message;
  EXPECT_EQ(r.health.seen(), std::vector<bool>{false});

  ASSERT_TRUE(command_until_ok(r.conn));
  EXPECT_EQ(r.health.seen(), (std::vector<bool>{false, true}));
}

TEST(RedisConnHealth, OtherErrorRepliesLeaveTheConnectionUp) {
  Rig r;
  ASSERT_TRUE(r.conn.connect());
  r.server.answer_error(1, "WRONGTYPE Operation against a key holding the wrong kind of value");
  Status s = r.conn.command({"GET", "k"});
  EXPECT_EQ(s.code, Err::store);
  EXPECT_NE(s.message.find("redis error: WRONGTYPE"), std::string::npos) << s.message;
  ASSERT_TRUE(r.conn.command({"GET", "k"})) << "the same connection, no back-off";
  EXPECT_TRUE(r.health.seen().empty());
}
