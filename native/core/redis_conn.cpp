#include "core/redis_conn.hpp"

#include "core/redis_cluster.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>

#include "core/log.hpp"

namespace liner {
namespace {

// Between reconnect attempts to a Redis that failed: doubles with each failure in a row, so a
// long outage costs a handful of attempts per thread, and is reset by a working connection.
// The cap bounds how long after Redis is back a client still answers with the old failure.
constexpr auto kReconnectPause = std::chrono::milliseconds(200);
constexpr auto kMaxReconnectPause = std::chrono::milliseconds(2000);

timeval to_timeval(int ms) {
  timeval tv;
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

void to_argv(const RedisArgs& args, std::vector<const char*>* argv, std::vector<size_t>* lens) {
  argv->clear();
  lens->clear();
  for (auto a : args) {
    argv->push_back(a.data());
    lens->push_back(a.size());
  }
}

// A server that answers LOADING (it restarted and is reading its data, or a replica is
// syncing) is not available yet: that is the outage going on, not an error over a working
// connection, so the connection is dropped and retried like one that was refused.
bool not_ready(const std::string& error_text) { return error_text.compare(0, 7, "LOADING") == 0; }

// READONLY: the server we write to is a replica now. Under Sentinel (only there: a server URL
// that names a replica is a configuration error, reported as such) that is a fail-over we took
// part in (the old master was demoted and rejoined as a replica while we held a connection to
// it): like LOADING, the connection is dropped, and the next attempt asks the sentinels again.
bool demoted(const std::string& error_text) { return error_text.compare(0, 8, "READONLY") == 0; }

}  // namespace

RedisConn::RedisConn(RedisEndpoint endpoint, int timeout_ms)
    : endpoint_(std::move(endpoint)), timeout_ms_(timeout_ms), reconnect_pause_(kReconnectPause) {
  if (endpoint_.topology == RedisTopology::cluster) cluster_ = std::make_unique<RedisCluster>(endpoint_, timeout_ms_);
}

// The router reports whether its last call reached the cluster; health follows that.
Status RedisConn::cluster_result(Status s) {
  if (cluster_->lost()) set_health(false, s.message);
  else set_health(true, "");
  return s;
}

RedisConn::~RedisConn() { close(); }

void RedisConn::close() {
  if (cluster_) cluster_->close();
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
}

// Text that came from the server or from hiredis, fit for a message: Redis does not echo the
// arguments of a failed AUTH, but nothing stops a proxy or another server from doing so, and
// the message reaches logs, status events and every binding's errors.
std::string RedisConn::without_password(std::string text) const {
  const std::string& secret = endpoint_.password;
  if (secret.empty()) return text;
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3))
    text.replace(at, secret.size(), "***");
  return text;
}

Status RedisConn::fail(const std::string& what) {
  std::string detail = ctx_ && ctx_->err ? ": " + without_password(ctx_->errstr) : std::string();
  return give_up("redis " + what + detail);
}

Status RedisConn::give_up(const std::string& message) {
  close();
  retry_after_ = std::chrono::steady_clock::now() + reconnect_pause_;
  reconnect_pause_ = std::min<std::chrono::steady_clock::duration>(reconnect_pause_ * 2, kMaxReconnectPause);
  last_failure_ = Status(Err::store, message);
  set_health(false, last_failure_.message);
  return last_failure_;
}

void RedisConn::set_health(bool up, const std::string& why) {
  if (up) reconnect_pause_ = kReconnectPause;
  Health now = up ? Health::up : Health::down;
  // unknown -> up is the first connect, not a recovery.
  bool tell = health_ != now && (!up || health_ == Health::down);
  health_ = now;
  if (tell && on_health_) on_health_(up, why);
}

// The server closed or reset the connection (a restart), as opposed to not answering in time:
// only the former is worth an immediate second try.
bool RedisConn::connection_dropped() const {
  if (!ctx_) return false;
  if (ctx_->err == REDIS_ERR_EOF) return true;
  return ctx_->err == REDIS_ERR_IO && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINPROGRESS;
}

Status RedisConn::check_reply(redisReply* r) {
  if (!r) return fail("connection lost");
  if (r->type != REDIS_REPLY_ERROR) return Status();
  std::string text = without_password(std::string(r->str, r->len));
  if (not_ready(text)) return give_up("redis is not ready: " + text);
  if (sentinel_ && demoted(text)) return give_up("redis master was demoted (fail-over): " + text);
  return Status(Err::store, "redis error: " + text);
}

Status RedisConn::connect() {
  if (cluster_) return cluster_result(cluster_->connect());
  retry_after_ = {};
  return ensure_connected();
}

Status RedisConn::ensure_connected() {
  // Sentinel: a master that a sentinel announced as replaced is left at once, before this
  // command is written to it, so that every connection of the client follows the fail-over.
  if (ctx_ && sentinel_ && sentinel_->master_changed()) leave_old_master();
  if (ctx_) return Status();
  if (std::chrono::steady_clock::now() < retry_after_) return last_failure_;
  if (endpoint_.tls.on && !tls_) {
    Status s = RedisTlsContext::create(endpoint_.tls, &tls_);
    if (!s) return give_up(s.message);
  }
  RedisNode target{endpoint_.host, endpoint_.port};
  if (endpoint_.topology == RedisTopology::sentinel) {
    if (!sentinel_)
      sentinel_ = std::make_unique<RedisSentinel>(
          endpoint_, [this](const RedisNode& node, redisContext** out) { return open_socket(node, out); });
    Status s = sentinel_->resolve(&target);  // before every (re)connect: the master may have moved
    if (!s) return give_up(s.message);
  }
  Status s = open(target, &ctx_);
  if (!s) return give_up(s.message);
  if (sentinel_) {
    // A sentinel's answer may be stale (it has not seen the fail-over yet) or name a demoted
    // master that came back as a replica: use the server only if it says it is the master.
    RedisReply r(static_cast<redisReply*>(redisCommand(ctx_, "ROLE")));
    std::string role = parse_role_reply(r.get());
    if (role != "master")
      return give_up("redis at " + target.host + ":" + std::to_string(target.port) + " is not the master of '" +
                     endpoint_.master_name + "' (role: " + (role.empty() ? "no answer" : role) + "); retrying");
    if (master_.port != 0 && (master_.host != target.host || master_.port != target.port))
      log_line("redis master of '" + endpoint_.master_name + "' is now " + target.host + ":" +
               std::to_string(target.port) + " (was " + master_.host + ":" + std::to_string(master_.port) + ")");
    master_ = target;
  }
  set_health(true, "");
  return Status();
}

void RedisConn::leave_old_master() {
  close();
  retry_after_ = {};  // the new master is known: connect to it now, without a back-off
  // An outage as the health callback and status events see it, ended by the next connect.
  set_health(false, "redis master of '" + endpoint_.master_name + "' changed (sentinel fail-over)");
}

std::string RedisConn::master_address() const {
  if (endpoint_.topology != RedisTopology::sentinel)
    return endpoint_.is_unix ? endpoint_.path : endpoint_.host + ":" + std::to_string(endpoint_.port);
  return master_.port ? master_.host + ":" + std::to_string(master_.port) : std::string();
}

Status redis_server_of(const std::string& url, std::string* where) {
  where->clear();
  RedisEndpoint ep;
  if (!parse_redis_url(url, &ep)) return Status();  // not a Redis URL (sqlite:, postgres://)
  if (ep.topology == RedisTopology::cluster) return Status();  // many servers, none "the" one
  RedisConn conn(std::move(ep));
  Status s = conn.connect();
  if (s) *where = conn.master_address();
  return s;
}

Status RedisConn::open_socket(const RedisNode& target, redisContext** out) {
  timeval tv = to_timeval(timeout_ms_);
  redisContext* c = endpoint_.is_unix ? redisConnectUnixWithTimeout(endpoint_.path.c_str(), tv)
                                      : redisConnectWithTimeout(target.host.c_str(), target.port, tv);
  if (!c) return Status(Err::store, "redis out of memory");
  std::unique_ptr<redisContext, void (*)(redisContext*)> owned(c, redisFree);
  std::string where = endpoint_.is_unix ? endpoint_.path : target.host + ":" + std::to_string(target.port);
  auto failed = [&](const std::string& what) {
    return Status(Err::store, "redis " + what + (c->err ? ": " + without_password(c->errstr) : std::string()));
  };
  if (c->err) return failed("unreachable at " + where);
  if (redisSetTimeout(c, tv) != REDIS_OK) return failed("timeout setup failed");
  if (!endpoint_.is_unix) redisEnableKeepAlive(c);  // on a unix socket it fails and poisons the context
  if (tls_) {
    Status s = tls_->start(c, target.host, where);
    if (!s) return s;
  }
  *out = owned.release();
  return Status();
}

Status RedisConn::open(const RedisNode& target, redisContext** out) {
  redisContext* c = nullptr;
  Status opened = open_socket(target, &c);
  if (!opened) return opened;
  std::unique_ptr<redisContext, void (*)(redisContext*)> owned(c, redisFree);
  std::string where = endpoint_.is_unix ? endpoint_.path : target.host + ":" + std::to_string(target.port);
  auto failed = [&](const std::string& what) {
    return Status(Err::store, "redis " + what + (c->err ? ": " + without_password(c->errstr) : std::string()));
  };
  std::string db_text = std::to_string(endpoint_.db);
  std::vector<RedisArgs> setup;
  if (!endpoint_.password.empty()) {
    if (endpoint_.user.empty()) setup.push_back({"AUTH", endpoint_.password});
    else setup.push_back({"AUTH", endpoint_.user, endpoint_.password});
  }
  if (endpoint_.db != 0) setup.push_back({"SELECT", db_text});
  // The connection counts as up only once the server answers a command: one that accepts
  // connections while it loads its data answers LOADING here, and the outage goes on.
  setup.push_back({"PING"});
  for (auto& args : setup) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    to_argv(args, &argv, &lens);
    RedisReply r(static_cast<redisReply*>(redisCommandArgv(c, int(argv.size()), argv.data(), lens.data())));
    if (!r) return failed("unreachable at " + where);
    if (r->type == REDIS_REPLY_ERROR) {
      std::string text = without_password(std::string(r->str, r->len));
      if (not_ready(text)) return Status(Err::store, "redis is not ready: " + text);
      return Status(Err::store, "redis " + std::string(args[0]) + " failed: " + text);
    }
  }
  *out = owned.release();
  return Status();
}

Status RedisConn::command(const RedisArgs& args, RedisReply* reply) {
  if (cluster_) return cluster_result(cluster_->command(args, reply));
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  to_argv(args, &argv, &lens);
  // A connection that worked before may have died with a Redis restart: reconnect once, at
  // once, and retry, rather than fail the first call after every restart.
  bool reused = ctx_ != nullptr;
  for (int attempt = 0;; ++attempt) {
    Status s = ensure_connected();
    if (!s) return s;
    RedisReply r(static_cast<redisReply*>(redisCommandArgv(ctx_, int(argv.size()), argv.data(), lens.data())));
    if (!r && reused && attempt == 0 && connection_dropped()) {
      close();
      retry_after_ = {};
      continue;
    }
    s = check_reply(r.get());
    if (reply) *reply = std::move(r);
    return s;
  }
}

Status RedisConn::pipeline(const std::vector<RedisArgs>& commands, std::vector<RedisReply>* replies) {
  if (cluster_) return cluster_result(cluster_->pipeline(commands, replies));
  if (ctx_) {
    // Same reasoning as command(): find out cheaply whether a reused connection still works.
    RedisReply r(static_cast<redisReply*>(redisCommand(ctx_, "PING")));
    if (!r && !connection_dropped()) return fail("did not answer");
    if (!r) {
      close();
      retry_after_ = {};
    }
  }
  Status s = ensure_connected();
  if (!s) return s;
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& args : commands) {
    to_argv(args, &argv, &lens);
    if (redisAppendCommandArgv(ctx_, int(argv.size()), argv.data(), lens.data()) != REDIS_OK)
      return fail("pipeline append failed");
  }
  Status first_error;
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK) return fail("connection lost");
    RedisReply r(static_cast<redisReply*>(raw));
    s = check_reply(r.get());
    if (!s && first_error.ok()) first_error = s;
    if (replies) replies->push_back(std::move(r));
  }
  return first_error;
}

Status RedisConn::subscribe(const std::string& channel) {
  if (cluster_) return cluster_result(cluster_->subscribe(channel));
  subscribed_.clear();
  Status s = command({"SUBSCRIBE", channel});
  if (s) subscribed_ = channel;
  return s;
}

Status RedisConn::poll_messages(int timeout_ms, std::vector<std::string>* payloads) {
  if (cluster_) return cluster_result(cluster_->poll_messages(timeout_ms, payloads));
  if (ctx_ && sentinel_ && sentinel_->master_changed()) leave_old_master();  // the caller subscribes again
  if (subscribed_.empty() || !ctx_) return Status(Err::store, "redis subscription lost");
  auto take_buffered = [&]() -> Status {
    for (;;) {
      void* raw = nullptr;
      if (redisGetReplyFromReader(ctx_, &raw) != REDIS_OK) return fail("protocol error");
      if (!raw) return Status();
      RedisReply r(static_cast<redisReply*>(raw));
      // ["message", channel, payload]
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->type == REDIS_REPLY_STRING)
        payloads->emplace_back(r->element[2]->str, r->element[2]->len);
    }
  };
  Status s = take_buffered();
  if (!s || !payloads->empty()) return s;
  pollfd pfd{ctx_->fd, POLLIN, 0};
  int n = ::poll(&pfd, 1, timeout_ms);
  if (n <= 0) return Status();
  if (redisBufferRead(ctx_) != REDIS_OK) return fail("subscription connection lost");
  return take_buffered();
}

Status RedisConn::scan(const std::string& pattern, std::vector<std::string>* names) {
  if (cluster_) return cluster_result(cluster_->scan(pattern, names));
  std::string cursor = "0";
  do {
    RedisReply r;
    Status s = command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"}, &r);
    if (!s) return s;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) return Status(Err::store, "redis: bad SCAN reply");
    cursor.assign(r->element[0]->str, r->element[0]->len);
    for (size_t i = 0; i < r->element[1]->elements; ++i)
      names->emplace_back(r->element[1]->element[i]->str, r->element[1]->element[i]->len);
  } while (cursor != "0");
  return Status();
}

}  // namespace liner
