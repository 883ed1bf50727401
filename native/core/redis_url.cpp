#include "core/redis_url.hpp"

#include <cstdlib>
#include <cstring>

namespace liner {
namespace {

bool parse_int(const std::string& s, int lo, int hi, int* out) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  long v = std::strtol(s.c_str(), nullptr, 10);
  if (v < lo || v > hi) return false;
  *out = int(v);
  return true;
}

// Userinfo may be percent-encoded, as in any URL.
std::string percent_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      char hex[3] = {s[i + 1], s[i + 2], 0};
      char* end = nullptr;
      long v = std::strtol(hex, &end, 16);
      if (end == hex + 2) {
        out.push_back(char(v));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

Status bad(const std::string& url, const std::string& why) {
  return Status(Err::invalid_arg, "invalid redis url '" + redact_redis_url(url) + "': " + why);
}

}  // namespace

std::string redact_redis_url(const std::string& url) {
  size_t scheme_end = url.find("://");
  size_t start = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  size_t at = url.rfind('@');
  if (at == std::string::npos || at < start) return url;
  size_t colon = url.find(':', start);
  if (colon == std::string::npos || colon > at) return url;  // a user name only: no secret
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

namespace {

struct Scheme {
  const char* prefix;
  RedisTopology topology;
  bool tls;
};
constexpr Scheme kTcpSchemes[] = {
    {"redis://", RedisTopology::server, false},           {"rediss://", RedisTopology::server, true},
    {"redis+sentinel://", RedisTopology::sentinel, false}, {"rediss+sentinel://", RedisTopology::sentinel, true},
    {"redis+cluster://", RedisTopology::cluster, false},   {"rediss+cluster://", RedisTopology::cluster, true},
};
constexpr const char* kUnixSchemes[] = {"unix://", "redis+unix://"};

bool starts_with(const std::string& s, const char* prefix) { return s.compare(0, std::strlen(prefix), prefix) == 0; }

Status parse_unix(const std::string& url, std::string rest, RedisEndpoint* out) {
  out->is_unix = true;
  size_t q = rest.find('?');
  if (q != std::string::npos) {
    std::string query = rest.substr(q + 1);
    rest.resize(q);
    if (query.compare(0, 3, "db=") != 0 || !parse_int(query.substr(3), 0, 1 << 20, &out->db))
      return bad(url, "only ?db=N is understood after a socket path");
  }
  if (rest.empty() || rest[0] != '/') return bad(url, "expected an absolute socket path");
  out->path = rest;
  return Status();
}

// "host[:port]" or "[v6][:port]".
Status parse_node(const std::string& url, const std::string& text, int default_port, RedisNode* node) {
  std::string port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) return bad(url, "unclosed '[' in the host");
    node->host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') return bad(url, "unexpected text after ']'");
      port = text.substr(close + 2);
    }
  } else {
    size_t colon = text.rfind(':');
    node->host = text.substr(0, colon);
    if (colon != std::string::npos) port = text.substr(colon + 1);
  }
  node->port = default_port;
  if (node->host.empty()) return bad(url, "missing host");
  if (!port.empty() && !parse_int(port, 1, 65535, &node->port)) return bad(url, "bad port '" + port + "'");
  return Status();
}

// "ca=…&cert=…&key=…&sni=…", values percent-encoded.
Status parse_tls_query(const std::string& url, const std::string& query, RedisTls* tls) {
  size_t at = 0;
  while (at <= query.size()) {
    size_t amp = query.find('&', at);
    std::string pair = query.substr(at, amp == std::string::npos ? std::string::npos : amp - at);
    at = amp == std::string::npos ? query.size() + 1 : amp + 1;
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string name = pair.substr(0, eq);
    std::string value = eq == std::string::npos ? std::string() : percent_decode(pair.substr(eq + 1));
    std::string* field = name == "ca" ? &tls->ca_file : name == "cert" ? &tls->cert_file
                       : name == "key" ? &tls->key_file : name == "sni" ? &tls->sni : nullptr;
    if (!field) return bad(url, "unknown query parameter '" + name + "' (known: ca, cert, key, sni)");
    if (value.empty()) return bad(url, "'" + name + "=' needs a value");
    if (!tls->on) return bad(url, "'" + name + "=' is a TLS setting: the scheme must be rediss");
    *field = value;
  }
  if (tls->cert_file.empty() != tls->key_file.empty())
    return bad(url, "a client certificate needs both cert= and key=");
  return Status();
}

}  // namespace

Status parse_redis_url(const std::string& url, RedisEndpoint* out) {
  *out = RedisEndpoint();
  for (const char* scheme : kUnixSchemes)
    if (starts_with(url, scheme)) return parse_unix(url, url.substr(std::strlen(scheme)), out);
  const Scheme* scheme = nullptr;
  for (const Scheme& s : kTcpSchemes)
    if (starts_with(url, s.prefix)) scheme = &s;
  if (!scheme)
    return bad(url, "expected redis://, rediss://, redis+sentinel://, redis+cluster://, unix:// or redis+unix://");
  out->topology = scheme->topology;
  out->tls.on = scheme->tls;
  std::string rest = url.substr(std::strlen(scheme->prefix));
  // As in any URL, '?' ends the authority and the path: a password holding '?', '/' or '@' is
  // percent-encoded.
  size_t q = rest.find('?');
  if (q != std::string::npos) {
    Status s = parse_tls_query(url, rest.substr(q + 1), &out->tls);
    if (!s) return s;
    rest.resize(q);
  }
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? std::string() : rest.substr(slash + 1);
  size_t at = authority.rfind('@');
  if (at != std::string::npos) {
    std::string userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    size_t colon = userinfo.find(':');
    out->user = percent_decode(userinfo.substr(0, colon));
    if (colon != std::string::npos) out->password = percent_decode(userinfo.substr(colon + 1));
  }
  int default_port = scheme->topology == RedisTopology::sentinel ? 26379 : 6379;
  for (size_t from = 0; from <= authority.size();) {
    size_t comma = authority.find(',', from);
    std::string text = authority.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
    RedisNode node;
    Status s = parse_node(url, text, default_port, &node);
    if (!s) return s;
    out->nodes.push_back(std::move(node));
    from = comma == std::string::npos ? authority.size() + 1 : comma + 1;
  }
  std::string db = path;
  if (scheme->topology == RedisTopology::sentinel) {
    size_t end = path.find('/');
    out->master_name = path.substr(0, end);
    db = end == std::string::npos ? std::string() : path.substr(end + 1);
    if (out->master_name.empty()) return bad(url, "a sentinel URL names the master: redis+sentinel://host:port/master_name[/db]");
  }
  if (!db.empty() && !parse_int(db, 0, 1 << 20, &out->db)) return bad(url, "the database must be a number");
  if (scheme->topology == RedisTopology::cluster && out->db != 0) return bad(url, "a cluster has database 0 only");
  if (scheme->topology == RedisTopology::server) {
    if (out->nodes.size() != 1) return bad(url, "one host only (for several, use redis+sentinel:// or redis+cluster://)");
    out->host = out->nodes[0].host;
    out->port = out->nodes[0].port;
    out->nodes.clear();
  }
  return Status();
}

}  // namespace liner
