// PostgresStore, the directory (postgres_store.hpp): topics' addresses (topic_addr), the marks of
// peers that unsubscribed, the leases that make a crashed peer's entries lapse, and putting back
// what the store lost of a running peer's registration. The same steps as the SQLite store's
// (sqlite_store_directory.cpp), in PostgreSQL's SQL and with row locks where SQLite has one writer.
#include "core/postgres_store.hpp"

namespace liner {

Status PostgresStore::register_address(const std::string& topic, const std::string& addr,
                                       const std::string& unique_name, DirectoryEvent::Kind why) {
  return with_db(true, [&] { return put_address(topic, addr, unique_name, why); });
}

Status PostgresStore::put_address(const std::string& topic, const std::string& addr,
                                  const std::string& unique_name, DirectoryEvent::Kind why) {
  // liner_broker 1.3.1's statement (regist_topic).
  Status s = Query(*this,
                   "INSERT INTO topic_addr (topic, addr, client_name) VALUES ($1, $2, $3)"
                   " ON CONFLICT (topic, addr) DO UPDATE SET client_name = EXCLUDED.client_name")
                 .bind(topic)
                 .bind(addr)
                 .bind(unique_name)
                 .run();
  if (s) s = Query(*this, "DELETE FROM lnr_unsubscribed WHERE topic = $1 AND addr = $2").bind(topic).bind(addr).run();
  // A lease left by a peer that crashed at this address is not this entry's: a sweep before
  // the first renewal would remove the new entry with it.
  if (s) s = Query(*this, "DELETE FROM lnr_lease WHERE topic = $1 AND addr = $2").bind(topic).bind(addr).run();
  if (!s) return s;
  return announce(why == DirectoryEvent::subscribe ? DirectoryEvent::subscribe : DirectoryEvent::join, topic, addr);
}

Status PostgresStore::unregister_address(const std::string& topic, const std::string& addr,
                                         DirectoryEvent::Kind why) {
  const bool unsubscribe = why == DirectoryEvent::unsubscribe;
  return with_db(true, [&] {
    Status s = Query(*this, "DELETE FROM topic_addr WHERE topic = $1 AND addr = $2").bind(topic).bind(addr).run();
    if (s) s = Query(*this, "DELETE FROM lnr_lease WHERE topic = $1 AND addr = $2").bind(topic).bind(addr).run();
    // Marked with its announcement: a sender that hears of it, or refreshes the topic after
    // unsubscribe() returned, finds the mark.
    if (s && unsubscribe)
      s = Query(*this, "INSERT INTO lnr_unsubscribed (topic, addr) VALUES ($1, $2) ON CONFLICT DO NOTHING")
              .bind(topic)
              .bind(addr)
              .run();
    if (!s) return s;
    return announce(unsubscribe ? DirectoryEvent::unsubscribe : DirectoryEvent::leave, topic, addr);
  });
}

Status PostgresStore::unsubscribed_from_topic(const std::string& topic, std::vector<std::string>* addrs) {
  return with_db(false, [&] {
    Query q(*this, "SELECT addr FROM lnr_unsubscribed WHERE topic = $1 ORDER BY addr COLLATE \"C\"");
    q.bind(topic);
    return strings(q, addrs);
  });
}

Status PostgresStore::addresses_of_topic(const std::string& topic, std::vector<TopicAddress>* out) {
  return with_db(false, [&] { return read_directory(topic, out); });
}

Status PostgresStore::read_directory(const std::string& topic, std::vector<TopicAddress>* out) {
  Query q(*this, "SELECT addr, client_name FROM topic_addr WHERE topic = $1 ORDER BY addr COLLATE \"C\"");
  Status s = q.bind(topic).run();
  out->clear();
  for (int i = 0; s && i < q.rows(); ++i) out->push_back({q.bytes(i, 0), q.bytes(i, 1)});
  return s;
}

Status PostgresStore::delete_topic_addresses(const std::string& topic) {
  // The directory only, as liner_broker and the other stores do: running replicas put their
  // entries back and renew their leases.
  return with_db(false, [&] { return Query(*this, "DELETE FROM topic_addr WHERE topic = $1").bind(topic).run(); });
}

Status PostgresStore::is_ours(const std::string& topic, const std::string& addr, const std::string& unique_name,
                              bool* ours) {
  // FOR SHARE: an unregister racing the caller waits for its transaction, then deletes what it
  // wrote (a lease) too.
  Query q(*this, "SELECT client_name FROM topic_addr WHERE topic = $1 AND addr = $2 FOR SHARE");
  Status s = q.bind(topic).bind(addr).run();
  *ours = s && q.rows() == 1 && q.bytes(0, 0) == unique_name;
  return s;
}

Status PostgresStore::renew_registration(const Registration& r, bool* complete) {
  // Renews the lease of the entries that are there as ours only: a renewal racing stop() or
  // unsubscribe() leaves no lease behind, and a missing entry gets its lease once it is put back.
  const bool renew = r.lease_ms > 0;
  return with_db(true, [&] {
    size_t ours = 0;
    for (const auto& e : r.entries) {
      bool mine = false;
      Status s = is_ours(e.topic, r.addr, r.unique_name, &mine);
      if (s && mine && renew)
        s = Query(*this,
                  "INSERT INTO lnr_lease (topic, addr, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond')"
                  " ON CONFLICT (topic, addr) DO UPDATE SET expires_at = EXCLUDED.expires_at")
                .bind(e.topic)
                .bind(r.addr)
                .bind(int64_t(r.lease_ms))
                .run();
      if (!s) return s;
      ours += mine;
    }
    Query q(*this, "SELECT v FROM seq WHERE id = 1");
    Status s = q.run();
    int64_t counter = 0;
    *complete = s && ours == r.entries.size() && q.rows() == 1 && q.i64(0, 0, &counter) && counter >= r.highest_key;
    return s;
  });
}

Status PostgresStore::lapsed_of(const std::string& topic, std::vector<std::string>* addrs) {
  Query q(*this, "SELECT addr FROM lnr_lease WHERE topic = $1 AND expires_at < now() ORDER BY addr COLLATE \"C\"");
  q.bind(topic);
  return strings(q, addrs);
}

Status PostgresStore::sweep_lapsed(const std::string& topic, std::vector<TopicAddress>* out) {
  // Looked at without a transaction first: most sweeps find nothing.
  std::vector<std::string> lapsed;
  Status s = with_db(false, [&] {
    Status s = lapsed_of(topic, &lapsed);
    return s ? read_directory(topic, out) : s;
  });
  if (!s || lapsed.empty()) return s;
  return with_db(true, [&] {
    Status s = lapsed_of(topic, &lapsed);  // again, in the transaction that removes them
    for (size_t i = 0; s && i < lapsed.size(); ++i) {
      const std::string& addr = lapsed[i];
      // The lease row is deleted only if it still lapsed: a renewal may have come in between.
      Query lease(*this, "DELETE FROM lnr_lease WHERE topic = $1 AND addr = $2 AND expires_at < now() RETURNING 1");
      s = lease.bind(topic).bind(addr).run();
      if (!s || lease.rows() == 0) continue;
      Query entry(*this, "DELETE FROM topic_addr WHERE topic = $1 AND addr = $2 RETURNING 1");
      s = entry.bind(topic).bind(addr).run();
      // Announced only if it was there.
      if (s && entry.rows() == 1) s = announce(DirectoryEvent::leave, topic, addr);
    }
    return s ? read_directory(topic, out) : s;
  });
}

Status PostgresStore::restore_registration(const Registration& r, size_t* restored) {
  // Overwrites nothing: an entry that is there as ours is neither rewritten nor announced again,
  // and every other row is written only where absent.
  return with_db(true, [&] {
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
      return Query(*this, "INSERT INTO topic_key (topic, k) VALUES ($1, $2) ON CONFLICT DO NOTHING")
          .bind(topic)
          .bind(int64_t(key))
          .run();
    };
    Status s;
    for (size_t i = 0; s && i < r.entries.size(); ++i) s = set_key(r.entries[i].topic, r.entries[i].topic_key);
    for (size_t i = 0; s && i < r.sent_topic_keys.size(); ++i)
      s = set_key(r.sent_topic_keys[i].first, r.sent_topic_keys[i].second);
    const std::string listeners = sender_key(r.unique_name, r.source_topic);
    for (size_t i = 0; s && i < r.channels.size(); ++i) {
      const auto& c = r.channels[i];
      s = Query(*this, "INSERT INTO conn_key_map (composite, connection_key) VALUES ($1, $2) ON CONFLICT DO NOTHING")
              .bind(composite(r.unique_name, r.source_topic, c.listener_unique))
              .bind(int64_t(c.key))
              .run();
      if (s)
        s = Query(*this, "INSERT INTO conn_sender (connection_key, sender_topic) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(int64_t(c.key))
                .bind(r.source_topic)
                .run();
      // The name goes where the row has none (a row 1.3.1 wrote), as Redis's HSETNX on a hash of
      // its own would.
      if (s)
        s = Query(*this,
                  "INSERT INTO sender_listener (sender_key, addr, listener_topic, client_name) VALUES ($1, $2, $3, $4)"
                  " ON CONFLICT (sender_key, addr) DO UPDATE SET client_name = EXCLUDED.client_name"
                  " WHERE sender_listener.client_name = ''")
                .bind(listeners)
                .bind(c.listener_addr)
                .bind(c.listener_topic)
                .bind(c.listener_unique)
                .run();
    }
    // Raised, never lowered: keys in use must not be handed out again.
    return s ? raise_counter(r.highest_key) : s;
  });
}

}  // namespace liner
