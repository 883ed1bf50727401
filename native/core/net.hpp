// Socket plumbing shared by the sender and the listener (POSIX).
#pragma once
#include <sys/socket.h>

#include <string>

#include "core/status.hpp"

namespace liner {

// Splits "host:port" / "[v6]:port". The port must be 0..65535.
Status split_host_port(const std::string& text, std::string* host, int* port);

// Resolves a listen or peer address. Prefers IPv4 when a name has both (so "localhost" is
// registered as 127.0.0.1:port, the form liner_broker peers use).
Status resolve_address(const std::string& text, sockaddr_storage* addr, socklen_t* len);

// "ip:port", or "[v6]:port" — the canonical text peers register and look up.
std::string format_address(const sockaddr* addr);

// A non-blocking listening socket bound to text; *bound gets the canonical bound address.
Status listen_on(const std::string& text, int* fd, std::string* bound);

// Starts a non-blocking connect; *fd is valid when the result is ok (the connect may still be
// in progress: wait for writability, then read SO_ERROR).
Status start_connect(const std::string& text, int* fd);

void set_nonblocking(int fd);
void set_nodelay(int fd);

// An eventfd used to wake a thread blocked in epoll_wait.
class Waker {
 public:
  Waker();
  ~Waker();
  int fd() const { return fd_; }
  void wake();
  void drain();

 private:
  int fd_;
};

}  // namespace liner
