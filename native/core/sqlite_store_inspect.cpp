// SqliteStore, reads for tools (sqlite_store.hpp; directory_inspect.hpp uses them): the whole
// store in one read transaction each, and the rows' names shown to people.
#include <set>

#include "core/sqlite_store.hpp"

namespace liner {

namespace {

// "<table>[<column>=<value>]": a row as people find it with the sqlite3 shell.
std::string row(const char* table, const char* column, const std::string& value) {
  return std::string(table) + "[" + column + "=" + value + "]";
}

}  // namespace

Status SqliteStore::list_topics(std::vector<std::string>* topics) {
  return with_db(Lock::read, [&] {
    Query q(*this, "SELECT topic FROM topic_addr UNION SELECT topic FROM topic_key ORDER BY 1");
    return strings(q, topics);
  });
}

Status SqliteStore::read_topics(const std::vector<std::string>& topics, std::vector<TopicState>* out) {
  out->clear();
  return with_db(Lock::read, [&] {
    for (const auto& topic : topics) {
      TopicState t;
      Query q(*this, "SELECT k FROM topic_key WHERE topic = ?1");
      q.bind(topic);
      t.has_key = q.step() && q.i32(0, &t.key);
      Status s = q.status();
      if (s) s = read_directory(topic, &t.addresses);
      if (!s) return s;
      out->push_back(std::move(t));
    }
    return Status();
  });
}

Status SqliteStore::list_channels(const std::string& sender_unique, std::vector<ChannelName>* out) {
  out->clear();
  return with_db(Lock::read, [&] { return channel_names(sender_unique, true, out); });
}

Status SqliteStore::channel_names(const std::string& sender_unique, bool keyed, std::vector<ChannelName>* out) {
  // One sender's: the names from "U:" up to "U;", which the primary key's index finds.
  const std::string from = sender_key(sender_unique, "");
  Query q(*this, sender_unique.empty()
                     ? "SELECT composite, connection_key FROM conn_key_map"
                     : "SELECT composite, connection_key FROM conn_key_map WHERE composite >= ?1 AND composite < ?2");
  if (!sender_unique.empty()) q.bind(from).bind(prefix_end(from));
  while (q.step()) {
    const std::string name = q.bytes(0);
    size_t a = name.find(':'), b = a == std::string::npos ? a : name.find(':', a + 1);
    if (b == std::string::npos || name.find(':', b + 1) != std::string::npos) continue;
    ChannelName c{name.substr(0, a), name.substr(a + 1, b - a - 1), name.substr(b + 1)};
    if (c.sender_unique.empty() || c.sender_topic.empty() || c.listener_unique.empty()) continue;
    if (!sender_unique.empty() && c.sender_unique != sender_unique) continue;
    if (!q.i32(1, &c.key) && keyed) continue;
    out->push_back(std::move(c));
  }
  return q.status();
}

Status SqliteStore::read_channels(const std::vector<int32_t>& keys, bool with_head, std::vector<ChannelState>* out) {
  out->clear();
  return with_db(Lock::read, [&] {
    for (int32_t ck : keys) {
      ChannelState state;
      std::vector<QueuedFrame> head;
      Status s = read_sender_topic(ck, &state.sender_topic, &state.has_sender_topic);
      if (s) s = read_ack_row(ck, &state.ack);
      if (s) s = count_queue(ck, &state.queue_length);
      if (s && with_head) s = read_frames(ck, 0, 1, &head);
      if (!s) return s;
      if (!head.empty()) state.head = std::move(head[0].frame);
      out->push_back(std::move(state));
    }
    return Status();
  });
}

Status SqliteStore::source_topics_of_sender(const std::string& u, std::vector<std::string>* out) {
  const std::string prefix = sender_key(u, "");
  return with_db(Lock::read, [&] {
    std::vector<std::string> maps;
    Query q(*this, "SELECT DISTINCT sender_key FROM sender_listener WHERE sender_key >= ?1 AND sender_key < ?2");
    q.bind(prefix).bind(prefix_end(prefix));
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

Status SqliteStore::queued_channels(std::vector<int32_t>* keys) {
  keys->clear();
  return with_db(Lock::none, [&] {
    Query q(*this, "SELECT DISTINCT connection_key FROM conn_messages ORDER BY connection_key");
    int32_t ck = 0;
    while (q.step())
      if (q.i32(0, &ck)) keys->push_back(ck);
    return q.status();
  });
}

Status SqliteStore::forget_channel(const ChannelName& c) {
  return with_db(Lock::write, [&] {
    Status s = Query(*this, "DELETE FROM conn_key_map WHERE composite = ?1")
                   .bind(composite(c.sender_unique, c.sender_topic, c.listener_unique))
                   .run();
    if (!s) return s;
    return delete_rows(c.key, {"DELETE FROM conn_sender WHERE connection_key = ?1",
                               "DELETE FROM conn_mess_number WHERE connection_key = ?1",
                               "DELETE FROM conn_messages WHERE connection_key = ?1",
                               "DELETE FROM lnr_handover WHERE connection_key = ?1",
                               "DELETE FROM lnr_refused WHERE connection_key = ?1"});
  });
}

Status SqliteStore::delete_topic_key(const std::string& topic) {
  return with_db(Lock::none, [&] { return Query(*this, "DELETE FROM topic_key WHERE topic = ?1").bind(topic).run(); });
}

std::string SqliteStore::record_name(StoreRecord what, const std::string& a, const std::string& b,
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
