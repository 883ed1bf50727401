// One hiredis connection with the habits a broker needs: connect and command timeouts, TLS,
// AUTH/SELECT done on connect, lazy reconnect after Redis restarts (with a back-off, so a dead
// Redis costs one fast failure per call, not a connect timeout each), pipelining, and a
// pollable pub/sub mode. Under Sentinel it finds the master through the sentinels and follows
// fail-overs (redis_sentinel.hpp). Not thread-safe: each thread of a client owns its own.
#pragma once
#include <hiredis/hiredis.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/redis_sentinel.hpp"
#include "core/redis_tls.hpp"
#include "core/redis_url.hpp"
#include "core/status.hpp"

namespace liner {

class RedisCluster;

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using RedisReply = std::unique_ptr<redisReply, ReplyDeleter>;
using RedisArgs = std::vector<std::string_view>;

class RedisConn {
 public:
  explicit RedisConn(RedisEndpoint endpoint, int timeout_ms = 2000);
  ~RedisConn();
  RedisConn(const RedisConn&) = delete;
  RedisConn& operator=(const RedisConn&) = delete;

  // Connects now (the creation-time check); later calls reconnect by themselves.
  Status connect();

  // Runs one command. An error reply becomes Err::store with Redis's text.
  Status command(const RedisArgs& args, RedisReply* reply = nullptr);

  // Sends all commands in one write, then reads every reply (one round trip).
  Status pipeline(const std::vector<RedisArgs>& commands, std::vector<RedisReply>* replies);

  // Pub/sub: after subscribe(), only poll_messages() may be used on this connection.
  Status subscribe(const std::string& channel);
  // Waits up to timeout_ms for published messages; appends their payloads.
  Status poll_messages(int timeout_ms, std::vector<std::string>* payloads);

  // Every key name matching a glob `pattern` (SCAN, never KEYS), unsorted, possibly repeated;
  // on a cluster, from every primary.
  Status scan(const std::string& pattern, std::vector<std::string>* names);

  void close();

  // The server commands go to, "host:port" (or the socket path); under Sentinel the master
  // found by the last connect, empty before one.
  std::string master_address() const;

  // Told when the connection is lost (`up` false: a connect failed, Redis did not answer in
  // time or closed it) and when one works again after that; not for error replies, which
  // come over a working connection. Runs on the thread that made the call.
  using HealthFn = std::function<void(bool up, const std::string& why)>;
  void on_health(HealthFn fn) { on_health_ = std::move(fn); }

 private:
  void set_health(bool up, const std::string& why);
  Status ensure_connected();
  // A connected context to `target` (or the unix socket), TLS started, AUTH and SELECT done and
  // a PING answered; else an Err::store status that says why, without the password.
  Status open(const RedisNode& target, redisContext** out);
  // Connected, TLS started, nothing sent: what open() builds on, and how sentinels are reached.
  Status open_socket(const RedisNode& target, redisContext** out);
  void leave_old_master();
  Status fail(const std::string& what);
  // Closes the connection, backs off the next attempt and records `message` as the failure.
  Status give_up(const std::string& message);
  Status check_reply(redisReply* r);
  std::string without_password(std::string text) const;
  bool connection_dropped() const;

  RedisEndpoint endpoint_;
  int timeout_ms_;
  std::shared_ptr<RedisTlsContext> tls_;  // rediss: made on the first connect
  redisContext* ctx_ = nullptr;
  std::string subscribed_;
  std::chrono::steady_clock::time_point retry_after_{};
  std::chrono::steady_clock::duration reconnect_pause_;
  Status last_failure_;
  HealthFn on_health_;
  // Sentinel topology only (redis+sentinel://): finds the master before each connect and
  // watches +switch-master; master_ is the one connected to last.
  std::unique_ptr<RedisSentinel> sentinel_;
  RedisNode master_{"", 0};
  enum class Health { unknown, up, down } health_ = Health::unknown;
  // redis+cluster://: every call above is handed to the router (redis_cluster.hpp), which
  // owns one server-topology RedisConn per node; `ctx_` stays unused.
  std::unique_ptr<RedisCluster> cluster_;
  Status cluster_result(Status s);
};

// For tools (`liner topics`): the server a Redis store URL leads to now, "host:port". Under
// Sentinel that is the master the sentinels name (checked with ROLE), found with a connection of
// its own; for a server URL, the server itself. Empty for URLs that are not Redis's.
Status redis_server_of(const std::string& url, std::string* where);

}  // namespace liner
