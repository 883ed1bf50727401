// RedisStore, keys and channels (redis_store.hpp): topic and connection keys from the global
// counter, a channel's metadata and ack counter, the listeners a sender remembers, and the
// channel's offline queue with its hand-over marks and refusals.
#include <algorithm>
#include <map>
#include <string_view>

#include "core/frame.hpp"
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
  // One key per command (Redis Cluster); the names alone are of no use without the listeners.
  Status st = conn_.command({"DEL", sender_listener_key(u, s)});
  return st ? conn_.command({"DEL", sender_listener_name_key(u, s)}) : st;
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
  // The queue alone (one key per command, for Redis Cluster): the marks follow in
  // drop_marks_if_empty() when this emptied it.
  static const char kScript[] =
      "local n = 0\n"
      "for i = 1, #ARGV do n = n + redis.call('LREM', KEYS[1], 1, ARGV[i]) end\n"
      "return {n, redis.call('LLEN', KEYS[1])}\n";
  std::string queue = conn_key(ck, "messages");
  RedisArgs args{"EVAL", kScript, "1", queue};
  for (const auto& f : frames) args.push_back(f);
  RedisReply r;
  Status s = conn_.command(args, &r);
  if (!s) return s;
  uint64_t n = 0, left = 0;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !parse_u64(r->element[0], &n) ||
      !parse_u64(r->element[1], &left))
    return corrupt("offline-queue removal reply");
  if (removed) *removed = n;
  // The frames are gone whatever comes of this: marks left over match no frame, and go the
  // next time the queue empties.
  if (left == 0) drop_marks_if_empty(ck);
  return s;
}

Status RedisStore::drop_marks_if_empty(int32_t ck) {
  // Three single-key steps where one script used to see both keys: the marks as they are now,
  // then the queue still empty, then those marks (and only those: ones pushed since belong to a
  // push under way) trimmed if they are still the list's head. A push writes its marks before
  // its frames, so marks whose frames arrive after the check are lost only when they were
  // written before it, the same window as the one script had.
  std::string marks = conn_key(ck, "handover"), queue = conn_key(ck, "messages");
  RedisReply seen;
  Status s = conn_.command({"LRANGE", marks, "0", "-1"}, &seen);
  if (!s || seen->type != REDIS_REPLY_ARRAY || seen->elements == 0) return s;
  RedisReply length;
  s = conn_.command({"LLEN", queue}, &length);
  if (!s || length->type != REDIS_REPLY_INTEGER || length->integer != 0) return s;
  static const char kTrim[] =
      "for i = 1, #ARGV do\n"
      "  if redis.call('LINDEX', KEYS[1], i - 1) ~= ARGV[i] then return 0 end\n"
      "end\n"
      "redis.call('LTRIM', KEYS[1], #ARGV, -1)\n"
      "return 1\n";
  RedisArgs args{"EVAL", kTrim, "1", marks};
  for (size_t i = 0; i < seen->elements; ++i) args.emplace_back(seen->element[i]->str, seen->element[i]->len);
  return conn_.command(args);
}

Status RedisStore::queue_length(int32_t ck, uint64_t* length) {
  std::string key = conn_key(ck, "messages");
  RedisReply r;
  Status s = conn_.command({"LLEN", key}, &r);
  if (!s) return s;
  return parse_u64(r.get(), length) ? s : corrupt(key);
}

// Lua shared by the queue's scripts: a frame's number as 8 big-endian bytes (Lua numbers are
// doubles), or nil if it is not a frame (as stored_frame_number says: length prefix = size - 4,
// body >= 21 bytes, data_len within the body), and `above`, which compares two of them.
static const char kQueueLua[] =
    "local function number_of(f)\n"
    "  if #f < 25 then return nil end\n"
    "  local function be32(at)\n"
    "    local a, b, c, d = string.byte(f, at, at + 3)\n"
    "    return ((a * 256 + b) * 256 + c) * 256 + d\n"
    "  end\n"
    "  if be32(1) ~= #f - 4 or be32(22) + 21 > #f - 4 then return nil end\n"
    "  return string.sub(f, 5, 12)\n"
    "end\n"
    // Byte by byte: Lua's '<' on strings follows the server's collation locale.
    "local function above(a, b)\n"
    "  for i = 1, 8 do\n"
    "    local x, y = string.byte(a, i), string.byte(b, i)\n"
    "    if x ~= y then return x > y end\n"
    "  end\n"
    "  return false\n"
    "end\n";

static std::string big_endian(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = char(uint8_t(v >> (56 - 8 * i)));
  return out;
}

void RedisStore::ReadView::add(uint64_t place) {
  if (!runs.empty() && runs.back().first + runs.back().count == place) ++runs.back().count;
  else runs.push_back(Run{place, 1});
}

uint64_t RedisStore::ReadView::end() const {
  uint64_t n = first_index;
  for (const Run& r : runs) n += r.count;
  return n;
}

uint64_t RedisStore::ReadView::count_through(uint64_t place) const {
  uint64_t before = 0;
  for (const Run& r : runs) {
    if (place >= r.first && place - r.first < r.count) return before + (place - r.first) + 1;
    before += r.count;
  }
  return 0;
}

void RedisStore::ReadView::drop_front(uint64_t n) {
  while (n > 0) {
    Run& r = runs.front();
    uint64_t take = std::min(n, r.count);
    r.first += take;
    r.count -= take;
    n -= take;
    if (r.count == 0) runs.pop_front();
  }
}

Status RedisStore::read_messages_after(int32_t ck, uint64_t after, uint64_t count, std::vector<QueuedFrame>* out) {
  out->clear();
  if (count == 0) return Status();
  std::string key = conn_key(ck, "messages");
  RedisReply r;
  const redisReply* list = nullptr;  // the elements wanted, from list->element[skip]
  size_t skip = 0;
  uint64_t index = 0;  // the queue's index of the first of them
  Status s;
  auto view = read_views_.find(ck);
  bool goes_on = false;  // from where the view ends
  if (after == 0) {
    s = conn_.command({"LRANGE", key, "0", std::to_string(count - 1)}, &r);
    list = r.get();
  } else if (view != read_views_.end() && !view->second.runs.empty() && view->second.last() == after) {
    // Usually one round trip: from where the last read ended, with the frame read last. Elements
    // leave from before or after it and come only at the tail: while that frame is still
    // there, what follows it is what follows it.
    index = view->second.end();
    s = conn_.command({"LRANGE", key, std::to_string(index - 1), std::to_string(index + count - 1)}, &r);
    if (s && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        stored_frame_number(std::string(r->element[0]->str, r->element[0]->len)) == after) {
      list = r.get();
      skip = 1;
      goes_on = true;
    }
  }
  if (!s) return s;
  if (!list) {
    // The first element after the frame numbered `after` or, when that frame left, the first
    // placed after it; a few elements at a time, as a script holds what it reads in memory.
    static const std::string kFind = std::string(kQueueLua) +
                                     "local i, at = 0, nil\n"
                                     "while not at do\n"
                                     "  local chunk = redis.call('LRANGE', KEYS[1], i, i + 7)\n"
                                     "  for j = 1, #chunk do\n"
                                     "    local n = number_of(chunk[j])\n"
                                     "    if n == ARGV[1] then at = i + j break end\n"
                                     "    if n and above(n, ARGV[1]) then at = i + j - 1 break end\n"
                                     "  end\n"
                                     "  if not at and #chunk < 8 then at = i + #chunk end\n"
                                     "  i = i + 8\n"
                                     "end\n"
                                     "return {at, redis.call('LRANGE', KEYS[1], at, at + tonumber(ARGV[2]) - 1)}\n";
    s = conn_.command({"EVAL", kFind, "1", key, big_endian(after), std::to_string(count)}, &r);
    if (!s) return s;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !parse_u64(r->element[0], &index) ||
        r->element[1]->type != REDIS_REPLY_ARRAY)
      return corrupt("offline-queue search reply");
    list = r->element[1];
  }
  uint64_t place = after;
  for (size_t i = skip; list->type == REDIS_REPLY_ARRAY && i < list->elements; ++i) {
    std::string frame(list->element[i]->str, list->element[i]->len);
    uint64_t number = stored_frame_number(frame);
    if (number > 0) place = number;  // not a frame: the place of the frame before it
    out->push_back(QueuedFrame{place, std::move(frame)});
  }
  ReadView& v = read_views_[ck];
  if (!goes_on) v = ReadView{index, {}};
  for (const auto& f : *out) v.add(f.place);
  if (v.runs.size() > kViewRuns) read_views_.erase(ck);
  return s;
}

Status RedisStore::drop_messages_through(int32_t ck, uint64_t through, bool* empty) {
  // ARGV: the place, the count of head elements this instance read up to the first at that
  // place (0: unknown), how many to take one by one at most.
  static const std::string kDrop =
      std::string(kQueueLua) +
      "local k, n = tonumber(ARGV[2]), 0\n"
      "if k > 0 then\n"
      "  local f = redis.call('LINDEX', KEYS[1], k - 1)\n"
      "  if f and number_of(f) == ARGV[1] then redis.call('LTRIM', KEYS[1], k, -1) n = k end\n"
      "end\n"
      "local more = 0\n"
      "if n == 0 then\n"
      "  while n < tonumber(ARGV[3]) do\n"
      "    local f = redis.call('LPOP', KEYS[1])\n"
      "    if not f then break end\n"
      "    local num = number_of(f)\n"
      "    if num and above(num, ARGV[1]) then redis.call('LPUSH', KEYS[1], f) break end\n"
      "    n = n + 1\n"
      "  end\n"
      "  if n == tonumber(ARGV[3]) then more = 1 end\n"
      "end\n"
      "return {n, redis.call('LLEN', KEYS[1]), more}\n";
  static const std::string kOneByOne = "256";  // ~2 ms of a script for 1 KiB frames
  uint64_t known = 0;
  auto view = read_views_.find(ck);
  if (view != read_views_.end() && view->second.first_index == 0) known = view->second.count_through(through);
  std::string queue = conn_key(ck, "messages"), place = big_endian(through);
  for (;;) {
    RedisReply r;
    Status s = conn_.command({"EVAL", kDrop, "1", queue, place, std::to_string(known), kOneByOne}, &r);
    if (!s) return s;
    uint64_t dropped = 0, left = 0, more = 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !parse_u64(r->element[0], &dropped) ||
        !parse_u64(r->element[1], &left) || !parse_u64(r->element[2], &more))
      return corrupt("offline-queue drop reply");
    view = read_views_.find(ck);
    if (view != read_views_.end()) {
      if (known > 0 && dropped == known) {
        view->second.drop_front(known);
      } else {
        read_views_.erase(view);  // taken one by one: where the rest is is not known
      }
    }
    known = 0;
    if (!more) {
      if (empty) *empty = left == 0;
      // The hand-over marks describe the queue's frames: they go when the last one does (a
      // failure leaves marks that match no frame, removed the next time the queue empties).
      if (left == 0) drop_marks_if_empty(ck);
      return s;
    }
  }
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
  read_views_.erase(ck);
  // One key per command. The frames go first and the ack last: a crash part-way leaves an ack
  // with no queue (the state of a channel whose queue was delivered) or marks that match no
  // frame, never frames whose ack was reset.
  for (const char* what : {"messages", "handover", "mess_number"}) {
    Status s = conn_.command({"DEL", conn_key(ck, what)});
    if (!s) return s;
  }
  return Status();
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
