// Parses the Redis store URLs. liner_broker's forms (redis-rs syntax):
//   redis://[user:pass@]host[:port][/db]      host may be "[v6]"; default port 6379, db 0
//   unix:///path/to/socket  or  redis+unix://  (optional ?db=N)
// and liner's own, for Redis as it runs in production:
//   rediss://…                                  TLS, certificate verified (see RedisTls)
//   redis+sentinel://[user:pass@]h1:p1,h2:p2/master_name[/db]      sentinels (default port 26379)
//   redis+cluster://[user:pass@]h1:p1[,h2:p2…]                     seed nodes of a Redis Cluster
//   rediss+sentinel:// and rediss+cluster://   the same over TLS (sentinels included)
// TLS settings go in the query, on every TCP form: ?ca=FILE&cert=FILE&key=FILE&sni=NAME.
#pragma once
#include <string>
#include <vector>

#include "core/status.hpp"

namespace liner {

struct RedisNode {
  std::string host;  // without brackets
  int port = 6379;
};

// TLS to every server the URL leads to. Verification is always on: a server whose certificate
// does not chain to `ca_file` (or, without it, to the system's trust store) or does not name
// the host is refused, never used in clear.
struct RedisTls {
  bool on = false;
  std::string ca_file;    // ?ca=   PEM bundle; empty: SSL_CERT_FILE / SSL_CERT_DIR / OpenSSL's default paths
  std::string cert_file;  // ?cert= client certificate (PEM), with ?key=
  std::string key_file;   // ?key=  its private key (PEM)
  std::string sni;        // ?sni=  name sent and verified; empty: the host connected to
};

enum class RedisTopology {
  server,    // one server: host/port or a unix socket
  sentinel,  // `nodes` are sentinels that name the master of `master_name`
  cluster,   // `nodes` are seeds of a cluster; the others are discovered
};

struct RedisEndpoint {
  RedisTopology topology = RedisTopology::server;
  bool is_unix = false;
  std::string host;  // server: TCP host, without brackets
  int port = 6379;
  std::string path;  // server: unix socket path
  std::vector<RedisNode> nodes;  // sentinel, cluster
  std::string master_name;       // sentinel
  std::string user;
  std::string password;
  int db = 0;  // always 0 on a cluster
  RedisTls tls;
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
