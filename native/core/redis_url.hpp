// Parses the store URL forms liner_broker accepts (redis-rs syntax):
//   redis://[user:pass@]host[:port][/db]      host may be "[v6]"; default port 6379, db 0
//   unix:///path/to/socket  or  redis+unix:///path   (optional ?db=N)
#pragma once
#include <string>

#include "core/status.hpp"

namespace liner {

struct RedisEndpoint {
  bool is_unix = false;
  std::string host;  // TCP host, without brackets
  int port = 6379;
  std::string path;  // unix socket path
  std::string user;
  std::string password;
  int db = 0;
};

Status parse_redis_url(const std::string& url, RedisEndpoint* out);

}  // namespace liner
