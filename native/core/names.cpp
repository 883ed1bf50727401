#include "core/names.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "core/net.hpp"

namespace liner {

Status check_name(const char* what, const std::string& name) {
  if (name.find_first_of(":\\") == std::string::npos) return Status();
  return Status(Err::invalid_arg, std::string(what) + " '" + name + "' must not contain ':' or '\\'");
}

Status check_advertise_address(const std::string& addr) {
  if (addr.empty()) return Status();
  std::string host;
  int port = 0;
  Status s = split_host_port(addr, &host, &port);
  if (!s) return Status(Err::invalid_arg, "advertise address '" + addr + "': " + s.message);
  sockaddr_storage sa{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&sa);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&sa);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(uint16_t(port));
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(uint16_t(port));
  } else {
    return Status(Err::invalid_arg, "advertise address '" + addr + "' must be a literal ip:port, not a name");
  }
  if (format_address(reinterpret_cast<sockaddr*>(&sa)) != addr)
    return Status(Err::invalid_arg, "advertise address '" + addr + "' must be a literal ip:port in canonical form");
  return Status();
}

}  // namespace liner
