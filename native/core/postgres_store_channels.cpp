// PostgresStore, keys and channels (postgres_store.hpp): topic and connection keys from the
// counter in seq, a channel's metadata and ack counter, the listeners a sender remembers, and the
// channel's offline queue with its hand-over marks and refusals. The same steps as the SQLite
// store's (sqlite_store_channels.cpp), with row and advisory locks where SQLite has one writer.
#include "core/frame.hpp"
#include "core/postgres_store.hpp"

namespace liner {

// A table of keys by name, and how people call one of its rows.
struct PostgresStore::KeyTable {
  const char* select;  // $1 name -> key
  const char* insert;  // $1 name, $2 key
  const char* row;     // "<table>[<column>=", the name and "]" follow
};

namespace {

// LIMIT and OFFSET are signed: a larger count means "all of them".
int64_t clamp(uint64_t v) { return v > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(v); }

// Frames per INSERT of push_messages: up to this many bytes (a larger frame goes alone). An
// array value is bounded by the server's 1 GB allocation limit, and the statement's copy of it
// is held in the sender's RAM and the server's while it runs.
constexpr size_t kPushStatementBytes = size_t(16) << 20;

// PostgreSQL's binary form of a one-dimensional bytea[] holding frames[from, to) (array_send):
// a header (dimensions, has-nulls flag, element type, then length and lower bound of the one
// dimension) and each element as its length and bytes, every integer 4 bytes big-endian.
std::string bytea_array(const std::vector<const std::string*>& frames, size_t from, size_t to) {
  constexpr uint32_t kByteaOid = 17;
  size_t size = 20;
  for (size_t i = from; i < to; ++i) size += 4 + frames[i]->size();
  std::string out;
  out.reserve(size);
  auto put = [&out](uint32_t v) {
    const char be[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
    out.append(be, 4);
  };
  put(1);  // dimensions
  put(0);  // no NULL elements
  put(kByteaOid);
  put(uint32_t(to - from));
  put(1);  // lower bound
  for (size_t i = from; i < to; ++i) {
    put(uint32_t(frames[i]->size()));
    out.append(*frames[i]);
  }
  return out;
}

}  // namespace

Status PostgresStore::topic_key(const std::string& topic, int32_t* key) {
  static const KeyTable table{"SELECT k FROM topic_key WHERE topic = $1",
                              "INSERT INTO topic_key (topic, k) VALUES ($1, $2)", "topic_key[topic="};
  bool found = false;
  return key_of(table, topic, true, key, &found);
}

Status PostgresStore::connection_key(const std::string& u, const std::string& s, const std::string& l,
                                     bool allocate, int32_t* ck, bool* found) {
  static const KeyTable table{"SELECT connection_key FROM conn_key_map WHERE composite = $1",
                              "INSERT INTO conn_key_map (composite, connection_key) VALUES ($1, $2)",
                              "conn_key_map[composite="};
  return key_of(table, composite(u, s, l), allocate, ck, found);
}

Status PostgresStore::key_of(const KeyTable& table, const std::string& name, bool allocate, int32_t* value,
                             bool* found) {
  auto lookup = [&] {
    Query q(*this, table.select);
    Status s = q.bind(name).run();
    *found = s && q.rows() > 0;
    if (*found && !q.i32(0, 0, value)) return corrupt(table.row + name + "]");
    return s;
  };
  // Without a transaction first: the key is there on every call but the first.
  Status s = with_db(false, lookup);
  if (!s || *found || !allocate) return s;
  return with_db(true, [&] {
    // seq's row locked first (liner_broker's UPDATE locks it too), then the name looked up again:
    // another process may have won while this one waited.
    Query counter(*this, "SELECT v FROM seq WHERE id = 1 FOR UPDATE");
    Status s = counter.run();
    if (s) s = lookup();
    if (!s || *found) return s;
    int64_t v = 0;
    if (counter.rows() == 1 && !counter.i64(0, 0, &v)) return corrupt("seq[id=1]");
    if (v >= INT32_MAX) return corrupt("seq[id=1]");
    const int32_t fresh = int32_t(v + 1);
    s = raise_counter(fresh);
    if (s) s = Query(*this, table.insert).bind(name).bind(int64_t(fresh)).run();
    if (!s) return s;
    *value = fresh;
    *found = true;
    return s;
  });
}

Status PostgresStore::set_sender_topic(int32_t ck, const std::string& sender_topic) {
  return with_db(false, [&] {
    return Query(*this,
                 "INSERT INTO conn_sender (connection_key, sender_topic) VALUES ($1, $2)"
                 " ON CONFLICT (connection_key) DO UPDATE SET sender_topic = EXCLUDED.sender_topic")
        .bind(int64_t(ck))
        .bind(sender_topic)
        .run();
  });
}

Status PostgresStore::sender_topic(int32_t ck, std::string* sender_topic, bool* found) {
  return with_db(false, [&] { return read_sender_topic(ck, sender_topic, found); });
}

Status PostgresStore::read_sender_topic(int32_t ck, std::string* sender_topic, bool* found) {
  Query q(*this, "SELECT sender_topic FROM conn_sender WHERE connection_key = $1");
  Status s = q.bind(int64_t(ck)).run();
  *found = s && q.rows() > 0;
  if (*found) *sender_topic = q.bytes(0, 0);
  return s;
}

Status PostgresStore::read_ack(int32_t ck, bool create, AckCounter* out) {
  return with_db(false, [&] {
    Status s = read_ack_row(ck, out);
    if (!s || out->existed || !create) return s;
    // liner_broker 1.3.1's statement (init_last_mess_number_from_sender).
    return Query(*this,
                 "INSERT INTO conn_mess_number (connection_key, v) VALUES ($1, 0) ON CONFLICT (connection_key) DO NOTHING")
        .bind(int64_t(ck))
        .run();
  });
}

Status PostgresStore::read_ack_row(int32_t ck, AckCounter* out) {
  Query q(*this, "SELECT v FROM conn_mess_number WHERE connection_key = $1");
  Status s = q.bind(int64_t(ck)).run();
  *out = AckCounter();
  out->existed = s && q.rows() > 0;
  int64_t v = 0;
  out->unreadable = out->existed && !q.i64(0, 0, &v);
  out->number = out->unreadable ? 0 : uint64_t(v);  // the BIGINT of the number's 64 bits
  return s;
}

Status PostgresStore::set_last_mess_number(int32_t ck, uint64_t number) {
  return with_db(false, [&] {
    return Query(*this,
                 "INSERT INTO conn_mess_number (connection_key, v) VALUES ($1, $2)"
                 " ON CONFLICT (connection_key) DO UPDATE SET v = EXCLUDED.v")
        .bind(int64_t(ck))
        .bind(int64_t(number))  // above INT64_MAX: negative (postgres_store.hpp)
        .run();
  });
}

Status PostgresStore::save_listener_for_sender(const std::string& u, const std::string& s, const std::string& addr,
                                               const std::string& listener_topic,
                                               const std::string& listener_unique) {
  // The plain topic, as liner_broker 1.3.1 writes and reads it; the name in liner's column.
  return with_db(false, [&] {
    return Query(*this,
                 "INSERT INTO sender_listener (sender_key, addr, listener_topic, client_name) VALUES ($1, $2, $3, $4)"
                 " ON CONFLICT (sender_key, addr) DO UPDATE SET listener_topic = EXCLUDED.listener_topic,"
                 " client_name = EXCLUDED.client_name")
        .bind(sender_key(u, s))
        .bind(addr)
        .bind(listener_topic)
        .bind(listener_unique)
        .run();
  });
}

Status PostgresStore::listeners_of_sender(const std::string& u, const std::string& s,
                                          std::vector<RememberedListener>* out) {
  return with_db(false, [&] {
    Query q(*this,
            "SELECT addr, listener_topic, client_name FROM sender_listener WHERE sender_key = $1"
            " ORDER BY addr COLLATE \"C\"");
    Status st = q.bind(sender_key(u, s)).run();
    out->clear();
    for (int i = 0; st && i < q.rows(); ++i) {
      RememberedListener l;
      l.addr = q.bytes(i, 0);
      std::string value = q.bytes(i, 1), name = q.bytes(i, 2);
      // liner_broker >= 1.3.2 writes "topic\x1flistener" (its Redis store does; read alike here).
      size_t sep = value.find('\x1f');
      l.topic = value.substr(0, sep);
      if (sep != std::string::npos) l.unique_name = value.substr(sep + 1);
      if (!name.empty()) l.unique_name = std::move(name);
      out->push_back(std::move(l));
    }
    return st;
  });
}

Status PostgresStore::connection_keys_of_sender(const std::string& u, const std::string& s,
                                                std::vector<std::pair<std::string, int32_t>>* out) {
  const std::string prefix = composite(u, s, "");
  return with_db(false, [&] {
    Query q(*this,
            "SELECT composite, connection_key FROM conn_key_map WHERE starts_with(composite, $1)"
            " ORDER BY composite COLLATE \"C\"");
    Status st = q.bind(prefix).run();
    for (int i = 0; st && i < q.rows(); ++i) {
      std::string name = q.bytes(i, 0), listener = name.substr(prefix.size());
      // The listener part must be one segment: "U:S:L", not "U:S:x:y" of another S.
      if (listener.find(':') != std::string::npos) continue;
      int32_t ck = 0;
      if (!q.i32(i, 1, &ck)) return corrupt("conn_key_map[composite=" + name + "]");
      out->emplace_back(std::move(listener), ck);
    }
    return st;
  });
}

Status PostgresStore::delete_listeners_of_sender(const std::string& u, const std::string& s) {
  return with_db(false, [&] {
    return Query(*this, "DELETE FROM sender_listener WHERE sender_key = $1").bind(sender_key(u, s)).run();
  });
}

// ---- The offline queue ---------------------------------------------------------------------------

Status PostgresStore::push_messages(int32_t ck, const std::vector<const std::string*>& frames,
                                    const NumberRanges& handover) {
  if (frames.empty() && handover.empty()) return Status();
  // One transaction: the marks and their frames are there together or not at all.
  Status pushed = with_db(true, [&] {
    Status s = lock_queue(ck);
    for (size_t i = 0; s && i < handover.size(); ++i)
      s = Query(*this, "INSERT INTO lnr_handover (connection_key, first, last) VALUES ($1, $2, $3)")
              .bind(int64_t(ck))
              .bind_u64(handover[i].first)
              .bind_u64(handover[i].second)
              .run();
    // Many frames per statement (one round trip per batch, not per frame): ids are handed out
    // in the array's order, so the queue keeps the order of `frames`.
    for (size_t i = 0; s && i < frames.size();) {
      size_t end = i, bytes = 0;
      while (end < frames.size() && (end == i || bytes + frames[end]->size() <= kPushStatementBytes))
        bytes += frames[end++]->size();
      const std::string array = bytea_array(frames, i, end);
      s = Query(*this,
                "INSERT INTO conn_messages (connection_key, payload) SELECT $1, f.payload"
                " FROM unnest($2::bytea[]) WITH ORDINALITY AS f(payload, ord) ORDER BY f.ord")
              .bind(int64_t(ck))
              .bind_bytes(array)
              .run();
      i = end;
    }
    return s;
  });
  if (pushed && !frames.empty() && !queue_has_statistics_) give_queue_statistics();
  return pushed;
}

void PostgresStore::give_queue_statistics() {
  // Until conn_messages has column statistics (a new database, or one analysed while empty),
  // the planner guesses a channel's queue at a small share of the table, and reads a chunk of
  // a long queue by sorting all of it (on disk, beyond work_mem) rather than walking the
  // (connection_key, id) index: every read of a drain sorts the whole queue again. Autovacuum
  // analyses a table a minute after it grew, too late for a drain that follows a spill. Once
  // analysed, any statistics do: a channel missing from them is estimated small, one that
  // fills the table is seen to follow id, and both read through the index.
  // Failing here costs speed, not messages: the frames are stored.
  with_db(false, [&] {
    Query q(*this,
            "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_stats WHERE schemaname = current_schema()"
            " AND tablename = 'conn_messages' AND attname = 'connection_key')");
    Status s = q.run();
    if (s && q.rows() == 1) s = exec("ANALYZE conn_messages");
    queue_has_statistics_ = s.ok();  // statistics stay with the table: this instance asks no more
    return s;
  });
}

Status PostgresStore::handover_marks(int32_t ck, NumberRanges* out) {
  out->clear();
  return with_db(false, [&] {
    Query q(*this, "SELECT first, last FROM lnr_handover WHERE connection_key = $1 ORDER BY id");
    Status s = q.bind(int64_t(ck)).run();
    for (int i = 0; s && i < q.rows(); ++i) {
      uint64_t first = 0, last = 0;
      if (!q.u64(i, 0, &first) || !q.u64(i, 1, &last) || first > last)
        return corrupt("lnr_handover[connection_key=" + std::to_string(ck) + "]");
      out->emplace_back(first, last);
    }
    return s;
  });
}

Status PostgresStore::drop_marks_if_empty(int32_t ck, bool* empty) {
  // The marks describe the queue's frames: they go when the last one does, whoever takes it.
  Query q(*this, "SELECT 1 FROM conn_messages WHERE connection_key = $1 LIMIT 1");
  Status s = q.bind(int64_t(ck)).run();
  bool none = s && q.rows() == 0;
  if (none) s = Query(*this, "DELETE FROM lnr_handover WHERE connection_key = $1").bind(int64_t(ck)).run();
  if (s && empty) *empty = none;
  return s;
}

Status PostgresStore::remove_messages(int32_t ck, const std::vector<std::string>& frames, uint64_t* removed) {
  if (removed) *removed = 0;
  if (frames.empty()) return Status();
  return with_db(true, [&] {
    Status s = lock_queue(ck);
    uint64_t n = 0;
    for (size_t i = 0; s && i < frames.size(); ++i) {
      // The oldest copy only, as LREM key 1 frame does.
      Query q(*this,
              "DELETE FROM conn_messages WHERE id = (SELECT id FROM conn_messages"
              " WHERE connection_key = $1 AND payload = $2 ORDER BY id LIMIT 1) RETURNING 1");
      s = q.bind(int64_t(ck)).bind_bytes(frames[i]).run();
      if (s) n += uint64_t(q.rows());
    }
    if (s) s = drop_marks_if_empty(ck);
    if (s && removed) *removed = n;
    return s;
  });
}

Status PostgresStore::queue_length(int32_t ck, uint64_t* length) {
  return with_db(false, [&] { return count_queue(ck, length); });
}

Status PostgresStore::count_queue(int32_t ck, uint64_t* length) {
  Query q(*this, "SELECT COUNT(*) FROM conn_messages WHERE connection_key = $1");
  Status s = q.bind(int64_t(ck)).run();
  int64_t n = 0;
  *length = s && q.rows() == 1 && q.i64(0, 0, &n) ? uint64_t(n) : 0;
  return s;
}

Status PostgresStore::read_messages_after(int32_t ck, uint64_t after, uint64_t count, std::vector<QueuedFrame>* out) {
  return with_db(false, [&] { return read_frames(ck, after, count, out); });
}

Status PostgresStore::read_frames(int32_t ck, uint64_t after, uint64_t count, std::vector<QueuedFrame>* out) {
  // Binary results: the id as text (its bytes), the frame as its bytes. The text column has a
  // name of its own: named "id", it would be what ORDER BY id sorts ("10" before "2").
  Query q(*this,
          "SELECT id::text AS id_text, payload FROM conn_messages WHERE connection_key = $1 AND id > $2"
          " ORDER BY id LIMIT $3",
          true);
  Status s = q.bind(int64_t(ck)).bind(clamp(after)).bind(clamp(count)).run();
  for (int i = 0; s && i < q.rows(); ++i) {
    uint64_t place = 0;
    if (!q.u64(i, 0, &place)) return corrupt("conn_messages[id=" + q.bytes(i, 0) + "]");
    out->push_back(QueuedFrame{place, q.bytes(i, 1)});
  }
  return s;
}

Status PostgresStore::drop_messages_through(int32_t ck, uint64_t through, bool* empty) {
  return with_db(true, [&] {
    Status s = lock_queue(ck);
    if (s)
      s = Query(*this, "DELETE FROM conn_messages WHERE connection_key = $1 AND id <= $2")
              .bind(int64_t(ck))
              .bind(clamp(through))
              .run();
    return s ? drop_marks_if_empty(ck, empty) : s;
  });
}

Status PostgresStore::last_stored_message(int32_t ck, std::string* frame, bool* found) {
  return with_db(false, [&] {
    Query q(*this, "SELECT payload FROM conn_messages WHERE connection_key = $1 ORDER BY id DESC LIMIT 1", true);
    Status s = q.bind(int64_t(ck)).run();
    *found = s && q.rows() > 0;
    if (*found) *frame = q.bytes(0, 0);
    return s;
  });
}

Status PostgresStore::delete_rows(int32_t ck, std::initializer_list<const char*> deletes) {
  Status s;
  for (auto it = deletes.begin(); s && it != deletes.end(); ++it) s = Query(*this, *it).bind(int64_t(ck)).run();
  return s;
}

Status PostgresStore::clear_channel(int32_t ck) {
  return with_db(true, [&] {
    Status s = lock_queue(ck);
    if (!s) return s;
    return delete_rows(ck, {"DELETE FROM conn_messages WHERE connection_key = $1",
                            "DELETE FROM conn_mess_number WHERE connection_key = $1",
                            "DELETE FROM lnr_handover WHERE connection_key = $1"});
  });
}

Status PostgresStore::report_refused(int32_t ck, uint64_t number, const std::string& reason) {
  return with_db(true, [&] {
    Status s = lock_queue(ck);  // the trim below counts this channel's rows
    if (s)
      s = Query(*this, "INSERT INTO lnr_refused (connection_key, number, reason) VALUES ($1, $2, $3)")
              .bind(int64_t(ck))
              .bind_u64(number)
              .bind(reason)
              .run();
    // The newest 100 stay.
    if (s)
      s = Query(*this,
                "DELETE FROM lnr_refused WHERE connection_key = $1 AND id <= (SELECT id FROM lnr_refused"
                " WHERE connection_key = $1 ORDER BY id DESC LIMIT 1 OFFSET 100)")
              .bind(int64_t(ck))
              .run();
    return s ? announce(DirectoryEvent::refused, "", "", ck, number, reason) : s;
  });
}

}  // namespace liner
