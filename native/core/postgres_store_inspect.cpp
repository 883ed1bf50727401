// PostgresStore, reads for tools (postgres_store.hpp; directory_inspect.hpp uses them): the whole
// store in one transaction each, and the rows' names shown to people. The same reads as the
// SQLite store's (sqlite_store_inspect.cpp); names sort by their bytes (COLLATE "C"), whatever
// the database's collation.
#include <set>

#include "core/postgres_store.hpp"

namespace liner {

namespace {

// "<table>[<column>=<value>]": a row as people find it with psql.
std::string row(const char* table, const char* column, const std::string& value) {
  return std::string(table) + "[" + column + "=" + value + "]";
}

}  // namespace

Status PostgresStore::list_topics(std::vector<std::string>* topics) {
  return with_db(false, [&] {
    Query q(*this, "SELECT topic FROM (SELECT topic FROM topic_addr UNION SELECT topic FROM topic_key) AS t"
                   " ORDER BY topic COLLATE \"C\"");
    return strings(q, topics);
  });
}

Status PostgresStore::read_topics(const std::vector<std::string>& topics, std::vector<TopicState>* out) {
  out->clear();
  // REPEATABLE READ: every topic as of one moment.
  return with_db(true, [&] {
    Status s = Query(*this, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").run();
    for (size_t i = 0; s && i < topics.size(); ++i) {
      TopicState t;
      Query q(*this, "SELECT k FROM topic_key WHERE topic = $1");
      s = q.bind(topics[i]).run();
      t.has_key = s && q.rows() > 0 && q.i32(0, 0, &t.key);
      if (s) s = read_directory(topics[i], &t.addresses);
      if (s) out->push_back(std::move(t));
    }
    return s;
  });
}

Status PostgresStore::list_channels(const std::string& sender_unique, std::vector<ChannelName>* out) {
  out->clear();
  return with_db(false, [&] { return channel_names(sender_unique, true, out); });
}

Status PostgresStore::channel_names(const std::string& sender_unique, bool keyed, std::vector<ChannelName>* out) {
  Query q(*this, sender_unique.empty()
                     ? "SELECT composite, connection_key FROM conn_key_map"
                     : "SELECT composite, connection_key FROM conn_key_map WHERE starts_with(composite, $1)");
  if (!sender_unique.empty()) q.bind(sender_key(sender_unique, ""));
  Status s = q.run();
  for (int i = 0; s && i < q.rows(); ++i) {
    const std::string name = q.bytes(i, 0);
    size_t a = name.find(':'), b = a == std::string::npos ? a : name.find(':', a + 1);
    if (b == std::string::npos || name.find(':', b + 1) != std::string::npos) continue;
    ChannelName c{name.substr(0, a), name.substr(a + 1, b - a - 1), name.substr(b + 1)};
    if (c.sender_unique.empty() || c.sender_topic.empty() || c.listener_unique.empty()) continue;
    if (!sender_unique.empty() && c.sender_unique != sender_unique) continue;
    if (!q.i32(i, 1, &c.key) && keyed) continue;
    out->push_back(std::move(c));
  }
  return s;
}

Status PostgresStore::read_channels(const std::vector<int32_t>& keys, bool with_head, std::vector<ChannelState>* out) {
  out->clear();
  return with_db(true, [&] {
    Status s = Query(*this, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").run();
    for (size_t i = 0; s && i < keys.size(); ++i) {
      const int32_t ck = keys[i];
      ChannelState state;
      std::vector<QueuedFrame> head;
      s = read_sender_topic(ck, &state.sender_topic, &state.has_sender_topic);
      if (s) s = read_ack_row(ck, &state.ack);
      if (s) s = count_queue(ck, &state.queue_length);
      if (s && with_head) s = read_frames(ck, 0, 1, &head);
      if (!s) return s;
      if (!head.empty()) state.head = std::move(head[0].frame);
      out->push_back(std::move(state));
    }
    return s;
  });
}

Status PostgresStore::source_topics_of_sender(const std::string& u, std::vector<std::string>* out) {
  const std::string prefix = sender_key(u, "");
  return with_db(true, [&] {
    std::vector<std::string> maps;
    Query q(*this, "SELECT DISTINCT sender_key FROM sender_listener WHERE starts_with(sender_key, $1)");
    q.bind(prefix);
    Status s = strings(q, &maps);
    if (!s) return s;
    std::set<std::string> found;
    for (const auto& name : maps) {
      std::string topic = name.substr(prefix.size());
      if (topic.find(':') == std::string::npos) found.insert(std::move(topic));
    }
    std::vector<ChannelName> channels;
    s = channel_names(u, false, &channels);
    for (const auto& c : channels) found.insert(c.sender_topic);
    out->assign(found.begin(), found.end());
    return s;
  });
}

Status PostgresStore::queued_channels(std::vector<int32_t>* keys) {
  keys->clear();
  return with_db(false, [&] {
    Query q(*this, "SELECT DISTINCT connection_key FROM conn_messages ORDER BY connection_key");
    Status s = q.run();
    int32_t ck = 0;
    for (int i = 0; s && i < q.rows(); ++i)
      if (q.i32(i, 0, &ck)) keys->push_back(ck);
    return s;
  });
}

Status PostgresStore::forget_channel(const ChannelName& c) {
  return with_db(true, [&] {
    Status s = Query(*this, "DELETE FROM conn_key_map WHERE composite = $1")
                   .bind(composite(c.sender_unique, c.sender_topic, c.listener_unique))
                   .run();
    if (s) s = lock_queue(c.key);
    if (!s) return s;
    return delete_rows(c.key, {"DELETE FROM conn_sender WHERE connection_key = $1",
                               "DELETE FROM conn_mess_number WHERE connection_key = $1",
                               "DELETE FROM conn_messages WHERE connection_key = $1",
                               "DELETE FROM lnr_handover WHERE connection_key = $1",
                               "DELETE FROM lnr_refused WHERE connection_key = $1"});
  });
}

Status PostgresStore::delete_topic_key(const std::string& topic) {
  return with_db(false, [&] { return Query(*this, "DELETE FROM topic_key WHERE topic = $1").bind(topic).run(); });
}

std::string PostgresStore::record_name(StoreRecord what, const std::string& a, const std::string& b,
                                       const std::string& c) const {
  switch (what) {
    case StoreRecord::topic_addresses: return row("topic_addr", "topic", a);
    case StoreRecord::topic_key: return row("topic_key", "topic", a);
    case StoreRecord::channel_name: return row("conn_key_map", "composite", composite(a, b, c));
    case StoreRecord::channel_sender: return row("conn_sender", "connection_key", a);
    case StoreRecord::channel_ack: return row("conn_mess_number", "connection_key", a);
    case StoreRecord::channel_queue: return row("conn_messages", "connection_key", a);
    case StoreRecord::sender_listeners: return row("sender_listener", "sender_key", sender_key(a, b));
    case StoreRecord::sender_listener_names: return row("sender_listener", "sender_key", sender_key(a, b)) + ".client_name";
  }
  return {};
}

}  // namespace liner
