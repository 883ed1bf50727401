// SqliteStore, keys and channels (sqlite_store.hpp): topic and connection keys from the counter
// in seq, a channel's metadata and ack counter, the listeners a sender remembers, and the
// channel's offline queue with its hand-over marks and refusals.
#include "core/frame.hpp"
#include "core/sqlite_store.hpp"

namespace liner {

// A table of keys by name, and how people call one of its rows.
struct SqliteStore::KeyTable {
  const char* select;  // ?1 name -> key
  const char* insert;  // ?1 name, ?2 key
  const char* row;     // "<table>[<column>=", the name and "]" follow
};

namespace {

const char kTopicKeys[] = "topic_key[topic=";
const char kChannelKeys[] = "conn_key_map[composite=";

// LIMIT and OFFSET are signed: a larger count means "all of them".
int64_t clamp(uint64_t v) { return v > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(v); }

}  // namespace

Status SqliteStore::topic_key(const std::string& topic, int32_t* key) {
  static const KeyTable table{"SELECT k FROM topic_key WHERE topic = ?1",
                              "INSERT INTO topic_key (topic, k) VALUES (?1, ?2)", kTopicKeys};
  bool found = false;
  return key_of(table, topic, true, key, &found);
}

Status SqliteStore::connection_key(const std::string& u, const std::string& s, const std::string& l,
                                   bool allocate, int32_t* ck, bool* found) {
  static const KeyTable table{"SELECT connection_key FROM conn_key_map WHERE composite = ?1",
                              "INSERT INTO conn_key_map (composite, connection_key) VALUES (?1, ?2)", kChannelKeys};
  return key_of(table, composite(u, s, l), allocate, ck, found);
}

Status SqliteStore::key_of(const KeyTable& table, const std::string& name, bool allocate, int32_t* value,
                           bool* found) {
  auto lookup = [&] {
    Query q(*this, table.select);
    q.bind(name);
    *found = q.step();
    if (*found && !q.i32(0, value)) return corrupt(table.row + name + "]");
    return q.status();
  };
  // Without a lock first: the key is there on every call but the first.
  Status s = with_db(Lock::none, lookup);
  if (!s || *found || !allocate) return s;
  return with_db(Lock::write, [&] {
    Status s = lookup();  // again, under the write lock: another process may have won
    if (!s || *found) return s;
    int64_t counter = 0;
    bool had = false, readable = false;
    s = read_counter(&counter, &had, &readable);
    if (!s) return s;
    if (!readable || counter >= INT32_MAX) return corrupt("seq[id=1]");
    const int32_t fresh = int32_t(counter + 1);
    s = write_counter(fresh);
    if (s) s = Query(*this, table.insert).bind(name).bind(fresh).run();
    if (!s) return s;
    *value = fresh;
    *found = true;
    return s;
  });
}

Status SqliteStore::set_sender_topic(int32_t ck, const std::string& sender_topic) {
  return with_db(Lock::none, [&] {
    return Query(*this, "INSERT OR REPLACE INTO conn_sender (connection_key, sender_topic) VALUES (?1, ?2)")
        .bind(ck)
        .bind(sender_topic)
        .run();
  });
}

Status SqliteStore::sender_topic(int32_t ck, std::string* sender_topic, bool* found) {
  return with_db(Lock::none, [&] { return read_sender_topic(ck, sender_topic, found); });
}

Status SqliteStore::read_sender_topic(int32_t ck, std::string* sender_topic, bool* found) {
  Query q(*this, "SELECT sender_topic FROM conn_sender WHERE connection_key = ?1");
  q.bind(ck);
  *found = q.step();
  if (*found) *sender_topic = q.bytes(0);
  return q.status();
}

Status SqliteStore::read_ack(int32_t ck, bool create, AckCounter* out) {
  return with_db(Lock::none, [&] {
    Status s = read_ack_row(ck, out);
    if (!s || out->existed || !create) return s;
    return Query(*this, "INSERT OR IGNORE INTO conn_mess_number (connection_key, v) VALUES (?1, 0)").bind(ck).run();
  });
}

Status SqliteStore::read_ack_row(int32_t ck, AckCounter* out) {
  Query q(*this, "SELECT v FROM conn_mess_number WHERE connection_key = ?1");
  q.bind(ck);
  *out = AckCounter();
  out->existed = q.step();
  out->unreadable = out->existed && !q.u64(0, &out->number);
  if (out->unreadable) out->number = 0;
  return q.status();
}

Status SqliteStore::set_last_mess_number(int32_t ck, uint64_t number) {
  return with_db(Lock::none, [&] {
    return Query(*this, "INSERT OR REPLACE INTO conn_mess_number (connection_key, v) VALUES (?1, ?2)")
        .bind(ck)
        .bind_u64(number)
        .run();
  });
}

Status SqliteStore::save_listener_for_sender(const std::string& u, const std::string& s, const std::string& addr,
                                             const std::string& listener_topic, const std::string& listener_unique) {
  // The plain topic, as liner_broker 1.3.1 writes and reads it; the name in liner's column.
  return with_db(Lock::none, [&] {
    return Query(*this,
                 "INSERT OR REPLACE INTO sender_listener (sender_key, addr, listener_topic, client_name)"
                 " VALUES (?1, ?2, ?3, ?4)")
        .bind(sender_key(u, s))
        .bind(addr)
        .bind(listener_topic)
        .bind(listener_unique)
        .run();
  });
}

Status SqliteStore::listeners_of_sender(const std::string& u, const std::string& s,
                                        std::vector<RememberedListener>* out) {
  return with_db(Lock::none, [&] {
    Query q(*this, "SELECT addr, listener_topic, client_name FROM sender_listener WHERE sender_key = ?1 ORDER BY addr");
    q.bind(sender_key(u, s));
    out->clear();
    while (q.step()) {
      RememberedListener l;
      l.addr = q.bytes(0);
      std::string value = q.bytes(1), name = q.bytes(2);
      // liner_broker >= 1.3.2 writes "topic\x1flistener" (its Redis store does; read alike here).
      size_t sep = value.find('\x1f');
      l.topic = value.substr(0, sep);
      if (sep != std::string::npos) l.unique_name = value.substr(sep + 1);
      if (!name.empty()) l.unique_name = std::move(name);
      out->push_back(std::move(l));
    }
    return q.status();
  });
}

Status SqliteStore::connection_keys_of_sender(const std::string& u, const std::string& s,
                                              std::vector<std::pair<std::string, int32_t>>* out) {
  const std::string prefix = composite(u, s, "");
  return with_db(Lock::none, [&] {
    Query q(*this,
            "SELECT composite, connection_key FROM conn_key_map WHERE composite >= ?1 AND composite < ?2"
            " ORDER BY composite");
    q.bind(prefix).bind(prefix_end(prefix));
    while (q.step()) {
      std::string name = q.bytes(0), listener = name.substr(prefix.size());
      // The listener part must be one segment: "U:S:L", not "U:S:x:y" of another S.
      if (listener.find(':') != std::string::npos) continue;
      int32_t ck = 0;
      if (!q.i32(1, &ck)) return corrupt(kChannelKeys + name + "]");
      out->emplace_back(std::move(listener), ck);
    }
    return q.status();
  });
}

Status SqliteStore::delete_listeners_of_sender(const std::string& u, const std::string& s) {
  return with_db(Lock::none, [&] {
    return Query(*this, "DELETE FROM sender_listener WHERE sender_key = ?1").bind(sender_key(u, s)).run();
  });
}

// ---- The offline queue ---------------------------------------------------------------------------

Status SqliteStore::push_messages(int32_t ck, const std::vector<const std::string*>& frames,
                                  const NumberRanges& handover) {
  if (frames.empty() && handover.empty()) return Status();
  // One transaction: the marks and their frames are there together or not at all.
  return with_db(Lock::write, [&] {
    Status s;
    for (size_t i = 0; s && i < handover.size(); ++i)
      s = Query(*this, "INSERT INTO lnr_handover (connection_key, first, last) VALUES (?1, ?2, ?3)")
              .bind(ck)
              .bind_u64(handover[i].first)
              .bind_u64(handover[i].second)
              .run();
    for (size_t i = 0; s && i < frames.size(); ++i)
      s = Query(*this, "INSERT INTO conn_messages (connection_key, payload) VALUES (?1, ?2)")
              .bind(ck)
              .bind_blob(*frames[i])
              .run();
    return s;
  });
}

Status SqliteStore::handover_marks(int32_t ck, NumberRanges* out) {
  out->clear();
  return with_db(Lock::none, [&] {
    Query q(*this, "SELECT first, last FROM lnr_handover WHERE connection_key = ?1 ORDER BY id");
    q.bind(ck);
    while (q.step()) {
      uint64_t first = 0, last = 0;
      if (!q.u64(0, &first) || !q.u64(1, &last) || first > last)
        return corrupt("lnr_handover[connection_key=" + std::to_string(ck) + "]");
      out->emplace_back(first, last);
    }
    return q.status();
  });
}

Status SqliteStore::drop_marks_if_empty(int32_t ck, bool* empty) {
  // The marks describe the queue's frames: they go when the last one does, whoever takes it.
  Query q(*this, "SELECT 1 FROM conn_messages WHERE connection_key = ?1 LIMIT 1");
  q.bind(ck);
  bool none = !q.step();
  Status s = q.status();
  if (s && none) s = Query(*this, "DELETE FROM lnr_handover WHERE connection_key = ?1").bind(ck).run();
  if (s && empty) *empty = none;
  return s;
}

Status SqliteStore::remove_messages(int32_t ck, const std::vector<std::string>& frames, uint64_t* removed) {
  if (removed) *removed = 0;
  if (frames.empty()) return Status();
  return with_db(Lock::write, [&] {
    Status s;
    uint64_t n = 0;
    for (size_t i = 0; s && i < frames.size(); ++i) {
      // The oldest copy only, as LREM key 1 frame does.
      s = Query(*this,
                "DELETE FROM conn_messages WHERE id = (SELECT id FROM conn_messages"
                " WHERE connection_key = ?1 AND payload = ?2 ORDER BY id LIMIT 1)")
              .bind(ck)
              .bind_blob(frames[i])
              .run();
      if (s) n += uint64_t(changes());
    }
    if (s) s = drop_marks_if_empty(ck);
    if (s && removed) *removed = n;
    return s;
  });
}

Status SqliteStore::queue_length(int32_t ck, uint64_t* length) {
  return with_db(Lock::none, [&] { return count_queue(ck, length); });
}

Status SqliteStore::count_queue(int32_t ck, uint64_t* length) {
  Query q(*this, "SELECT COUNT(*) FROM conn_messages WHERE connection_key = ?1");
  q.bind(ck);
  *length = q.step() ? uint64_t(q.i64(0)) : 0;
  return q.status();
}

Status SqliteStore::read_messages_after(int32_t ck, uint64_t after, uint64_t count, std::vector<QueuedFrame>* out) {
  return with_db(Lock::none, [&] { return read_frames(ck, after, count, out); });
}

Status SqliteStore::read_frames(int32_t ck, uint64_t after, uint64_t count, std::vector<QueuedFrame>* out) {
  Query q(*this, "SELECT id, payload FROM conn_messages WHERE connection_key = ?1 AND id > ?2 ORDER BY id LIMIT ?3");
  q.bind(ck).bind(clamp(after)).bind(clamp(count));
  while (q.step()) out->push_back(QueuedFrame{uint64_t(q.i64(0)), q.bytes(1)});
  return q.status();
}

Status SqliteStore::drop_messages_through(int32_t ck, uint64_t through, bool* empty) {
  return with_db(Lock::write, [&] {
    Status s = Query(*this, "DELETE FROM conn_messages WHERE connection_key = ?1 AND id <= ?2").bind(ck).bind(clamp(through)).run();
    return s ? drop_marks_if_empty(ck, empty) : s;
  });
}

Status SqliteStore::last_stored_message(int32_t ck, std::string* frame, bool* found) {
  return with_db(Lock::none, [&] {
    Query q(*this, "SELECT payload FROM conn_messages WHERE connection_key = ?1 ORDER BY id DESC LIMIT 1");
    q.bind(ck);
    *found = q.step();
    if (*found) *frame = q.bytes(0);
    return q.status();
  });
}

Status SqliteStore::delete_rows(int32_t ck, std::initializer_list<const char*> deletes) {
  Status s;
  for (auto it = deletes.begin(); s && it != deletes.end(); ++it) s = Query(*this, *it).bind(ck).run();
  return s;
}

Status SqliteStore::clear_channel(int32_t ck) {
  return with_db(Lock::write, [&] {
    return delete_rows(ck, {"DELETE FROM conn_messages WHERE connection_key = ?1",
                            "DELETE FROM conn_mess_number WHERE connection_key = ?1",
                            "DELETE FROM lnr_handover WHERE connection_key = ?1"});
  });
}

Status SqliteStore::report_refused(int32_t ck, uint64_t number, const std::string& reason) {
  return with_db(Lock::write, [&] {
    Status s = Query(*this, "INSERT INTO lnr_refused (connection_key, number, reason) VALUES (?1, ?2, ?3)")
                   .bind(ck)
                   .bind_u64(number)
                   .bind(reason)
                   .run();
    // The newest 100 stay.
    if (s)
      s = Query(*this,
                "DELETE FROM lnr_refused WHERE connection_key = ?1 AND id <= (SELECT id FROM lnr_refused"
                " WHERE connection_key = ?1 ORDER BY id DESC LIMIT 1 OFFSET 100)")
              .bind(ck)
              .run();
    return s ? announce(DirectoryEvent::refused, "", "", ck, number, reason) : s;
  });
}

}  // namespace liner
