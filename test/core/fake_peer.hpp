// A sender's end of a TCP connection to a listener under test, over loopback: writes frames
// (or any bytes) and tells when the listener closed the connection.
#pragma once
#include <errno.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "core/frame.hpp"

namespace testing_support {

class FakePeer {
 public:
  FakePeer(int port, int32_t ck, int32_t topic_key) : ck_(ck), topic_key_(topic_key) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(uint16_t(port));
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~FakePeer() { close(); }
  FakePeer(const FakePeer&) = delete;
  FakePeer& operator=(const FakePeer&) = delete;

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }

  static std::string payload(int32_t ck, uint64_t number) {
    return std::to_string(ck) + ":" + std::to_string(number);
  }
  // At-least-once frames numbered first..last of channel ck, payload "<ck>:<number>" padded
  // with `pad` dots.
  static std::string frames(int32_t ck, int32_t topic_key, uint64_t first, uint64_t last, size_t pad = 0) {
    std::string out;
    for (uint64_t n = first; n <= last; ++n) {
      liner::FrameHeader h;
      h.number_mess = n;
      h.connection_key = ck;
      h.topic_key = topic_key;
      h.flags = liner::kFlagAtLeastOnce;
      std::string data = payload(ck, n) + std::string(pad, '.');
      liner::encode_frame(out, h, data.data(), data.size());
    }
    return out;
  }
  std::string frames(uint64_t first, uint64_t last, size_t pad = 0) const {
    return frames(ck_, topic_key_, first, last, pad);
  }
  void write(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      ASSERT_GT(n, 0);
      done += size_t(n);
    }
  }
  // Writes what the socket takes now; returns how much (stops at EAGAIN or an error).
  size_t write_some(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n <= 0) break;
      done += size_t(n);
    }
    return done;
  }
  // Sends frames numbered first..last of this peer's channel.
  void send(uint64_t first, uint64_t last, size_t pad = 0) { write(frames(first, last, pad)); }
  // True once the listener closed this connection (EOF or reset), within `timeout`.
  bool closed_by_listener(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, int(left.count())) <= 0) continue;
      char c;
      ssize_t n = ::recv(fd_, &c, 1, 0);
      if (n <= 0) return true;  // the listener never writes: anything readable is the end
      ADD_FAILURE() << "the listener wrote to a sender's connection";
      return true;
    }
  }
  // Whether the connection is still open (nothing readable right now: no EOF, no reset).
  bool open_now() {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }

 private:
  int fd_ = -1;
  int32_t ck_;
  int32_t topic_key_;
};

}  // namespace testing_support
