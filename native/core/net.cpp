#include "core/net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace liner {

Status split_host_port(const std::string& text, std::string* host, int* port) {
  auto bad = [&](const char* why) {
    return Status(Err::invalid_arg, "invalid address '" + text + "': " + why);
  };
  std::string port_text;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return bad("expected [v6]:port");
    *host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return bad("expected host:port");
    *host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host->find(':') != std::string::npos) return bad("put IPv6 hosts in brackets");
  }
  if (host->empty()) return bad("missing host");
  if (port_text.empty() || port_text.size() > 5) return bad("bad port");
  for (char c : port_text)
    if (c < '0' || c > '9') return bad("bad port");
  *port = std::stoi(port_text);
  if (*port > 65535) return bad("port above 65535");
  return Status();
}

Status resolve_address(const std::string& text, sockaddr_storage* addr, socklen_t* len) {
  std::string host;
  int port = 0;
  Status s = split_host_port(text, &host, &port);
  if (!s) return s;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(port);
  if (getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res) != 0) {
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res);
    if (rc != 0)
      return Status(Err::bind, "cannot resolve '" + host + "': " + gai_strerror(rc));
  }
  const addrinfo* pick = res;
  for (const addrinfo* ai = res; ai; ai = ai->ai_next)
    if (ai->ai_family == AF_INET) {
      pick = ai;
      break;
    }
  std::memcpy(addr, pick->ai_addr, pick->ai_addrlen);
  *len = pick->ai_addrlen;
  freeaddrinfo(res);
  return Status();
}

std::string format_address(const sockaddr* addr) {
  char ip[INET6_ADDRSTRLEN] = {0};
  if (addr->sa_family == AF_INET6) {
    auto* a6 = reinterpret_cast<const sockaddr_in6*>(addr);
    inet_ntop(AF_INET6, &a6->sin6_addr, ip, sizeof ip);
    return "[" + std::string(ip) + "]:" + std::to_string(ntohs(a6->sin6_port));
  }
  auto* a4 = reinterpret_cast<const sockaddr_in*>(addr);
  inet_ntop(AF_INET, &a4->sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(a4->sin_port));
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Status listen_on(const std::string& text, int* fd, std::string* bound) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  Status s = resolve_address(text, &addr, &len);
  if (!s) return s;
  int sock = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (sock < 0) return Status(Err::bind, std::string("socket: ") + std::strerror(errno));
  int one = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(sock, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(sock, 1024) != 0) {
    int e = errno;
    ::close(sock);
    return Status(Err::bind, "cannot listen on " + text + ": " + std::strerror(e));
  }
  len = sizeof addr;
  getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len);
  *bound = format_address(reinterpret_cast<sockaddr*>(&addr));
  *fd = sock;
  return Status();
}

Status start_connect(const std::string& text, int* fd) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  Status s = resolve_address(text, &addr, &len);
  if (!s) return s;
  int sock = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (sock < 0) return Status(Err::startup, std::string("socket: ") + std::strerror(errno));
  if (::connect(sock, reinterpret_cast<sockaddr*>(&addr), len) != 0 && errno != EINPROGRESS) {
    int e = errno;
    ::close(sock);
    return Status(Err::no_addr, "connect to " + text + ": " + std::strerror(e));
  }
  set_nodelay(sock);
  *fd = sock;
  return Status();
}

Waker::Waker() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
Waker::~Waker() {
  if (fd_ >= 0) ::close(fd_);
}
void Waker::wake() {
  uint64_t one = 1;
  ssize_t rc = ::write(fd_, &one, sizeof one);
  (void)rc;
}
void Waker::drain() {
  uint64_t v;
  ssize_t rc = ::read(fd_, &v, sizeof v);
  (void)rc;
}

}  // namespace liner
