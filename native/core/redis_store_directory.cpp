// RedisStore, the directory (redis_store.hpp): topics' addresses (lnr_topic:{topic}:addr), the
// marks of peers that unsubscribed, the leases that make a crashed peer's entries lapse, and
// putting back what the store lost of a running peer's registration.
#include <algorithm>

#include "core/redis_store.hpp"

namespace liner {

// Lua: `now`, the store's clock in milliseconds (leases use it, so peers' clocks never matter).
#define LNR_LUA_NOW_MS                 \
  "local t = redis.call('TIME')\n" \
  "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

Status RedisStore::register_address(const std::string& topic, const std::string& addr,
                                    const std::string& unique_name, DirectoryEvent::Kind why) {
  const char* kind = why == DirectoryEvent::subscribe ? "subscribe" : "join";
  // A lease left by a peer that crashed at this address is not this entry's: a sweep before
  // the first renewal would remove the new entry with it.
  return conn_.pipeline({{"HSET", topic_addr_key(topic), addr, unique_name},
                         {"HDEL", topic_unsubscribed_key(topic), addr},
                         {"HDEL", topic_lease_key(topic), addr},
                         {"PUBLISH", channel_, event(kind, topic, addr)}},
                        nullptr);
}

Status RedisStore::unregister_address(const std::string& topic, const std::string& addr,
                                      DirectoryEvent::Kind why) {
  bool unsubscribe = why == DirectoryEvent::unsubscribe;
  // RedisArgs are views: the strings they point at live until the pipeline returned.
  const std::string addr_key = topic_addr_key(topic), mark_key = topic_unsubscribed_key(topic);
  const std::string message = event(unsubscribe ? "unsubscribe" : "leave", topic, addr);
  const std::string lease_key = topic_lease_key(topic);
  std::vector<RedisArgs> commands = {{"HDEL", addr_key, addr}, {"HDEL", lease_key, addr}};
  // Marked before it is announced: a sender that hears of it, or refreshes the topic after
  // unsubscribe() returned, finds the mark.
  if (unsubscribe) commands.push_back({"HSET", mark_key, addr, "1"});
  commands.push_back({"PUBLISH", channel_, message});
  return conn_.pipeline(commands, nullptr);
}

Status RedisStore::unsubscribed_from_topic(const std::string& topic, std::vector<std::string>* addrs) {
  RedisReply r;
  Status s = conn_.command({"HKEYS", topic_unsubscribed_key(topic)}, &r);
  if (!s) return s;
  addrs->clear();
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; ++i)
    addrs->emplace_back(r->element[i]->str, r->element[i]->len);
  return s;
}

Status RedisStore::addresses_of_topic(const std::string& topic, std::vector<TopicAddress>* out) {
  RedisReply r;
  Status s = conn_.command({"HGETALL", topic_addr_key(topic)}, &r);
  if (!s) return s;
  return read_directory(r.get(), topic_addr_key(topic), out);
}

Status RedisStore::read_directory(const redisReply* r, const std::string& key, std::vector<TopicAddress>* out) {
  out->clear();
  if (r->type != REDIS_REPLY_ARRAY) return corrupt(key);
  for (size_t i = 0; i + 1 < r->elements; i += 2)
    out->push_back({std::string(r->element[i]->str, r->element[i]->len),
                    std::string(r->element[i + 1]->str, r->element[i + 1]->len)});
  return Status();
}

Status RedisStore::delete_topic_addresses(const std::string& topic) {
  return conn_.command({"DEL", topic_addr_key(topic)});
}

Status RedisStore::renew_registration(const Registration& r, bool* complete) {
  // Counts the entries that are there as ours, and renews the lease of those only: a renewal
  // racing stop() or unsubscribe() leaves no lease behind, and a missing entry gets its lease
  // once it is put back. One key per command (Redis Cluster), in this order: the lease first,
  // then the entry checked, then a lease given to an entry that is not ours taken back, but
  // only if it is still the one written here (a registration since removed it or wrote its
  // own). A stop() or unsubscribe() removes the entry, then its lease: whichever way it
  // interleaves with these steps, no lease is left for an entry that is not there.
  static const char kLease[] = LNR_LUA_NOW_MS
      "local due = now + tonumber(ARGV[2])\n"
      "redis.call('HSET', KEYS[1], ARGV[1], due)\n"
      "return due\n";
  static const char kUnlease[] =
      "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end\n"
      "return 0\n";
  KeptStrings keep;
  const bool lease = r.lease_ms > 0;
  const std::string lease_ms = std::to_string(std::max(r.lease_ms, 0));
  std::vector<RedisReply> dues;
  if (lease && !r.entries.empty()) {
    std::vector<RedisArgs> commands;
    for (const auto& e : r.entries) commands.push_back({"EVAL", kLease, "1", keep(topic_lease_key(e.topic)), r.addr, lease_ms});
    Status s = conn_.pipeline(commands, &dues);
    if (!s) return s;
  }
  std::vector<RedisArgs> checks;
  for (const auto& e : r.entries) checks.push_back({"HGET", keep(topic_addr_key(e.topic)), r.addr});
  checks.push_back({"GET", kKeyCounter});
  std::vector<RedisReply> replies;
  Status s = conn_.pipeline(checks, &replies);
  if (!s) return s;
  size_t ours = 0;
  std::vector<RedisArgs> take_back;
  for (size_t i = 0; i < r.entries.size(); ++i) {
    const redisReply* got = replies[i].get();
    if (got->type == REDIS_REPLY_STRING && std::string_view(got->str, got->len) == r.unique_name) {
      ++ours;
    } else if (lease && dues[i]->type == REDIS_REPLY_INTEGER) {
      take_back.push_back({"EVAL", kUnlease, "1", keep(topic_lease_key(r.entries[i].topic)), r.addr,
                           keep(std::to_string(dues[i]->integer))});
    }
  }
  if (!take_back.empty()) {
    s = conn_.pipeline(take_back, nullptr);
    if (!s) return s;
  }
  int32_t counter = 0;
  const redisReply* c = replies.back().get();
  *complete = ours == r.entries.size() && c->type != REDIS_REPLY_NIL && parse_i32(c, &counter) &&
              counter >= r.highest_key;
  return s;
}

Status RedisStore::sweep_lapsed(const std::string& topic, std::vector<TopicAddress>* out) {
  // An entry goes only if its lease is a number in the past; announced only if it was there.
  // One key per command (Redis Cluster): the entries as they were, then the lapsed leases
  // taken (atomically, on the lease hash), then each of those entries removed only if it still
  // names the peer it named before, so that a peer registering there anew in between keeps its
  // entry (one that comes back under the same name finds it missing at its next renewal and
  // puts it back).
  static const char kLapse[] = LNR_LUA_NOW_MS
      "local leases = redis.call('HGETALL', KEYS[1])\n"
      "local gone = {}\n"
      "for i = 1, #leases, 2 do\n"
      "  local due = tonumber(leases[i + 1])\n"
      "  if due and due < now then\n"
      "    redis.call('HDEL', KEYS[1], leases[i])\n"
      "    gone[#gone + 1] = leases[i]\n"
      "  end\n"
      "end\n"
      "return gone\n";
  static const char kLeave[] =
      "if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end\n"
      "redis.call('HDEL', KEYS[1], ARGV[1])\n"
      "redis.call('PUBLISH', ARGV[3], ARGV[4])\n"
      "return 1\n";
  const std::string lease_key = topic_lease_key(topic), addr_key = topic_addr_key(topic);
  RedisReply before;
  Status s = conn_.command({"HGETALL", addr_key}, &before);
  if (!s) return s;
  std::vector<TopicAddress> entries;
  s = read_directory(before.get(), addr_key, &entries);
  if (!s) return s;
  RedisReply lapsed;
  s = conn_.command({"EVAL", kLapse, "1", lease_key}, &lapsed);
  if (!s) return s;
  bool changed = false;
  for (size_t i = 0; lapsed->type == REDIS_REPLY_ARRAY && i < lapsed->elements; ++i) {
    std::string addr(lapsed->element[i]->str, lapsed->element[i]->len);
    auto entry = std::find_if(entries.begin(), entries.end(), [&](const TopicAddress& e) { return e.addr == addr; });
    if (entry == entries.end()) continue;
    const std::string leave = event("leave", topic, addr);
    RedisReply r;
    s = conn_.command({"EVAL", kLeave, "1", addr_key, addr, entry->unique_name, channel_, leave}, &r);
    if (!s) return s;
    changed = true;
  }
  if (!changed) {
    *out = std::move(entries);
    return s;
  }
  RedisReply r;
  s = conn_.command({"HGETALL", addr_key}, &r);
  if (!s) return s;
  return read_directory(r.get(), addr_key, out);
}

Status RedisStore::restore_registration(const Registration& r, size_t* restored) {
  // Registers an entry again only if it is not there as ours: an entry that is present is
  // neither rewritten nor announced a second time. One key per command (Redis Cluster): the
  // unsubscribe marks go and the entries are put back first, the announcements come after (a
  // crash between the two leaves entries that were not announced, which the others' refresh
  // and sweep find; never an announcement of an entry that is not there).
  static const char kRegister[] =
      "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return 0 end\n"
      "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
      "return 1\n";
  // Raises the counter, never lowers it: keys in use must not be handed out again.
  static const char kRaise[] =
      "local c = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
      "if c < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end\n"
      "return 0\n";
  KeptStrings keep;
  std::vector<RedisArgs> commands;
  for (const auto& e : r.entries)
    commands.push_back({"EVAL", kRegister, "1", keep(topic_addr_key(e.topic)), r.addr, r.unique_name});
  const size_t registered = commands.size();
  // A running peer is registered for these topics: a mark saying it left one is stale.
  for (const auto& e : r.entries) commands.push_back({"HDEL", keep(topic_unsubscribed_key(e.topic)), r.addr});
  auto set_key = [&](const std::string& topic, int32_t key) {
    commands.push_back({"SET", keep(topic_key_key(topic)), keep(std::to_string(key)), "NX"});
  };
  for (const auto& e : r.entries) set_key(e.topic, e.topic_key);
  for (const auto& t : r.sent_topic_keys) set_key(t.first, t.second);
  const std::string listeners = sender_listener_key(r.unique_name, r.source_topic);
  const std::string listener_names = sender_listener_name_key(r.unique_name, r.source_topic);
  for (const auto& c : r.channels) {
    commands.push_back({"SET", keep(connection_name_key(r.unique_name, r.source_topic, c.listener_unique)),
                        keep(std::to_string(c.key)), "NX"});
    commands.push_back({"SET", keep(conn_key(c.key, "sender")), r.source_topic, "NX"});
    commands.push_back({"HSETNX", listeners, c.listener_addr, c.listener_topic});
    commands.push_back({"HSETNX", listener_names, c.listener_addr, c.listener_unique});
  }
  commands.push_back({"EVAL", kRaise, "1", kKeyCounter, keep(std::to_string(r.highest_key))});
  std::vector<RedisReply> replies;
  Status s = conn_.pipeline(commands, &replies);
  if (!s) return s;
  std::vector<RedisArgs> announce;
  for (size_t i = 0; i < registered; ++i) {
    if (replies[i]->type != REDIS_REPLY_INTEGER || replies[i]->integer != 1) continue;
    const auto& e = r.entries[i];
    announce.push_back({"PUBLISH", channel_,
                        keep(event(e.why == DirectoryEvent::subscribe ? "subscribe" : "join", e.topic, r.addr))});
  }
  if (restored) *restored = announce.size();
  return announce.empty() ? s : conn_.pipeline(announce, nullptr);
}

}  // namespace liner
