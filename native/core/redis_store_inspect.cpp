// RedisStore, reads for tools (redis_store.hpp; directory_inspect.hpp uses them): the whole
// store found by SCAN, in a few pipelined round trips, and the key names shown to people.
#include <algorithm>
#include <set>

#include "core/redis_store.hpp"

namespace liner {

Status RedisStore::list_topics(std::vector<std::string>* topics) {
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

Status RedisStore::read_topics(const std::vector<std::string>& topics, std::vector<TopicState>* out) {
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

Status RedisStore::list_channels(const std::string& sender_unique, std::vector<ChannelName>* out) {
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

Status RedisStore::read_channels(const std::vector<int32_t>& keys, bool with_head, std::vector<ChannelState>* out) {
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

Status RedisStore::source_topics_of_sender(const std::string& u, std::vector<std::string>* out) {
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

Status RedisStore::queued_channels(std::vector<int32_t>* keys) {
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

Status RedisStore::forget_channel(const ChannelName& c) {
  const int32_t ck = c.key;
  // One key per command (Redis Cluster). The name goes last: a crash part-way leaves the channel
  // findable by name, so forgetting it again finishes the job.
  for (const char* what : {"messages", "handover", "refused", "mess_number", "sender"}) {
    Status s = conn_.command({"DEL", conn_key(ck, what)});
    if (!s) return s;
  }
  return conn_.command({"DEL", connection_name_key(c.sender_unique, c.sender_topic, c.listener_unique)});
}

Status RedisStore::delete_topic_key(const std::string& topic) { return conn_.command({"DEL", topic_key_key(topic)}); }

std::string RedisStore::record_name(StoreRecord what, const std::string& a, const std::string& b,
                                    const std::string& c) const {
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

Status RedisStore::channel_names(const std::string& sender_unique, std::vector<ChannelName>* out) {
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

}  // namespace liner
