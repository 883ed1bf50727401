// RedisStore (redis_store.hpp: its key layout and invariants): opening a store from a URL,
// the connection's health, the feed of directory changes (PUBLISHed on lnr_directory:{db}), and
// the reply parsing and key scanning the other redis_store_*.cpp files share.
#include <cerrno>
#include <cstdlib>
#include <set>

#include "core/redis_store.hpp"

namespace liner {
namespace {

// Pub/sub channels span all databases: the database number keeps meshes apart.
std::string directory_channel(int db) { return "lnr_directory:" + std::to_string(db); }

}  // namespace

RedisStore::RedisStore(RedisEndpoint ep) : channel_(directory_channel(ep.db)), conn_(std::move(ep)) {}

void RedisStore::on_health(HealthFn fn) { conn_.on_health(std::move(fn)); }

Status RedisStore::ping() {
  Status s = conn_.connect();
  return s ? conn_.command({"PING"}) : s;
}

Status RedisStore::wait_directory_events(int timeout_ms, std::vector<DirectoryEvent>* events) {
  Status s;
  if (!subscribed_) {
    s = conn_.subscribe(channel_);
    if (!s) return s;
    subscribed_ = true;
  }
  std::vector<std::string> payloads;
  s = conn_.poll_messages(timeout_ms, &payloads);
  if (!s) {
    subscribed_ = false;  // resubscribe on a fresh connection next time
    return s;
  }
  for (const auto& p : payloads) {
    size_t a = p.find(kSep), b = p.find(kSep, a == std::string::npos ? a : a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    DirectoryEvent e;
    std::string kind = p.substr(0, a);
    if (kind == "refused") {  // refused \x1f ck \x1f "number reason"
      std::string rest = p.substr(b + 1);
      size_t space = rest.find(' ');
      e.kind = DirectoryEvent::refused;
      e.connection_key = int32_t(std::strtol(p.substr(a + 1, b - a - 1).c_str(), nullptr, 10));
      e.number = std::strtoull(rest.substr(0, space).c_str(), nullptr, 10);
      e.reason = space == std::string::npos ? std::string() : rest.substr(space + 1);
      events->push_back(std::move(e));
      continue;
    }
    e.kind = kind == "leave"         ? DirectoryEvent::leave
             : kind == "unsubscribe" ? DirectoryEvent::unsubscribe
             : kind == "subscribe"   ? DirectoryEvent::subscribe
                                     : DirectoryEvent::join;
    e.topic = p.substr(a + 1, b - a - 1);
    e.addr = p.substr(b + 1);
    events->push_back(std::move(e));
  }
  return s;
}

Status open_redis_store(const std::string& url, std::unique_ptr<Store>* out) {
  RedisEndpoint ep;
  Status s = parse_redis_url(url, &ep);
  if (!s) return s;
  out->reset(new RedisStore(std::move(ep)));
  return s;
}

// ---- Helpers the other files share --------------------------------------------------------------

bool RedisStore::parse_u64(std::string_view text, uint64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  for (char c : text)
    if (c < '0' || c > '9') return false;
  errno = 0;
  unsigned long long v = std::strtoull(std::string(text).c_str(), nullptr, 10);
  if (errno) return false;
  *out = v;
  return true;
}

bool RedisStore::parse_u64(const redisReply* r, uint64_t* out) {
  if (r->type == REDIS_REPLY_INTEGER) {
    if (r->integer < 0) return false;
    *out = uint64_t(r->integer);
    return true;
  }
  return r->type == REDIS_REPLY_STRING && parse_u64(std::string_view(r->str, r->len), out);
}

bool RedisStore::parse_i32(std::string_view text, int32_t* out) {
  if (text.empty() || text.size() > 11) return false;
  size_t i = text[0] == '-' ? 1 : 0;
  if (i == text.size()) return false;
  for (; i < text.size(); ++i)
    if (text[i] < '0' || text[i] > '9') return false;
  long long v = std::strtoll(std::string(text).c_str(), nullptr, 10);
  if (v < INT32_MIN || v > INT32_MAX) return false;
  *out = int32_t(v);
  return true;
}

bool RedisStore::parse_i32(const redisReply* r, int32_t* out) {
  if (r->type == REDIS_REPLY_STRING) return parse_i32(std::string_view(r->str, r->len), out);
  if (r->type != REDIS_REPLY_INTEGER || r->integer < INT32_MIN || r->integer > INT32_MAX) return false;
  *out = int32_t(r->integer);
  return true;
}

bool RedisStore::between(const std::string& name, const std::string& prefix, const char* suffix, std::string* middle) {
  size_t tail = std::char_traits<char>::length(suffix);
  if (name.size() < prefix.size() + tail || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - tail, tail, suffix) != 0)
    return false;
  middle->assign(name, prefix.size(), name.size() - prefix.size() - tail);
  return true;
}

Status RedisStore::corrupt(const std::string& key) {
  return Status(Err::store, "redis key " + key + " does not hold the expected number");
}

std::string RedisStore::glob_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string RedisStore::event(const char* kind, const std::string& topic, const std::string& addr) {
  return std::string(kind) + kSep + topic + kSep + addr;
}

Status RedisStore::scan(const std::string& pattern, std::vector<std::string>* names) {
  std::vector<std::string> all;
  Status s = conn_.scan(pattern, &all);
  if (!s) return s;
  std::set<std::string> found(all.begin(), all.end());  // SCAN may return a key twice
  names->assign(found.begin(), found.end());
  return Status();
}

}  // namespace liner
