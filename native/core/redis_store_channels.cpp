// RedisStore, keys and channels (redis_store.hpp): topic and connection keys from the global
// counter, a channel's metadata and ack counter, the listeners a sender remembers, and the
// channel's offline queue with its hand-over marks and refusals.
#include <map>
#include <string_view>

#include "core/redis_store.hpp"

namespace liner {

Status RedisStore::topic_key(const std::string& topic, int32_t* key) {
  bool found = false;
  return get_or_allocate(topic_key_key(topic), true, key, &found);
}

Status RedisStore::connection_key(const std::string& u, const std::string& s, const std::string& l,
                                  bool allocate, int32_t* ck, bool* found) {
  return get_or_allocate(connection_name_key(u, s, l), allocate, ck, found);
}

Status RedisStore::get_or_allocate(const std::string& key, bool allocate, int32_t* value, bool* found) {
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

Status RedisStore::set_sender_topic(int32_t ck, const std::string& sender_topic) {
  return conn_.command({"SET", conn_key(ck, "sender"), sender_topic});
}

Status RedisStore::sender_topic(int32_t ck, std::string* sender_topic, bool* found) {
  RedisReply r;
  Status s = conn_.command({"GET", conn_key(ck, "sender")}, &r);
  if (!s) return s;
  *found = r->type == REDIS_REPLY_STRING;
  if (*found) sender_topic->assign(r->str, r->len);
  return s;
}

Status RedisStore::read_ack(int32_t ck, bool create, AckCounter* out) {
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

Status RedisStore::set_last_mess_number(int32_t ck, uint64_t number) {
  return conn_.command({"SET", conn_key(ck, "mess_number"), std::to_string(number)});
}

Status RedisStore::save_listener_for_sender(const std::string& u, const std::string& s, const std::string& addr,
                                            const std::string& listener_topic, const std::string& listener_unique) {
  // The plain topic, as liner_broker 1.3.1 writes and reads it; the name in a key of our own.
  return conn_.pipeline({{"HSET", sender_listener_key(u, s), addr, listener_topic},
                         {"HSET", sender_listener_name_key(u, s), addr, listener_unique}},
                        nullptr);
}

Status RedisStore::listeners_of_sender(const std::string& u, const std::string& s,
                                       std::vector<RememberedListener>* out) {
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

Status RedisStore::connection_keys_of_sender(const std::string& u, const std::string& s,
                                             std::vector<std::pair<std::string, int32_t>>* out) {
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

Status RedisStore::delete_listeners_of_sender(const std::string& u, const std::string& s) {
  return conn_.command({"DEL", sender_listener_key(u, s), sender_listener_name_key(u, s)});
}

Status RedisStore::push_messages(int32_t ck, const std::vector<const std::string*>& frames,
                                 const NumberRanges& handover) {
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

Status RedisStore::handover_marks(int32_t ck, NumberRanges* out) {
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

Status RedisStore::remove_messages(int32_t ck, const std::vector<std::string>& frames, uint64_t* removed) {
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

Status RedisStore::queue_length(int32_t ck, uint64_t* length) {
  std::string key = conn_key(ck, "messages");
  RedisReply r;
  Status s = conn_.command({"LLEN", key}, &r);
  if (!s) return s;
  return parse_u64(r.get(), length) ? s : corrupt(key);
}

Status RedisStore::read_messages(int32_t ck, uint64_t offset, uint64_t count,
                                 std::vector<std::string>* frames) {
  RedisReply r;
  Status s = conn_.command({"LRANGE", conn_key(ck, "messages"), std::to_string(offset),
                            std::to_string(offset + count - 1)},
                           &r);
  if (!s) return s;
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; ++i)
    frames->emplace_back(r->element[i]->str, r->element[i]->len);
  return s;
}

Status RedisStore::pop_acknowledged(int32_t ck, uint64_t count, uint64_t last_number, uint64_t acked,
                                    uint64_t* popped) {
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

Status RedisStore::last_stored_message(int32_t ck, std::string* frame, bool* found) {
  RedisReply r;
  Status s = conn_.command({"LRANGE", conn_key(ck, "messages"), "-1", "-1"}, &r);
  if (!s) return s;
  *found = r->type == REDIS_REPLY_ARRAY && r->elements == 1;
  if (*found) frame->assign(r->element[0]->str, r->element[0]->len);
  return s;
}

Status RedisStore::clear_channel(int32_t ck) {
  return conn_.command({"DEL", conn_key(ck, "messages"), conn_key(ck, "mess_number"), conn_key(ck, "handover")});
}

Status RedisStore::report_refused(int32_t ck, uint64_t number, const std::string& reason) {
  std::string key = conn_key(ck, "refused");
  std::string entry = std::to_string(number) + " " + reason;
  return conn_.pipeline({{"RPUSH", key, entry},
                         {"LTRIM", key, "-100", "-1"},
                         {"PUBLISH", channel_, std::string("refused") + kSep + std::to_string(ck) + kSep + entry}},
                        nullptr);
}

}  // namespace liner
