// Reading and purging the directory for tools (`liner topics`, `inspect`, `purge`, and the
// clean-up of the CLI's one-off peers), over any Store: what topics exist and who serves them,
// which channels there are with their acknowledgement counters and offline queues, and the
// removal of everything a peer that never comes back left behind. Peers never call it.
//
// Every call is a few store round trips whatever the store's size (Store's tool reads), and
// reads only: nothing is allocated or created, except where a name says it deletes.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/store.hpp"

namespace liner {

// A topic as the store knows it.
struct TopicView {
  std::string topic;
  bool has_key = false;  // a topic key was allocated (the topic was used)
  int32_t key = 0;
  std::vector<TopicAddress> addresses;  // who serves it now, sorted by address
};

// One sender -> listener channel.
struct ChannelView {
  ChannelName name;
  ChannelState state;  // without the head frame
  // The topic key the oldest queued frame was sent to, when the queue holds a frame.
  bool has_queued_topic_key = false;
  int32_t queued_topic_key = 0;
};

// Every topic with a directory or a key, sorted by name; with `only`, that topic if the store
// has either.
Status inspect_topics(Store& store, std::vector<TopicView>* out);
Status inspect_topic(Store& store, const std::string& only, std::vector<TopicView>* out);

// Every channel (of one sender: `sender_unique`, "" for all), sorted by connection key.
Status inspect_channels(Store& store, const std::string& sender_unique, std::vector<ChannelView>* out);

// Offline queues that no channel of `known` accounts for (their name is gone, or was written
// with names the store cannot split back), with their lengths; empty ones left out.
Status unnamed_queues(Store& store, const std::set<int32_t>& known,
                      std::vector<std::pair<int32_t, uint64_t>>* out);

// Messages waiting in the offline queues of sender `sender_unique` with source topic `sender_topic`.
Status stored_message_count(Store& store, const std::string& sender_unique, const std::string& sender_topic,
                            uint64_t* count);

// Deletes everything a stopped peer whose name is never used again left behind: its channels
// (names, sender topics, acks, queues), its sender->listener maps, and its topic's key when
// nobody serves that topic. Only for one-off names (the CLI's own peers).
Status forget_peer(Store& store, const std::string& unique_name, const std::string& topic);

}  // namespace liner
