#include "core/redis_url.hpp"

#include <cstdlib>

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

Status parse_redis_url(const std::string& url, RedisEndpoint* out) {
  *out = RedisEndpoint();
  std::string rest;
  for (const char* scheme : {"unix://", "redis+unix://"}) {
    std::string s(scheme);
    if (url.compare(0, s.size(), s) == 0) {
      out->is_unix = true;
      rest = url.substr(s.size());
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
  }
  const std::string scheme = "redis://";
  if (url.compare(0, scheme.size(), scheme) != 0)
    return bad(url, "expected redis://, unix:// or redis+unix://");
  rest = url.substr(scheme.size());
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) {
    std::string db = rest.substr(slash + 1);
    if (!db.empty() && !parse_int(db, 0, 1 << 20, &out->db)) return bad(url, "the database must be a number");
  }
  size_t at = authority.rfind('@');
  if (at != std::string::npos) {
    std::string userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    size_t colon = userinfo.find(':');
    out->user = percent_decode(userinfo.substr(0, colon));
    if (colon != std::string::npos) out->password = percent_decode(userinfo.substr(colon + 1));
  }
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return bad(url, "unclosed '[' in the host");
    out->host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return bad(url, "unexpected text after ']'");
      port = authority.substr(close + 2);
    }
  } else {
    size_t colon = authority.rfind(':');
    out->host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (out->host.empty()) return bad(url, "missing host");
  if (!port.empty() && !parse_int(port, 1, 65535, &out->port)) return bad(url, "bad port '" + port + "'");
  return Status();
}

}  // namespace liner
