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

// Errors name the URL as redact_redis_url() shows it, never with its password.
Status parse_redis_url(const std::string& url, RedisEndpoint* out);

// `url` as it may be shown in a message or a log line: the password replaced by "***"
// ("redis://user:***@host:6379/0"). It takes any text, not only URLs that parse: the userinfo
// is what lies between "://" (or the start) and the last '@', so a password holding '@', '/'
// or ':' is hidden whole, and a URL that fails to parse is shown without its password too.
// src/redact.ts's redact() (the TypeScript API's) follows the same rule.
std::string redact_redis_url(const std::string& url);

}  // namespace liner
