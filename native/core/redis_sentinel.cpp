#include "core/redis_sentinel.hpp"

#include <poll.h>

#include <cstdlib>
#include <memory>
#include <vector>

namespace liner {
namespace {

// How often a lost +switch-master subscription is tried again: each try may cost a connect to
// every sentinel, and the command path must stay cheap while they are all down.
constexpr auto kWatchRetry = std::chrono::seconds(1);

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

Reply run(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return Reply(static_cast<redisReply*>(redisCommandArgv(c, int(argv.size()), argv.data(), lens.data())));
}

bool is_error(const redisReply* r, const char* prefix) {
  if (!r || r->type != REDIS_REPLY_ERROR) return false;
  return std::string_view(r->str, r->len).substr(0, std::string_view(prefix).size()) == prefix;
}

bool parse_port(std::string_view text, int* port) {
  if (text.empty() || text.size() > 5) return false;
  int v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < 1 || v > 65535) return false;
  *port = v;
  return true;
}

}  // namespace

Status parse_master_addr_reply(const redisReply* r, RedisNode* out, bool* known) {
  *known = false;
  if (!r) return Status(Err::store, "no reply");
  if (r->type == REDIS_REPLY_NIL) return Status();
  if (r->type == REDIS_REPLY_ERROR) return Status(Err::store, std::string(r->str, r->len));
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
      r->element[1]->type != REDIS_REPLY_STRING || r->element[0]->len == 0)
    return Status(Err::store, "unexpected reply to SENTINEL get-master-addr-by-name");
  RedisNode n;
  n.host.assign(r->element[0]->str, r->element[0]->len);
  if (!parse_port(std::string_view(r->element[1]->str, r->element[1]->len), &n.port))
    return Status(Err::store, "unexpected port in reply to SENTINEL get-master-addr-by-name");
  *out = std::move(n);
  *known = true;
  return Status();
}

bool parse_switch_master(std::string_view payload, const std::string& name, RedisNode* new_master) {
  std::vector<std::string_view> words;
  while (!payload.empty()) {
    size_t space = payload.find(' ');
    words.push_back(payload.substr(0, space));
    if (space == std::string_view::npos) break;
    payload.remove_prefix(space + 1);
  }
  if (words.size() != 5 || words[0] != name || words[3].empty()) return false;
  RedisNode n;
  n.host = std::string(words[3]);
  if (!parse_port(words[4], &n.port)) return false;
  *new_master = std::move(n);
  return true;
}

std::string parse_role_reply(const redisReply* r) {
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING)
    return std::string();
  return std::string(r->element[0]->str, r->element[0]->len);
}

RedisSentinel::RedisSentinel(const RedisEndpoint& endpoint, Opener opener)
    : endpoint_(endpoint), opener_(std::move(opener)) {}

RedisSentinel::~RedisSentinel() { drop_watch(); }

std::string RedisSentinel::all_sentinels() const {
  std::string text;
  for (const auto& n : endpoint_.nodes) text += (text.empty() ? "" : ",") + where(n);
  return text;
}

// A sentinel with `requirepass` answers NOAUTH to everything before AUTH; one without rejects
// AUTH, so it is sent only when asked for.
Status RedisSentinel::login_if_asked(redisContext* c, const RedisNode& sentinel) {
  Reply r = run(c, {"PING"});
  if (!r) return Status(Err::store, "redis sentinel at " + where(sentinel) + " did not answer");
  if (!is_error(r.get(), "NOAUTH")) return Status();
  if (endpoint_.password.empty())
    return Status(Err::store, "redis sentinel at " + where(sentinel) + " requires a password and the URL has none");
  r = endpoint_.user.empty() ? run(c, {"AUTH", endpoint_.password})
                             : run(c, {"AUTH", endpoint_.user, endpoint_.password});
  if (!r || r->type == REDIS_REPLY_ERROR)
    return Status(Err::store, "redis sentinel at " + where(sentinel) + " refused the URL's user and password");
  return Status();
}

Status RedisSentinel::ask(const RedisNode& sentinel, RedisNode* master, bool* known) {
  redisContext* raw = nullptr;
  Status s = opener_(sentinel, &raw);
  if (!s) return s;
  std::unique_ptr<redisContext, void (*)(redisContext*)> c(raw, redisFree);
  s = login_if_asked(c.get(), sentinel);
  if (!s) return s;
  Reply r = run(c.get(), {"SENTINEL", "get-master-addr-by-name", endpoint_.master_name});
  if (!r) return Status(Err::store, "redis sentinel at " + where(sentinel) + " did not answer");
  s = parse_master_addr_reply(r.get(), master, known);
  if (!s) return Status(Err::store, "redis sentinel at " + where(sentinel) + ": " + s.message);
  return s;
}

Status RedisSentinel::resolve(RedisNode* master) {
  // Subscribe first: a switch announced between the answer and the subscription is not missed.
  if (!watch_) watch();
  std::string failures;
  bool someone_answered = false;
  for (const auto& sentinel : endpoint_.nodes) {
    bool known = false;
    Status s = ask(sentinel, master, &known);
    if (!s) {
      failures += (failures.empty() ? "" : "; ") + s.message;
      continue;
    }
    someone_answered = true;
    if (!known) continue;  // this sentinel may not monitor it yet; ask the next
    known_master_ = *master;
    have_master_ = true;
    switched_ = false;
    return Status();
  }
  if (someone_answered)
    return Status(Err::store, "redis sentinels at " + all_sentinels() + " know no master named '" +
                                  endpoint_.master_name + "'");
  return Status(Err::store, "no redis sentinel reachable for master '" + endpoint_.master_name + "' (" + failures + ")");
}

void RedisSentinel::drop_watch() {
  if (watch_) redisFree(watch_);
  watch_ = nullptr;
}

void RedisSentinel::watch() {
  auto now = std::chrono::steady_clock::now();
  if (now < next_watch_) return;
  next_watch_ = now + kWatchRetry;
  for (const auto& sentinel : endpoint_.nodes) {
    redisContext* raw = nullptr;
    if (!opener_(sentinel, &raw)) continue;
    std::unique_ptr<redisContext, void (*)(redisContext*)> c(raw, redisFree);
    if (!login_if_asked(c.get(), sentinel)) continue;
    Reply r = run(c.get(), {"SUBSCRIBE", "+switch-master"});
    if (!r || r->type != REDIS_REPLY_ARRAY) continue;
    watch_ = c.release();
    return;
  }
}

bool RedisSentinel::master_changed() {
  if (switched_) return true;
  if (!watch_) {
    bool had_watch_before = next_watch_ != std::chrono::steady_clock::time_point{};
    watch();
    // A subscription made again may have missed the announcement: ask once more.
    if (watch_ && had_watch_before && have_master_) {
      RedisNode before = known_master_, now;
      if (resolve(&now) && (now.host != before.host || now.port != before.port)) switched_ = true;
    }
    return switched_;
  }
  auto take_buffered = [&]() -> bool {
    for (;;) {
      void* raw = nullptr;
      if (redisGetReplyFromReader(watch_, &raw) != REDIS_OK) return false;
      if (!raw) return true;
      Reply r(static_cast<redisReply*>(raw));
      // ["message", "+switch-master", payload]
      RedisNode moved;
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->type == REDIS_REPLY_STRING &&
          parse_switch_master(std::string_view(r->element[2]->str, r->element[2]->len), endpoint_.master_name,
                              &moved) &&
          (!have_master_ || moved.host != known_master_.host || moved.port != known_master_.port))
        switched_ = true;
    }
  };
  pollfd pfd{watch_->fd, POLLIN, 0};
  if (::poll(&pfd, 1, 0) > 0) {
    if (redisBufferRead(watch_) != REDIS_OK || !take_buffered()) drop_watch();
  }
  return switched_;
}

}  // namespace liner
