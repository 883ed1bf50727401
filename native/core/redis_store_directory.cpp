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
  // Counts the entries that are there as ours, and renews the lease of those only: a
  // renewal racing stop() or unsubscribe() leaves no lease behind, and a missing entry gets
  // its lease once it is put back. KEYS: directory hash, lease hash, per entry; ARGV: addr,
  // unique name, lease ms (0: count only).
  static const char kRenew[] = LNR_LUA_NOW_MS
      "local ours = 0\n"
      "for i = 1, #KEYS, 2 do\n"
      "  if redis.call('HGET', KEYS[i], ARGV[1]) == ARGV[2] then\n"
      "    ours = ours + 1\n"
      "    if tonumber(ARGV[3]) > 0 then redis.call('HSET', KEYS[i + 1], ARGV[1], now + tonumber(ARGV[3])) end\n"
      "  end\n"
      "end\n"
      "return ours\n";
  KeptStrings keep;
  RedisArgs renew{"EVAL", kRenew, keep(std::to_string(2 * r.entries.size()))};
  for (const auto& e : r.entries) {
    renew.push_back(keep(topic_addr_key(e.topic)));
    renew.push_back(keep(topic_lease_key(e.topic)));
  }
  renew.push_back(r.addr);
  renew.push_back(r.unique_name);
  renew.push_back(keep(std::to_string(std::max(r.lease_ms, 0))));
  std::vector<RedisReply> replies;
  Status s = conn_.pipeline({renew, {"GET", kKeyCounter}}, &replies);
  if (!s) return s;
  int32_t counter = 0;
  *complete = replies[0]->type == REDIS_REPLY_INTEGER && size_t(replies[0]->integer) == r.entries.size() &&
              replies[1]->type != REDIS_REPLY_NIL && parse_i32(replies[1].get(), &counter) &&
              counter >= r.highest_key;
  return s;
}

Status RedisStore::sweep_lapsed(const std::string& topic, std::vector<TopicAddress>* out) {
  // An entry goes only if its lease is a number in the past; announced only if it was there.
  static const char kSweep[] = LNR_LUA_NOW_MS
      "local leases = redis.call('HGETALL', KEYS[1])\n"
      "for i = 1, #leases, 2 do\n"
      "  local due = tonumber(leases[i + 1])\n"
      "  if due and due < now then\n"
      "    redis.call('HDEL', KEYS[1], leases[i])\n"
      "    if redis.call('HDEL', KEYS[2], leases[i]) == 1 then\n"
      "      redis.call('PUBLISH', ARGV[1], ARGV[2] .. leases[i])\n"
      "    end\n"
      "  end\n"
      "end\n"
      "return redis.call('HGETALL', KEYS[2])\n";
  const std::string lease_key = topic_lease_key(topic), addr_key = topic_addr_key(topic);
  const std::string leave = std::string("leave") + kSep + topic + kSep;
  RedisReply r;
  Status s = conn_.command({"EVAL", kSweep, "2", lease_key, addr_key, channel_, leave}, &r);
  if (!s) return s;
  return read_directory(r.get(), addr_key, out);
}

Status RedisStore::restore_registration(const Registration& r, size_t* restored) {
  // Registers an entry again only if it is not there as ours, and announces it, atomically:
  // an entry that is present is neither rewritten nor announced a second time.
  static const char kRegister[] =
      "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return 0 end\n"
      "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
      "redis.call('HDEL', KEYS[2], ARGV[1])\n"
      "redis.call('PUBLISH', ARGV[3], ARGV[4])\n"
      "return 1\n";
  // Raises the counter, never lowers it: keys in use must not be handed out again.
  static const char kRaise[] =
      "local c = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
      "if c < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end\n"
      "return 0\n";
  KeptStrings keep;
  std::vector<RedisArgs> commands;
  for (const auto& e : r.entries) {
    const char* kind = e.why == DirectoryEvent::subscribe ? "subscribe" : "join";
    commands.push_back({"EVAL", kRegister, "2", keep(topic_addr_key(e.topic)), keep(topic_unsubscribed_key(e.topic)),
                        r.addr, r.unique_name, channel_, keep(event(kind, e.topic, r.addr))});
  }
  const size_t registered = commands.size();
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
  if (restored) {
    *restored = 0;
    for (size_t i = 0; i < registered; ++i)
      if (replies[i]->type == REDIS_REPLY_INTEGER && replies[i]->integer == 1) ++*restored;
  }
  return s;
}

}  // namespace liner
