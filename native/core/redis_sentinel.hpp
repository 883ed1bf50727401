// Redis Sentinel, as one RedisConn in sentinel topology (redis+sentinel://) uses it:
// - resolve(): asks the sentinels, in URL order, `SENTINEL get-master-addr-by-name <name>`; the
//   first that answers decides. Unknown name and no sentinel reachable are Err::store messages
//   that name the sentinels and the master name, never the password.
// - master_changed(): a non-blocking look at a subscription to one sentinel's `+switch-master`
//   channel, made before each command, so that every connection a client holds (commands, the
//   directory feed, acks) leaves the old master as soon as a sentinel announces the new one.
//   A subscription that is lost is made again (at most once a second) and followed by a
//   resolve(), so a switch announced while it was down is still noticed.
// Sentinels get no SELECT (they have no databases). They get AUTH only when they answer NOAUTH,
// with the URL's user and password: a deployment whose sentinels have a password of their own
// (sentinel's `requirepass`) must give them the same one as the data servers.
// Not thread-safe: owned by one RedisConn.
#pragma once
#include <hiredis/hiredis.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "core/redis_url.hpp"
#include "core/status.hpp"

namespace liner {

// ---- Reply parsing (pure) -----------------------------------------------------------------------

// SENTINEL get-master-addr-by-name: ["ip", "port"], or nil for a name the sentinel does not know.
// `known` false for nil; Err::store for any other shape.
Status parse_master_addr_reply(const redisReply* r, RedisNode* out, bool* known);

// A +switch-master message: "<name> <old ip> <old port> <new ip> <new port>". False when it does
// not have that shape or is about another master than `name`.
bool parse_switch_master(std::string_view payload, const std::string& name, RedisNode* new_master);

// ROLE: ["master", offset, [replicas]] or ["slave", …] / ["sentinel", …]. The first word, or
// empty for another shape.
std::string parse_role_reply(const redisReply* r);

// ---- The sentinels of one master ----------------------------------------------------------------

class RedisSentinel {
 public:
  // Opens a connected context to one sentinel (TLS as the endpoint says, no AUTH, no SELECT) or
  // says why not, without the password. RedisConn provides it, so TLS is set up in one place.
  using Opener = std::function<Status(const RedisNode& sentinel, redisContext** out)>;

  RedisSentinel(const RedisEndpoint& endpoint, Opener opener);
  ~RedisSentinel();
  RedisSentinel(const RedisSentinel&) = delete;
  RedisSentinel& operator=(const RedisSentinel&) = delete;

  // The master's address, from the first sentinel that answers; `known_master_` becomes it.
  Status resolve(RedisNode* master);

  // True when a sentinel announced that the master moved away from the last one resolve()
  // returned. Never waits for the network beyond a re-subscription (a connect to a sentinel,
  // at most once a second while the subscription is lost).
  bool master_changed();

 private:
  Status ask(const RedisNode& sentinel, RedisNode* master, bool* known);
  Status login_if_asked(redisContext* c, const RedisNode& sentinel);
  void watch();  // (re)subscribes to +switch-master on the first sentinel that answers
  void drop_watch();
  std::string where(const RedisNode& n) const { return n.host + ":" + std::to_string(n.port); }
  std::string all_sentinels() const;

  RedisEndpoint endpoint_;
  Opener opener_;
  RedisNode known_master_;
  bool have_master_ = false;
  redisContext* watch_ = nullptr;
  bool switched_ = false;  // a +switch-master for our name, not yet acted on
  std::chrono::steady_clock::time_point next_watch_{};
};

}  // namespace liner
