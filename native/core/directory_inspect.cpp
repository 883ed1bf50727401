#include "core/directory_inspect.hpp"

#include <algorithm>

#include "core/frame.hpp"

namespace liner {
namespace {

Status read_topic_views(Store& store, const std::vector<std::string>& topics, bool skip_unknown,
                        std::vector<TopicView>* out) {
  std::vector<TopicState> states;
  Status s = store.read_topics(topics, &states);
  if (!s) return s;
  out->clear();
  for (size_t i = 0; i < topics.size(); ++i) {
    TopicState& t = states[i];
    if (skip_unknown && !t.has_key && t.addresses.empty()) continue;
    std::sort(t.addresses.begin(), t.addresses.end(),
              [](const TopicAddress& a, const TopicAddress& b) { return a.addr < b.addr; });
    out->push_back({topics[i], t.has_key, t.key, std::move(t.addresses)});
  }
  return s;
}

}  // namespace

Status inspect_topics(Store& store, std::vector<TopicView>* out) {
  std::vector<std::string> topics;
  Status s = store.list_topics(&topics);
  return s ? read_topic_views(store, topics, false, out) : s;
}

Status inspect_topic(Store& store, const std::string& only, std::vector<TopicView>* out) {
  return read_topic_views(store, {only}, true, out);
}

Status inspect_channels(Store& store, const std::string& sender_unique, std::vector<ChannelView>* out) {
  std::vector<ChannelName> names;
  Status s = store.list_channels(sender_unique, &names);
  if (!s) return s;
  std::sort(names.begin(), names.end(), [](const ChannelName& a, const ChannelName& b) { return a.key < b.key; });
  std::vector<int32_t> keys;
  for (const auto& n : names) keys.push_back(n.key);
  std::vector<ChannelState> states;
  s = store.read_channels(keys, true, &states);
  if (!s) return s;
  out->clear();
  for (size_t i = 0; i < names.size(); ++i) {
    ChannelView v{std::move(names[i]), std::move(states[i])};
    FrameHeader header;
    const uint8_t* data = nullptr;
    std::string error;
    // Not a frame (a hand edit): nothing to say about where it goes.
    if (!v.state.head.empty() && decode_stored_frame(v.state.head, &header, &data, &error)) {
      v.has_queued_topic_key = true;
      v.queued_topic_key = header.topic_key;
    }
    v.state.head.clear();
    out->push_back(std::move(v));
  }
  return s;
}

Status unnamed_queues(Store& store, const std::set<int32_t>& known,
                      std::vector<std::pair<int32_t, uint64_t>>* out) {
  std::vector<int32_t> queued, keys;
  Status s = store.queued_channels(&queued);
  if (!s) return s;
  for (int32_t ck : queued)
    if (!known.count(ck)) keys.push_back(ck);
  std::vector<ChannelState> states;
  s = store.read_channels(keys, false, &states);
  if (!s) return s;
  out->clear();
  for (size_t i = 0; i < keys.size(); ++i)
    if (states[i].queue_length > 0) out->emplace_back(keys[i], states[i].queue_length);
  return s;
}

Status stored_message_count(Store& store, const std::string& sender_unique, const std::string& sender_topic,
                            uint64_t* count) {
  std::vector<std::pair<std::string, int32_t>> channels;
  Status s = store.connection_keys_of_sender(sender_unique, sender_topic, &channels);
  if (!s) return s;
  std::vector<int32_t> keys;
  for (const auto& c : channels) keys.push_back(c.second);
  std::vector<ChannelState> states;
  s = store.read_channels(keys, false, &states);
  if (!s) return s;
  *count = 0;
  for (const auto& st : states) *count += st.queue_length;
  return s;
}

Status forget_peer(Store& store, const std::string& unique_name, const std::string& topic) {
  std::vector<std::pair<std::string, int32_t>> channels;
  Status s = store.connection_keys_of_sender(unique_name, topic, &channels);
  for (size_t i = 0; s && i < channels.size(); ++i)
    s = store.forget_channel({unique_name, topic, channels[i].first, channels[i].second});
  if (s) s = store.delete_listeners_of_sender(unique_name, topic);
  std::vector<TopicAddress> served;
  if (s) s = store.addresses_of_topic(topic, &served);
  if (s && served.empty()) s = store.delete_topic_key(topic);
  return s;
}

}  // namespace liner
