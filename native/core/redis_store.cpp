// Store on Redis, key-compatible with liner_broker 1.3.1 (compat spec §2.2):
//   lnr_unique_key                      counter for topic and connection keys
//   lnr_topic:{topic}:addr              hash  addr -> unique_name
//   lnr_topic:{topic}:key               decimal i32
//   lnr_connection:{U}:{S}:{L}:key      decimal i32 (sender U with source topic S -> listener L)
//   lnr_connection:{ck}:sender          the sender's source topic
//   lnr_connection:{ck}:mess_number     last number_mess the listener delivered (the ack)
//   lnr_connection:{ck}:messages        list of whole frames (the offline queue)
//   lnr_connection:{ck}:refused         liner only: "number reason" of the newest 100 messages
//                                       its listener refused for good (too big for it)
//   lnr_connection:{ck}:handover        liner only: list of "first-last" number ranges of the
//                                       offline queue's frames sent with send_to (another
//                                       replica may take them when the peer leaves); deleted
//                                       with the queue's last frame
//   lnr_sender:{U}:{S}:listener         hash  listener addr -> listener topic
//   lnr_sender:{U}:{S}:listener_name    liner only: hash  listener addr -> listener unique name
//                                       (a restarted sender finds the channel of a listener
//                                       that is offline: compat spec §6.1 rule 3)
//   lnr_topic:{topic}:unsubscribed      liner only: hash  addr -> "1" of peers that left the
//                                       topic by unsubscribing (not by stopping), until a peer
//                                       registers that address for the topic again
//   lnr_topic:{topic}:lease             liner only: hash  addr -> when (ms, Redis's clock) the
//                                       entry lapses unless its running peer renews it
// Directory changes are also PUBLISHed on the channel "lnr_directory:{db}" (not a key), so
// running liner peers learn of them at once.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <deque>
#include <map>
#include <set>
#include <string_view>

#include "core/redis_conn.hpp"
#include "core/store.hpp"

namespace liner {
namespace {

// Pub/sub channels span all databases: the database number keeps meshes apart.
const char kKeyCounter[] = "lnr_unique_key";

std::string directory_channel(int db) { return "lnr_directory:" + std::to_string(db); }
const char kSep = '\x1f';

std::string topic_addr_key(const std::string& t) { return "lnr_topic:" + t + ":addr"; }
std::string topic_key_key(const std::string& t) { return "lnr_topic:" + t + ":key"; }
// `ck` as text: a number, or "*" in a pattern shown to people (record_name).
std::string conn_key(const std::string& ck, const char* what) { return "lnr_connection:" + ck + ":" + what; }
std::string conn_key(int32_t ck, const char* what) { return conn_key(std::to_string(ck), what); }
std::string topic_unsubscribed_key(const std::string& t) { return "lnr_topic:" + t + ":unsubscribed"; }
std::string topic_lease_key(const std::string& t) { return "lnr_topic:" + t + ":lease"; }
std::string connection_name_key(const std::string& u, const std::string& s, const std::string& l) {
  return "lnr_connection:" + u + ":" + s + ":" + l + ":key";
}

// Owns the strings a list of RedisArgs (views) points at until the pipeline returned; a deque,
// so that adding one moves none of those already kept.
class KeptStrings {
 public:
  std::string_view operator()(std::string v) { return kept_.emplace_back(std::move(v)); }

 private:
  std::deque<std::string> kept_;
};

// Lua: `now`, the store's clock in milliseconds (leases use it, so peers' clocks never matter).
#define LNR_LUA_NOW_MS                 \
  "local t = redis.call('TIME')\n" \
  "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
std::string sender_listener_key(const std::string& u, const std::string& s) {
  return "lnr_sender:" + u + ":" + s + ":listener";
}
std::string sender_listener_name_key(const std::string& u, const std::string& s) {
  return "lnr_sender:" + u + ":" + s + ":listener_name";
}

// Digits only, at most a u64.
bool parse_u64(std::string_view text, uint64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  for (char c : text)
    if (c < '0' || c > '9') return false;
  errno = 0;
  unsigned long long v = std::strtoull(std::string(text).c_str(), nullptr, 10);
  if (errno) return false;
  *out = v;
  return true;
}

bool parse_u64(const redisReply* r, uint64_t* out) {
  if (r->type == REDIS_REPLY_INTEGER) {
    if (r->integer < 0) return false;
    *out = uint64_t(r->integer);
    return true;
  }
  return r->type == REDIS_REPLY_STRING && parse_u64(std::string_view(r->str, r->len), out);
}

// Decimal text of an i32, as liner_broker writes keys.
bool parse_i32(std::string_view text, int32_t* out) {
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

bool parse_i32(const redisReply* r, int32_t* out) {
  if (r->type == REDIS_REPLY_STRING) return parse_i32(std::string_view(r->str, r->len), out);
  if (r->type != REDIS_REPLY_INTEGER || r->integer < INT32_MIN || r->integer > INT32_MAX) return false;
  *out = int32_t(r->integer);
  return true;
}

// The part of `name` between `prefix` and `suffix`, when it has both.
bool between(const std::string& name, const std::string& prefix, const char* suffix, std::string* middle) {
  size_t tail = std::char_traits<char>::length(suffix);
  if (name.size() < prefix.size() + tail || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - tail, tail, suffix) != 0)
    return false;
  middle->assign(name, prefix.size(), name.size() - prefix.size() - tail);
  return true;
}

Status corrupt(const std::string& key) {
  return Status(Err::store, "redis key " + key + " does not hold the expected number");
}

class RedisStore final : public Store {
 public:
  explicit RedisStore(RedisEndpoint ep) : channel_(directory_channel(ep.db)), conn_(std::move(ep)) {}

  void on_health(HealthFn fn) override { conn_.on_health(std::move(fn)); }

  Status ping() override {
    Status s = conn_.connect();
    return s ? conn_.command({"PING"}) : s;
  }

  Status register_address(const std::string& topic, const std::string& addr,
                          const std::string& unique_name, DirectoryEvent::Kind why) override {
    const char* kind = why == DirectoryEvent::subscribe ? "subscribe" : "join";
    return conn_.pipeline({{"HSET", topic_addr_key(topic), addr, unique_name},
                           {"HDEL", topic_unsubscribed_key(topic), addr},
                           {"PUBLISH", channel_, event(kind, topic, addr)}},
                          nullptr);
  }

  Status unregister_address(const std::string& topic, const std::string& addr,
                            DirectoryEvent::Kind why) override {
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

  Status unsubscribed_from_topic(const std::string& topic, std::vector<std::string>* addrs) override {
    RedisReply r;
    Status s = conn_.command({"HKEYS", topic_unsubscribed_key(topic)}, &r);
    if (!s) return s;
    addrs->clear();
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; ++i)
      addrs->emplace_back(r->element[i]->str, r->element[i]->len);
    return s;
  }

  Status addresses_of_topic(const std::string& topic, std::vector<TopicAddress>* out) override {
    RedisReply r;
    Status s = conn_.command({"HGETALL", topic_addr_key(topic)}, &r);
    if (!s) return s;
    return read_directory(r.get(), topic_addr_key(topic), out);
  }

  // A topic's directory from the reply of HGETALL lnr_topic:{topic}:addr (`key`).
  static Status read_directory(const redisReply* r, const std::string& key, std::vector<TopicAddress>* out) {
    out->clear();
    if (r->type != REDIS_REPLY_ARRAY) return corrupt(key);
    for (size_t i = 0; i + 1 < r->elements; i += 2)
      out->push_back({std::string(r->element[i]->str, r->element[i]->len),
                      std::string(r->element[i + 1]->str, r->element[i + 1]->len)});
    return Status();
  }

  Status delete_topic_addresses(const std::string& topic) override {
    return conn_.command({"DEL", topic_addr_key(topic)});
  }

  Status renew_registration(const Registration& r, bool* complete) override {
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

  Status sweep_lapsed(const std::string& topic, std::vector<TopicAddress>* out) override {
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

  Status restore_registration(const Registration& r, size_t* restored) override {
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

  Status topic_key(const std::string& topic, int32_t* key) override {
    bool found = false;
    return get_or_allocate(topic_key_key(topic), true, key, &found);
  }

  Status connection_key(const std::string& u, const std::string& s, const std::string& l,
                        bool allocate, int32_t* ck, bool* found) override {
    return get_or_allocate(connection_name_key(u, s, l), allocate, ck, found);
  }

  Status set_sender_topic(int32_t ck, const std::string& sender_topic) override {
    return conn_.command({"SET", conn_key(ck, "sender"), sender_topic});
  }

  Status sender_topic(int32_t ck, std::string* sender_topic, bool* found) override {
    RedisReply r;
    Status s = conn_.command({"GET", conn_key(ck, "sender")}, &r);
    if (!s) return s;
    *found = r->type == REDIS_REPLY_STRING;
    if (*found) sender_topic->assign(r->str, r->len);
    return s;
  }

  Status read_ack(int32_t ck, bool create, AckCounter* out) override {
    std::string key = conn_key(ck, "mess_number");
    RedisReply r;
    Status s = conn_.command({"GET", key}, &r);
    if (!s) return s;
    *out = AckCounter();
    out->existed = r->type != REDIS_REPLY_NIL;
    if (!out->existed) return create ? conn_.command({"SETNX", key, "0"}) : s;
    out->unreadable = !parse_u64(r.get(), &out->number);
    if (out->unreadable) out->number = 0;
    return s;
  }
  Status set_last_mess_number(int32_t ck, uint64_t number) override {
    return conn_.command({"SET", conn_key(ck, "mess_number"), std::to_string(number)});
  }

  Status save_listener_for_sender(const std::string& u, const std::string& s, const std::string& addr,
                                  const std::string& listener_topic, const std::string& listener_unique) override {
    // The plain topic, as liner_broker 1.3.1 writes and reads it; the name in a key of our own.
    return conn_.pipeline({{"HSET", sender_listener_key(u, s), addr, listener_topic},
                           {"HSET", sender_listener_name_key(u, s), addr, listener_unique}},
                          nullptr);
  }

  Status listeners_of_sender(const std::string& u, const std::string& s,
                             std::vector<RememberedListener>* out) override {
    std::vector<RedisReply> r;
    Status st = conn_.pipeline({{"HGETALL", sender_listener_key(u, s)},
                                {"HGETALL", sender_listener_name_key(u, s)}},
                               &r);
    if (!st) return st;
    out->clear();
    std::map<std::string, std::string> names;
    for (size_t i = 0; r[1]->type == REDIS_REPLY_ARRAY && i + 1 < r[1]->elements; i += 2)
      names[std::string(r[1]->element[i]->str, r[1]->element[i]->len)] =
          std::string(r[1]->element[i + 1]->str, r[1]->element[i + 1]->len);
    for (size_t i = 0; r[0]->type == REDIS_REPLY_ARRAY && i + 1 < r[0]->elements; i += 2) {
      RememberedListener l;
      l.addr.assign(r[0]->element[i]->str, r[0]->element[i]->len);
      std::string value(r[0]->element[i + 1]->str, r[0]->element[i + 1]->len);
      // liner_broker >= 1.3.2 writes "topic\x1flistener".
      size_t sep = value.find(kSep);
      l.topic = value.substr(0, sep);
      if (sep != std::string::npos) l.unique_name = value.substr(sep + 1);
      auto name = names.find(l.addr);
      if (name != names.end()) l.unique_name = name->second;
      out->push_back(std::move(l));
    }
    return st;
  }

  Status connection_keys_of_sender(const std::string& u, const std::string& s,
                                   std::vector<std::pair<std::string, int32_t>>* out) override {
    std::string prefix = "lnr_connection:" + u + ":" + s + ":";
    std::vector<std::string> found, names;
    Status st = scan(glob_escape(prefix) + "*:key", &found);
    if (!st) return st;
    for (const auto& name : found) {
      // The listener part must be one segment: "U:S:L:key", not "U:S:x:y:key" of another S.
      std::string middle;
      if (between(name, prefix, ":key", &middle) && middle.find(':') == std::string::npos) names.push_back(name);
    }
    for (const auto& name : names) {
      RedisReply r;
      st = conn_.command({"GET", name}, &r);
      if (!st) return st;
      int32_t ck = 0;
      if (r->type == REDIS_REPLY_NIL) continue;
      if (!parse_i32(r.get(), &ck)) return corrupt(name);
      out->emplace_back(name.substr(prefix.size(), name.size() - prefix.size() - 4), ck);
    }
    return Status();
  }

  Status delete_listeners_of_sender(const std::string& u, const std::string& s) override {
    return conn_.command({"DEL", sender_listener_key(u, s), sender_listener_name_key(u, s)});
  }

  Status push_messages(int32_t ck, const std::vector<const std::string*>& frames,
                       const NumberRanges& handover) override {
    // The marks first: a push cut short leaves marks for frames that are not there (they match
    // nothing), never frames without their marks. One multi-element RPUSH per batch: one round
    // trip instead of one per message.
    constexpr size_t kBatch = 1024;
    if (!handover.empty()) {
      std::string marks_key = conn_key(ck, "handover");
      std::vector<std::string> ranges;  // RedisArgs only points at them
      for (const auto& r : handover) ranges.push_back(std::to_string(r.first) + "-" + std::to_string(r.second));
      RedisArgs args{"RPUSH", marks_key};
      for (const auto& r : ranges) args.push_back(r);
      Status s = conn_.command(args);
      if (!s) return s;
    }
    std::string key = conn_key(ck, "messages");
    for (size_t i = 0; i < frames.size(); i += kBatch) {
      RedisArgs args{"RPUSH", key};
      for (size_t j = i; j < frames.size() && j < i + kBatch; ++j) args.push_back(*frames[j]);
      Status s = conn_.command(args);
      if (!s) return s;
    }
    return Status();
  }

  Status handover_marks(int32_t ck, NumberRanges* out) override {
    out->clear();
    std::string key = conn_key(ck, "handover");
    RedisReply r;
    Status s = conn_.command({"LRANGE", key, "0", "-1"}, &r);
    if (!s) return s;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; ++i) {
      std::string_view range(r->element[i]->str, r->element[i]->len);
      size_t dash = range.find('-');
      uint64_t first = 0, last = 0;
      if (dash == std::string_view::npos || !parse_u64(range.substr(0, dash), &first) ||
          !parse_u64(range.substr(dash + 1), &last) || first > last)
        return corrupt(key);
      out->emplace_back(first, last);
    }
    return s;
  }

  Status remove_messages(int32_t ck, const std::vector<std::string>& frames, uint64_t* removed) override {
    if (removed) *removed = 0;
    if (frames.empty()) return Status();
    // In one script: the marks go only with the queue's last frame, whoever empties it.
    static const char kScript[] =
        "local n = 0\n"
        "for i = 1, #ARGV do n = n + redis.call('LREM', KEYS[1], 1, ARGV[i]) end\n"
        "if redis.call('LLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end\n"
        "return n\n";
    std::string queue = conn_key(ck, "messages"), marks = conn_key(ck, "handover");
    RedisArgs args{"EVAL", kScript, "2", queue, marks};
    for (const auto& f : frames) args.push_back(f);
    RedisReply r;
    Status s = conn_.command(args, &r);
    if (!s) return s;
    uint64_t n = 0;
    if (!parse_u64(r.get(), &n)) return corrupt("offline-queue removal reply");
    if (removed) *removed = n;
    return s;
  }

  Status queue_length(int32_t ck, uint64_t* length) override {
    std::string key = conn_key(ck, "messages");
    RedisReply r;
    Status s = conn_.command({"LLEN", key}, &r);
    if (!s) return s;
    return parse_u64(r.get(), length) ? s : corrupt(key);
  }

  Status read_messages(int32_t ck, uint64_t offset, uint64_t count,
                       std::vector<std::string>* frames) override {
    RedisReply r;
    Status s = conn_.command({"LRANGE", conn_key(ck, "messages"), std::to_string(offset),
                              std::to_string(offset + count - 1)},
                             &r);
    if (!s) return s;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; ++i)
      frames->emplace_back(r->element[i]->str, r->element[i]->len);
    return s;
  }

  Status pop_acknowledged(int32_t ck, uint64_t count, uint64_t last_number, uint64_t acked,
                          uint64_t* popped) override {
    if (popped) *popped = 0;
    if (count == 0) return Status();
    // The check runs inside Redis, so the pop holds whatever happened to an earlier attempt.
    // Numbers travel as 8 big-endian bytes, compared byte-wise (Lua numbers are doubles).
    static const char kScript[] =
        "local n = tonumber(ARGV[1])\n"
        "local f = redis.call('LINDEX', KEYS[1], n - 1)\n"
        "if not f then return 0 end\n"
        // Its number, or eight zero bytes if it is not a frame (as stored_frame_number says):
        // length prefix = size - 4, body >= 21 bytes, data_len within the body.
        "local function be32(at)\n"
        "  local a, b, c, d = string.byte(f, at, at + 3)\n"
        "  return ((a * 256 + b) * 256 + c) * 256 + d\n"
        "end\n"
        "local num = string.rep('\\0', 8)\n"
        "if #f >= 25 and be32(1) == #f - 4 and be32(22) + 21 <= #f - 4 then num = string.sub(f, 5, 12) end\n"
        "if num ~= ARGV[2] then return 0 end\n"
        // Byte by byte: Lua's '<' on strings follows the server's collation locale.
        "for i = 1, 8 do\n"
        "  local a, b = string.byte(num, i), string.byte(ARGV[3], i)\n"
        "  if a ~= b then if a > b then return 0 end break end\n"
        "end\n"
        "redis.call('LTRIM', KEYS[1], n, -1)\n"
        // The hand-over marks describe the queue's frames: they go when the last one does.
        "if redis.call('LLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end\n"
        "return n\n";
    auto be = [](uint64_t v) {
      std::string out(8, '\0');
      for (int i = 0; i < 8; ++i) out[i] = char(uint8_t(v >> (56 - 8 * i)));
      return out;
    };
    std::string last = be(last_number), ack = be(acked);
    RedisReply r;
    Status s = conn_.command({"EVAL", kScript, "2", conn_key(ck, "messages"), conn_key(ck, "handover"),
                              std::to_string(count), last, ack},
                             &r);
    if (!s) return s;
    uint64_t n = 0;
    if (!parse_u64(r.get(), &n)) return corrupt("offline-queue pop reply");
    if (popped) *popped = n;
    return s;
  }
  Status last_stored_message(int32_t ck, std::string* frame, bool* found) override {
    RedisReply r;
    Status s = conn_.command({"LRANGE", conn_key(ck, "messages"), "-1", "-1"}, &r);
    if (!s) return s;
    *found = r->type == REDIS_REPLY_ARRAY && r->elements == 1;
    if (*found) frame->assign(r->element[0]->str, r->element[0]->len);
    return s;
  }

  Status clear_channel(int32_t ck) override {
    return conn_.command({"DEL", conn_key(ck, "messages"), conn_key(ck, "mess_number"), conn_key(ck, "handover")});
  }

  Status report_refused(int32_t ck, uint64_t number, const std::string& reason) override {
    std::string key = conn_key(ck, "refused");
    std::string entry = std::to_string(number) + " " + reason;
    return conn_.pipeline({{"RPUSH", key, entry},
                           {"LTRIM", key, "-100", "-1"},
                           {"PUBLISH", channel_, std::string("refused") + kSep + std::to_string(ck) + kSep + entry}},
                          nullptr);
  }
  Status list_topics(std::vector<std::string>* topics) override {
    std::set<std::string> found;
    for (const char* suffix : {":addr", ":key"}) {
      std::vector<std::string> names;
      Status s = scan(std::string("lnr_topic:*") + suffix, &names);
      if (!s) return s;
      std::string topic;
      for (const auto& name : names)
        if (between(name, "lnr_topic:", suffix, &topic)) found.insert(topic);
    }
    topics->assign(found.begin(), found.end());
    return Status();
  }

  Status read_topics(const std::vector<std::string>& topics, std::vector<TopicState>* out) override {
    KeptStrings keep;
    std::vector<RedisArgs> commands;
    for (const auto& t : topics) {
      commands.push_back({"HGETALL", keep(topic_addr_key(t))});
      commands.push_back({"GET", keep(topic_key_key(t))});
    }
    std::vector<RedisReply> r;
    Status s = conn_.pipeline(commands, &r);
    if (!s) return s;
    out->clear();
    for (size_t i = 0; i < topics.size(); ++i) {
      TopicState t;
      s = read_directory(r[2 * i].get(), topic_addr_key(topics[i]), &t.addresses);
      if (!s) return s;
      t.has_key = parse_i32(r[2 * i + 1].get(), &t.key);
      out->push_back(std::move(t));
    }
    return s;
  }

  Status list_channels(const std::string& sender_unique, std::vector<ChannelName>* out) override {
    std::vector<ChannelName> named;
    Status s = channel_names(sender_unique, &named);
    if (!s) return s;
    KeptStrings keep;
    std::vector<RedisArgs> commands;
    for (const auto& c : named)
      commands.push_back({"GET", keep(connection_name_key(c.sender_unique, c.sender_topic, c.listener_unique))});
    std::vector<RedisReply> r;
    s = conn_.pipeline(commands, &r);
    if (!s) return s;
    out->clear();
    for (size_t i = 0; i < named.size(); ++i)
      if (parse_i32(r[i].get(), &named[i].key)) out->push_back(std::move(named[i]));
    return s;
  }

  Status read_channels(const std::vector<int32_t>& keys, bool with_head, std::vector<ChannelState>* out) override {
    const size_t per = with_head ? 4 : 3;
    KeptStrings keep;
    std::vector<RedisArgs> commands;
    for (int32_t ck : keys) {
      commands.push_back({"GET", keep(conn_key(ck, "sender"))});
      commands.push_back({"GET", keep(conn_key(ck, "mess_number"))});
      commands.push_back({"LLEN", keep(conn_key(ck, "messages"))});
      if (with_head) commands.push_back({"LRANGE", keep(conn_key(ck, "messages")), "0", "0"});
    }
    std::vector<RedisReply> r;
    Status s = conn_.pipeline(commands, &r);
    if (!s) return s;
    out->clear();
    for (size_t i = 0; i < keys.size(); ++i) {
      auto c = [&](size_t j) { return r[per * i + j].get(); };
      ChannelState state;
      state.has_sender_topic = c(0)->type == REDIS_REPLY_STRING;
      if (state.has_sender_topic) state.sender_topic.assign(c(0)->str, c(0)->len);
      state.ack.existed = c(1)->type != REDIS_REPLY_NIL;
      state.ack.unreadable = state.ack.existed && !parse_u64(c(1), &state.ack.number);
      if (state.ack.unreadable) state.ack.number = 0;
      if (!parse_u64(c(2), &state.queue_length)) return corrupt(conn_key(keys[i], "messages"));
      if (with_head && c(3)->type == REDIS_REPLY_ARRAY && c(3)->elements == 1)
        state.head.assign(c(3)->element[0]->str, c(3)->element[0]->len);
      out->push_back(std::move(state));
    }
    return s;
  }

  Status source_topics_of_sender(const std::string& u, std::vector<std::string>* out) override {
    const std::string prefix = "lnr_sender:" + u + ":";
    std::vector<std::string> maps;
    Status s = scan(glob_escape(prefix) + "*:listener", &maps);
    if (!s) return s;
    std::set<std::string> found;
    std::string topic;
    for (const auto& name : maps)
      if (between(name, prefix, ":listener", &topic) && topic.find(':') == std::string::npos) found.insert(topic);
    std::vector<ChannelName> channels;
    s = channel_names(u, &channels);
    if (!s) return s;
    for (const auto& c : channels) found.insert(c.sender_topic);
    out->assign(found.begin(), found.end());
    return s;
  }

  Status queued_channels(std::vector<int32_t>* keys) override {
    std::vector<std::string> names;
    Status s = scan("lnr_connection:*:messages", &names);
    if (!s) return s;
    keys->clear();
    std::string middle;
    int32_t ck = 0;
    for (const auto& name : names)
      if (between(name, "lnr_connection:", ":messages", &middle) && parse_i32(middle, &ck)) keys->push_back(ck);
    std::sort(keys->begin(), keys->end());
    return s;
  }

  Status forget_channel(const ChannelName& c) override {
    const int32_t ck = c.key;
    return conn_.command({"DEL", connection_name_key(c.sender_unique, c.sender_topic, c.listener_unique),
                          conn_key(ck, "sender"), conn_key(ck, "mess_number"), conn_key(ck, "messages"),
                          conn_key(ck, "handover"), conn_key(ck, "refused")});
  }

  Status delete_topic_key(const std::string& topic) override { return conn_.command({"DEL", topic_key_key(topic)}); }

  std::string record_name(StoreRecord what, const std::string& a, const std::string& b,
                          const std::string& c) const override {
    switch (what) {
      case StoreRecord::topic_addresses: return topic_addr_key(a);
      case StoreRecord::topic_key: return topic_key_key(a);
      case StoreRecord::channel_name: return connection_name_key(a, b, c);
      case StoreRecord::channel_sender: return conn_key(a, "sender");
      case StoreRecord::channel_ack: return conn_key(a, "mess_number");
      case StoreRecord::channel_queue: return conn_key(a, "messages");
      case StoreRecord::sender_listeners: return sender_listener_key(a, b);
      case StoreRecord::sender_listener_names: return sender_listener_name_key(a, b);
    }
    return {};
  }

  Status wait_directory_events(int timeout_ms, std::vector<DirectoryEvent>* events) override {
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

 private:
  // Every key name matching a glob `pattern`, sorted. SCAN, never KEYS: it does not block Redis
  // for other clients on a big keyspace.
  Status scan(const std::string& pattern, std::vector<std::string>* names) {
    std::set<std::string> found;  // SCAN may return a key twice
    std::string cursor = "0";
    do {
      RedisReply r;
      Status s = conn_.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"}, &r);
      if (!s) return s;
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) return corrupt("SCAN reply");
      cursor.assign(r->element[0]->str, r->element[0]->len);
      for (size_t i = 0; i < r->element[1]->elements; ++i)
        found.emplace(r->element[1]->element[i]->str, r->element[1]->element[i]->len);
    } while (cursor != "0");
    names->assign(found.begin(), found.end());
    return Status();
  }

  // The channel names "lnr_connection:{U}:{S}:{L}:key" of one sender ("" for all), by name;
  // keys not read.
  Status channel_names(const std::string& sender_unique, std::vector<ChannelName>* out) {
    std::vector<std::string> names;
    Status s = scan(sender_unique.empty() ? std::string("lnr_connection:*:key")
                                          : "lnr_connection:" + glob_escape(sender_unique) + ":*:*:key",
                    &names);
    if (!s) return s;
    std::string middle;
    for (const auto& name : names) {
      if (!between(name, "lnr_connection:", ":key", &middle)) continue;
      size_t a = middle.find(':'), b = a == std::string::npos ? a : middle.find(':', a + 1);
      if (b == std::string::npos || middle.find(':', b + 1) != std::string::npos) continue;
      ChannelName c{middle.substr(0, a), middle.substr(a + 1, b - a - 1), middle.substr(b + 1)};
      if (c.sender_unique.empty() || c.sender_topic.empty() || c.listener_unique.empty()) continue;
      if (!sender_unique.empty() && c.sender_unique != sender_unique) continue;
      out->push_back(std::move(c));
    }
    return s;
  }

  static std::string glob_escape(const std::string& text) {
    std::string out;
    for (char c : text) {
      if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    return out;
  }

  static std::string event(const char* kind, const std::string& topic, const std::string& addr) {
    return std::string(kind) + kSep + topic + kSep + addr;
  }

  // GET; if absent: INCRBY the global counter and SET NX, then GET again, so two peers that
  // race to create the same key agree on one value. A failed GET is an error, never "absent".
  Status get_or_allocate(const std::string& key, bool allocate, int32_t* value, bool* found) {
    RedisReply r;
    Status s = conn_.command({"GET", key}, &r);
    if (!s) return s;
    if (r->type != REDIS_REPLY_NIL) {
      *found = true;
      return parse_i32(r.get(), value) ? s : corrupt(key);
    }
    *found = false;
    if (!allocate) return s;
    s = conn_.command({"INCRBY", kKeyCounter, "1"}, &r);
    if (!s) return s;
    int32_t fresh = 0;
    if (!parse_i32(r.get(), &fresh)) return corrupt(kKeyCounter);
    s = conn_.command({"SET", key, std::to_string(fresh), "NX"});
    if (!s) return s;
    s = conn_.command({"GET", key}, &r);
    if (!s) return s;
    *found = true;
    return parse_i32(r.get(), value) ? s : corrupt(key);
  }

  std::string channel_;
  RedisConn conn_;
  bool subscribed_ = false;
};

}  // namespace

Status open_store(const std::string& url, std::unique_ptr<Store>* out) {
  RedisEndpoint ep;
  Status s = parse_redis_url(url, &ep);
  if (!s) return s;
  out->reset(new RedisStore(std::move(ep)));
  return s;
}

}  // namespace liner
