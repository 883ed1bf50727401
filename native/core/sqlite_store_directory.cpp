// SqliteStore, the directory (sqlite_store.hpp): topics' addresses (topic_addr), the marks of
// peers that unsubscribed, the leases that make a crashed peer's entries lapse, putting back what
// the store lost of a running peer's registration, and liner_broker's seeding from receivers_json.
#include "core/sqlite_store.hpp"

namespace liner {

namespace {

// liner_broker 1.3.1 writes a directory row so (regist_topic, seeding).
constexpr char kPutAddress[] = "INSERT OR REPLACE INTO topic_addr (topic, addr, client_name) VALUES (?1, ?2, ?3)";

// The keys liner_broker's seeding writes: "isolated pair" files start both at 1.
constexpr int64_t kFirstSeededKey = 1;

}  // namespace

Status SqliteStore::register_address(const std::string& topic, const std::string& addr,
                                     const std::string& unique_name, DirectoryEvent::Kind why) {
  return with_db(Lock::write, [&] { return put_address(topic, addr, unique_name, why); });
}

Status SqliteStore::put_address(const std::string& topic, const std::string& addr, const std::string& unique_name,
                                DirectoryEvent::Kind why) {
  Status s = Query(*this, kPutAddress).bind(topic).bind(addr).bind(unique_name).run();
  if (s) s = Query(*this, "DELETE FROM lnr_unsubscribed WHERE topic = ?1 AND addr = ?2").bind(topic).bind(addr).run();
  // A lease left by a peer that crashed at this address is not this entry's: a sweep before
  // the first renewal would remove the new entry with it.
  if (s) s = Query(*this, "DELETE FROM lnr_lease WHERE topic = ?1 AND addr = ?2").bind(topic).bind(addr).run();
  if (!s) return s;
  return announce(why == DirectoryEvent::subscribe ? DirectoryEvent::subscribe : DirectoryEvent::join, topic, addr);
}

Status SqliteStore::unregister_address(const std::string& topic, const std::string& addr,
                                       DirectoryEvent::Kind why) {
  const bool unsubscribe = why == DirectoryEvent::unsubscribe;
  return with_db(Lock::write, [&] {
    Status s = Query(*this, "DELETE FROM topic_addr WHERE topic = ?1 AND addr = ?2").bind(topic).bind(addr).run();
    if (s) s = Query(*this, "DELETE FROM lnr_lease WHERE topic = ?1 AND addr = ?2").bind(topic).bind(addr).run();
    // Marked with its announcement: a sender that hears of it, or refreshes the topic after
    // unsubscribe() returned, finds the mark.
    if (s && unsubscribe)
      s = Query(*this, "INSERT OR REPLACE INTO lnr_unsubscribed (topic, addr) VALUES (?1, ?2)").bind(topic).bind(addr).run();
    if (!s) return s;
    return announce(unsubscribe ? DirectoryEvent::unsubscribe : DirectoryEvent::leave, topic, addr);
  });
}

Status SqliteStore::unsubscribed_from_topic(const std::string& topic, std::vector<std::string>* addrs) {
  return with_db(Lock::none, [&] {
    Query q(*this, "SELECT addr FROM lnr_unsubscribed WHERE topic = ?1 ORDER BY addr");
    q.bind(topic);
    return strings(q, addrs);
  });
}

Status SqliteStore::addresses_of_topic(const std::string& topic, std::vector<TopicAddress>* out) {
  return with_db(Lock::none, [&] { return read_directory(topic, out); });
}

Status SqliteStore::read_directory(const std::string& topic, std::vector<TopicAddress>* out) {
  Query q(*this, "SELECT addr, client_name FROM topic_addr WHERE topic = ?1 ORDER BY addr ASC");
  q.bind(topic);
  out->clear();
  while (q.step()) out->push_back({q.bytes(0), q.bytes(1)});
  return q.status();
}

Status SqliteStore::delete_topic_addresses(const std::string& topic) {
  return with_db(Lock::none, [&] { return Query(*this, "DELETE FROM topic_addr WHERE topic = ?1").bind(topic).run(); });
}

Status SqliteStore::is_ours(const std::string& topic, const std::string& addr, const std::string& unique_name,
                            bool* ours) {
  Query q(*this, "SELECT client_name FROM topic_addr WHERE topic = ?1 AND addr = ?2");
  q.bind(topic).bind(addr);
  *ours = q.step() && q.bytes(0) == unique_name;
  return q.status();
}

Status SqliteStore::renew_registration(const Registration& r, bool* complete) {
  // Renews the lease of the entries that are there as ours only: a renewal racing stop() or
  // unsubscribe() leaves no lease behind, and a missing entry gets its lease once it is put back.
  const bool renew = r.lease_ms > 0;
  return with_db(renew ? Lock::write : Lock::read, [&] {
    const int64_t due = now_ms() + r.lease_ms;
    size_t ours = 0;
    for (const auto& e : r.entries) {
      bool mine = false;
      Status s = is_ours(e.topic, r.addr, r.unique_name, &mine);
      if (s && mine && renew)
        s = Query(*this, "INSERT OR REPLACE INTO lnr_lease (topic, addr, expires_ms) VALUES (?1, ?2, ?3)")
                .bind(e.topic)
                .bind(r.addr)
                .bind(due)
                .run();
      if (!s) return s;
      ours += mine;
    }
    int64_t counter = 0;
    bool found = false, readable = false;
    Status s = read_counter(&counter, &found, &readable);
    *complete = ours == r.entries.size() && found && readable && counter >= r.highest_key;
    return s;
  });
}

Status SqliteStore::lapsed_of(const std::string& topic, int64_t now, std::vector<std::string>* addrs) {
  // A lease that is not a number (a hand edit) never lapses: text sorts above every number.
  Query q(*this, "SELECT addr FROM lnr_lease WHERE topic = ?1 AND expires_ms < ?2 ORDER BY addr");
  q.bind(topic).bind(now);
  return strings(q, addrs);
}

Status SqliteStore::sweep_lapsed(const std::string& topic, std::vector<TopicAddress>* out) {
  // Looked at under a read lock first: most sweeps find nothing and need not wait for writers.
  const int64_t now = now_ms();
  std::vector<std::string> lapsed;
  Status s = with_db(Lock::read, [&] {
    Status s = lapsed_of(topic, now, &lapsed);
    return s ? read_directory(topic, out) : s;
  });
  if (!s || lapsed.empty()) return s;
  return with_db(Lock::write, [&] {
    Status s = lapsed_of(topic, now, &lapsed);  // again, under the write lock
    for (size_t i = 0; s && i < lapsed.size(); ++i) {
      const std::string& addr = lapsed[i];
      s = Query(*this, "DELETE FROM lnr_lease WHERE topic = ?1 AND addr = ?2").bind(topic).bind(addr).run();
      if (s) s = Query(*this, "DELETE FROM topic_addr WHERE topic = ?1 AND addr = ?2").bind(topic).bind(addr).run();
      // Announced only if it was there.
      if (s && changes() == 1) s = announce(DirectoryEvent::leave, topic, addr);
    }
    return s ? read_directory(topic, out) : s;
  });
}

Status SqliteStore::restore_registration(const Registration& r, size_t* restored) {
  // Overwrites nothing: an entry that is there as ours is neither rewritten nor announced again,
  // and every other row is written only where absent.
  return with_db(Lock::write, [&] {
    size_t registered = 0;
    for (const auto& e : r.entries) {
      bool ours = false;
      Status s = is_ours(e.topic, r.addr, r.unique_name, &ours);
      if (s && !ours) {
        s = put_address(e.topic, r.addr, r.unique_name, e.why);
        ++registered;
      }
      if (!s) return s;
    }
    if (restored) *restored = registered;
    auto set_key = [&](const std::string& topic, int32_t key) {
      return Query(*this, "INSERT OR IGNORE INTO topic_key (topic, k) VALUES (?1, ?2)").bind(topic).bind(key).run();
    };
    Status s;
    for (size_t i = 0; s && i < r.entries.size(); ++i) s = set_key(r.entries[i].topic, r.entries[i].topic_key);
    for (size_t i = 0; s && i < r.sent_topic_keys.size(); ++i)
      s = set_key(r.sent_topic_keys[i].first, r.sent_topic_keys[i].second);
    const std::string listeners = sender_key(r.unique_name, r.source_topic);
    for (size_t i = 0; s && i < r.channels.size(); ++i) {
      const auto& c = r.channels[i];
      s = Query(*this, "INSERT OR IGNORE INTO conn_key_map (composite, connection_key) VALUES (?1, ?2)")
              .bind(composite(r.unique_name, r.source_topic, c.listener_unique))
              .bind(c.key)
              .run();
      if (s)
        s = Query(*this, "INSERT OR IGNORE INTO conn_sender (connection_key, sender_topic) VALUES (?1, ?2)")
                .bind(c.key)
                .bind(r.source_topic)
                .run();
      // The name goes where the row has none (a row 1.3.1 wrote), as Redis's HSETNX on a hash of
      // its own would.
      if (s)
        s = Query(*this,
                  "INSERT INTO sender_listener (sender_key, addr, listener_topic, client_name) VALUES (?1, ?2, ?3, ?4)"
                  " ON CONFLICT (sender_key, addr) DO UPDATE SET client_name = excluded.client_name"
                  " WHERE client_name = ''")
                .bind(listeners)
                .bind(c.listener_addr)
                .bind(c.listener_topic)
                .bind(c.listener_unique)
                .run();
    }
    if (!s) return s;
    // Raised, never lowered: keys in use must not be handed out again. A counter that is not a
    // number is replaced, as the Redis store's script does.
    int64_t counter = 0;
    bool found = false, readable = false;
    s = read_counter(&counter, &found, &readable);
    if (s && (!readable || counter < r.highest_key)) s = write_counter(r.highest_key);
    return s;
  });
}

Status SqliteStore::seed_receivers(const std::string& unique_name, const std::string& source_topic,
                                   const std::vector<SeedReceiver>& entries) {
  if (entries.empty()) return Status();
  return with_db(Lock::write, [&] {
    Status s;
    for (size_t i = 0; s && i < entries.size(); ++i) {
      const SeedReceiver& e = entries[i];
      s = Query(*this, kPutAddress).bind(e.topic).bind(e.addr).bind(e.client_name).run();
      if (s)
        s = Query(*this, "INSERT OR REPLACE INTO topic_key (topic, k) VALUES (?1, ?2)")
                .bind(e.topic)
                .bind(kFirstSeededKey)
                .run();
      // Only a peer's row names a channel; a row of the client's own topic is a legacy no-op.
      if (s && e.topic != source_topic)
        s = Query(*this, "INSERT OR REPLACE INTO conn_key_map (composite, connection_key) VALUES (?1, ?2)")
                .bind(composite(unique_name, source_topic, e.client_name))
                .bind(kFirstSeededKey)
                .run();
      if (s && e.topic != source_topic)
        s = Query(*this, "INSERT OR REPLACE INTO conn_sender (connection_key, sender_topic) VALUES (?1, ?2)")
                .bind(kFirstSeededKey)
                .bind(e.topic)
                .run();
    }
    if (s)
      s = Query(*this, "INSERT OR IGNORE INTO topic_key (topic, k) VALUES (?1, ?2)")
              .bind(source_topic)
              .bind(kFirstSeededKey)
              .run();
    if (!s) return s;
    // The counter reaches the connection keys in use, not the topic keys: 1.3.1's first
    // allocated connection key on a seeded file must still be 1 (sync_seq_after_seed).
    int64_t counter = 0;
    bool found = false, readable = false;
    s = read_counter(&counter, &found, &readable);
    if (!s) return s;
    if (!readable) return corrupt("seq[id=1]");
    Query q(*this,
            "SELECT MAX(COALESCE((SELECT MAX(connection_key) FROM conn_key_map), 0),"
            " COALESCE((SELECT MAX(connection_key) FROM conn_sender), 0))");
    const int64_t used = q.step() ? q.i64(0) : 0;
    if (!q.status()) return q.status();
    return used > counter ? write_counter(used) : s;
  });
}

Status seed_sqlite_receivers(Store& store, const std::string& unique_name, const std::string& source_topic,
                             const std::string& localhost, const std::vector<SeedReceiver>& entries) {
  (void)localhost;
  auto* sqlite = dynamic_cast<SqliteStore*>(&store);
  if (!sqlite) return Status(Err::invalid_arg, "receivers can be seeded into a sqlite store only");
  return sqlite->seed_receivers(unique_name, source_topic, entries);
}

}  // namespace liner
