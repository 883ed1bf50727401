#include "core/redis_cluster.hpp"

#include <strings.h>

#include <algorithm>
#include <set>
#include <thread>

namespace liner {
namespace {

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && strncasecmp(text.data(), prefix.data(), prefix.size()) == 0;
}

bool is(std::string_view word, const char* name) {
  return word.size() == std::char_traits<char>::length(name) && strncasecmp(word.data(), name, word.size()) == 0;
}

// "host:port" (the host may hold ':' itself: IPv6) -> node; an empty host is `fallback`'s.
bool parse_node(std::string_view text, const std::string& fallback_host, RedisNode* out) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) return false;
  int port = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) return false;
    port = port * 10 + (c - '0');
  }
  out->host = colon == 0 ? fallback_host : std::string(text.substr(0, colon));
  out->port = port;
  return true;
}

// A refreshed table is not read again before this: a burst of failures costs one CLUSTER SLOTS.
constexpr auto kRefreshPause = std::chrono::milliseconds(100);
// TRYAGAIN (a slot being migrated) and CLUSTERDOWN (no owner yet during a fail-over): wait, retry.
constexpr auto kBusyPause = std::chrono::milliseconds(100);

}  // namespace

RedisCluster::RedisCluster(RedisEndpoint seeds, int timeout_ms) : seeds_(std::move(seeds)), timeout_ms_(timeout_ms) {}

uint16_t RedisCluster::crc16(std::string_view data) {
  // CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection.
  uint16_t crc = 0;
  for (unsigned char byte : data) {
    crc ^= uint16_t(byte) << 8;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 0x8000) ? uint16_t((crc << 1) ^ 0x1021) : uint16_t(crc << 1);
  }
  return crc;
}

uint16_t RedisCluster::key_slot(std::string_view key) {
  // Only the part between the first '{' and the first '}' after it, when that is not empty.
  size_t open = key.find('{');
  if (open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return crc16(key) & (kSlots - 1);
}

bool RedisCluster::key_of(const RedisArgs& args, std::string_view* key) {
  if (args.empty()) return false;
  std::string_view name = args[0];
  if (is(name, "EVAL") || is(name, "EVALSHA")) {
    // EVAL script numkeys key...: keyless when numkeys is 0.
    if (args.size() < 4 || args[2] == "0") return false;
    *key = args[3];
    return true;
  }
  if (is(name, "PING") || is(name, "PUBLISH") || is(name, "SUBSCRIBE") || is(name, "SCAN") || is(name, "INFO") ||
      is(name, "CLUSTER") || is(name, "TIME") || args.size() < 2)
    return false;
  *key = args[1];
  return true;
}

RedisConn* RedisCluster::node(const std::string& name) {
  auto it = conns_.find(name);
  if (it != conns_.end()) return it->second.get();
  RedisNode n;
  if (!parse_node(name, "", &n)) return nullptr;
  RedisEndpoint ep = seeds_;
  ep.topology = RedisTopology::server;
  ep.nodes.clear();
  ep.host = n.host;
  ep.port = n.port;
  ep.db = 0;
  return conns_.emplace(name, std::make_unique<RedisConn>(std::move(ep), timeout_ms_)).first->second.get();
}

std::vector<std::string> RedisCluster::primaries() const {
  std::vector<std::string> out;
  for (const auto& k : known_) out.push_back(k.first);
  return out;
}

Status RedisCluster::connect() {
  last_refresh_ = {};
  Status s = refresh();
  lost_ = !s;
  return s;
}

void RedisCluster::close() {
  conns_.clear();
  sub_.reset();
}

Status RedisCluster::refresh() {
  auto now = std::chrono::steady_clock::now();
  if (!slot_owner_.empty() && now - last_refresh_ < kRefreshPause) return Status();
  last_refresh_ = now;
  std::vector<std::string> candidates = primaries();
  for (const auto& seed : seeds_.nodes) candidates.push_back(name_of(seed));
  std::set<std::string> tried;
  Status first;
  for (const auto& name : candidates) {
    // Nodes that do not answer cost a time-out each: the whole search is bounded by one.
    if (!tried.empty() && std::chrono::steady_clock::now() - now >= std::chrono::milliseconds(timeout_ms_)) break;
    if (!tried.insert(name).second) continue;
    Status s = refresh_from(name);
    if (s) return s;
    // A seed that is no cluster node is a mistake in the URL: say so rather than "unreachable".
    if (first.ok() || s.message.find("not a cluster node") != std::string::npos) first = s;
  }
  return first.ok() ? Status(Err::store, "redis cluster: no node known") : first;
}

Status RedisCluster::refresh_from(const std::string& name) {
  RedisConn* c = node(name);
  if (!c) return Status(Err::store, "redis cluster: bad node address " + name);
  RedisReply r;
  Status s = c->command({"CLUSTER", "SLOTS"}, &r);
  if (!s) {
    if (r && r->type == REDIS_REPLY_ERROR &&
        std::string_view(r->str, r->len).find("cluster support disabled") != std::string_view::npos)
      return Status(Err::store, "redis at " + name +
                                    " is not a cluster node (cluster support disabled): use redis:// for one "
                                    "server, redis+cluster:// only for a Redis Cluster");
    return s;
  }
  if (r->type != REDIS_REPLY_ARRAY) return Status(Err::store, "redis cluster: bad CLUSTER SLOTS reply from " + name);
  std::string fallback_host = name.substr(0, name.rfind(':'));
  std::vector<std::string> owners(kSlots);
  std::map<std::string, RedisNode> known;
  for (size_t i = 0; i < r->elements; ++i) {
    const redisReply* e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || e->element[0]->type != REDIS_REPLY_INTEGER ||
        e->element[1]->type != REDIS_REPLY_INTEGER || e->element[2]->type != REDIS_REPLY_ARRAY ||
        e->element[2]->elements < 2 || e->element[2]->element[0]->type != REDIS_REPLY_STRING ||
        e->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
      return Status(Err::store, "redis cluster: bad CLUSTER SLOTS reply from " + name);
    long long first = e->element[0]->integer, last = e->element[1]->integer;
    RedisNode n;
    n.host.assign(e->element[2]->element[0]->str, e->element[2]->element[0]->len);
    if (n.host.empty() || n.host == "?") n.host = fallback_host;  // "unknown endpoint": the one we asked
    n.port = int(e->element[2]->element[1]->integer);
    if (first < 0 || last >= kSlots || first > last) continue;
    std::string owner = name_of(n);
    known[owner] = n;
    for (long long slot = first; slot <= last; ++slot) owners[size_t(slot)] = owner;
  }
  if (known.empty()) return Status(Err::store, "redis cluster at " + name + " serves no slot yet");
  slot_owner_ = std::move(owners);
  known_ = std::move(known);
  return Status();
}

Status RedisCluster::target_for(const RedisArgs& args, std::string* name) {
  if (slot_owner_.empty()) {
    Status s = refresh();
    if (!s) return s;
  }
  std::string_view key;
  if (!key_of(args, &key)) {
    // Any primary; the subscribed one if there is one, so one node carries the pub/sub load.
    *name = !sub_node_.empty() && known_.count(sub_node_) ? sub_node_ : known_.begin()->first;
    return Status();
  }
  uint16_t slot = key_slot(key);
  *name = slot_owner_[slot];
  if (name->empty()) return Status(Err::store, "redis cluster: slot " + std::to_string(slot) + " has no primary");
  return Status();
}

Status RedisCluster::run_one(const RedisArgs& args, std::string target, RedisReply* reply) {
  bool asking = false;
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    RedisConn* c = node(target);
    if (!c) return Status(Err::store, "redis cluster: bad node address " + target);
    if (asking) {
      RedisReply ignored;
      c->command({"ASKING"}, &ignored);
    }
    RedisReply r;
    Status s = c->command(args, &r);
    if (!r) {
      // Not reached (or the answer was lost). A promoted replica shows in a fresh table; a
      // command that may have run is sent again only to that other node.
      lost_ = true;
      std::string before = target;
      if (!asking && refresh() && target_for(args, &target) && target != before) continue;
      return s;
    }
    lost_ = false;
    if (r->type == REDIS_REPLY_ERROR) {
      std::string_view text(r->str, r->len);
      bool moved = starts_with(text, "MOVED "), ask = starts_with(text, "ASK ");
      if (moved || ask) {
        RedisNode to;
        std::string host = target.substr(0, target.rfind(':'));
        if (!parse_node(text.substr(text.rfind(' ') + 1), host, &to))
          return Status(Err::store, "redis cluster: bad redirection: " + std::string(text));
        target = name_of(to);
        asking = ask;
        if (moved) {
          last_refresh_ = {};
          refresh();  // the table is stale; the redirection is followed even if this fails
        }
        continue;
      }
      if (starts_with(text, "TRYAGAIN") || starts_with(text, "CLUSTERDOWN")) {
        std::this_thread::sleep_for(kBusyPause);
        continue;
      }
    }
    if (reply) *reply = std::move(r);
    return s;
  }
  return Status(Err::store, "redis cluster: too many redirections for " + std::string(args[0]));
}

Status RedisCluster::command(const RedisArgs& args, RedisReply* reply) {
  std::string target;
  Status s = target_for(args, &target);
  if (!s) {
    lost_ = true;
    return s;
  }
  RedisReply local;
  return run_one(args, target, reply ? reply : &local);
}

Status RedisCluster::pipeline(const std::vector<RedisArgs>& commands, std::vector<RedisReply>* replies) {
  std::vector<RedisReply> out(commands.size());
  // Runs [from, to) of keyed commands: one round trip per node, each node's share in order.
  auto run_keyed = [&](size_t from, size_t to) -> Status {
    std::map<std::string, std::vector<size_t>> groups;
    for (size_t i = from; i < to; ++i) {
      std::string target;
      Status s = target_for(commands[i], &target);
      if (!s) return s;
      groups[target].push_back(i);
    }
    for (const auto& g : groups) {
      RedisConn* c = node(g.first);
      if (!c) return Status(Err::store, "redis cluster: bad node address " + g.first);
      std::vector<RedisArgs> share;
      for (size_t i : g.second) share.push_back(commands[i]);
      std::vector<RedisReply> got;
      Status s = c->pipeline(share, &got);
      if (got.size() != share.size()) {
        lost_ = true;
        refresh();
        return s;
      }
      for (size_t j = 0; j < share.size(); ++j) out[g.second[j]] = std::move(got[j]);
    }
    // Answered MOVED/ASK/TRYAGAIN/CLUSTERDOWN: not run, so sent again, one by one.
    for (size_t i = from; i < to; ++i) {
      const redisReply* r = out[i].get();
      if (r->type != REDIS_REPLY_ERROR) continue;
      std::string_view text(r->str, r->len);
      if (!starts_with(text, "MOVED ") && !starts_with(text, "ASK ") && !starts_with(text, "TRYAGAIN") &&
          !starts_with(text, "CLUSTERDOWN"))
        continue;
      std::string target;
      Status s = target_for(commands[i], &target);
      if (s) s = run_one(commands[i], target, &out[i]);
      if (!out[i]) return s;
    }
    return Status();
  };
  // A command without a key (PUBLISH: an announcement) waits for every command before it, on
  // every node: what it announces is written first, as on one server.
  size_t from = 0;
  for (size_t i = 0; i <= commands.size(); ++i) {
    std::string_view key;
    if (i < commands.size() && key_of(commands[i], &key)) continue;
    Status s = run_keyed(from, i);
    if (!s) return s;
    if (i < commands.size()) {
      std::string target;
      s = target_for(commands[i], &target);
      if (s) s = run_one(commands[i], target, &out[i]);
      if (!out[i]) return s;
    }
    from = i + 1;
  }
  lost_ = false;
  Status first_error;
  for (auto& r : out) {
    if (r->type == REDIS_REPLY_ERROR && first_error.ok())
      first_error = Status(Err::store, "redis error: " + std::string(r->str, r->len));
    if (replies) replies->push_back(std::move(r));
  }
  return first_error;
}

Status RedisCluster::subscribe(const std::string& channel) {
  // PUBLISH reaches subscribers on every node of the cluster: any primary will do. The one
  // used before goes last, since a subscription is made again after its node was lost.
  std::string previous = sub_node_;
  sub_.reset();
  sub_node_.clear();
  if (slot_owner_.empty() || !previous.empty()) {
    Status s = refresh();
    if (!s && slot_owner_.empty()) {
      lost_ = true;
      return s;
    }
  }
  std::vector<std::string> order = primaries();
  std::stable_partition(order.begin(), order.end(), [&](const std::string& n) { return n != previous; });
  Status s(Err::store, "redis cluster: no primary to subscribe on");
  for (const auto& name : order) {
    RedisNode n;
    parse_node(name, "", &n);
    RedisEndpoint ep = seeds_;
    ep.topology = RedisTopology::server;
    ep.nodes.clear();
    ep.host = n.host;
    ep.port = n.port;
    auto c = std::make_unique<RedisConn>(std::move(ep), timeout_ms_);
    s = c->subscribe(channel);
    if (s) {
      sub_ = std::move(c);
      sub_node_ = name;
      lost_ = false;
      return s;
    }
  }
  lost_ = true;
  return s;
}

Status RedisCluster::poll_messages(int timeout_ms, std::vector<std::string>* payloads) {
  if (!sub_) return Status(Err::store, "redis subscription lost");
  Status s = sub_->poll_messages(timeout_ms, payloads);
  if (!s) {
    sub_.reset();
    lost_ = true;
  }
  return s;
}

Status RedisCluster::scan(const std::string& pattern, std::vector<std::string>* names) {
  if (slot_owner_.empty()) {
    Status s = refresh();
    if (!s) return s;
  }
  std::set<std::string> found;  // SCAN may return a key twice
  for (const auto& name : primaries()) {
    RedisConn* c = node(name);
    std::string cursor = "0";
    do {
      RedisReply r;
      Status s = c->command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"}, &r);
      if (!s) {
        if (!r) {
          lost_ = true;
          refresh();
        }
        return s;
      }
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return Status(Err::store, "redis cluster: bad SCAN reply from " + name);
      cursor.assign(r->element[0]->str, r->element[0]->len);
      for (size_t i = 0; i < r->element[1]->elements; ++i)
        found.emplace(r->element[1]->element[i]->str, r->element[1]->element[i]->len);
    } while (cursor != "0");
  }
  lost_ = false;
  names->assign(found.begin(), found.end());
  return Status();
}

}  // namespace liner
