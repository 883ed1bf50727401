// The store: phone book (topic -> addresses), key allocator, offline queue and
// acknowledgement ledger. The sender and listener only see this interface; Redis is one
// implementation (redis_store.hpp). Each thread of a client owns its own Store instance.
// Names and encodings follow liner_broker 1.3.1 (compat spec §2); see redis_store.hpp.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.hpp"

namespace liner {

// A listener a sender has sent to (lnr_sender:{U}:{S}:listener): where it was, the topic it was
// sent to there, and its unique name when known (liner writes it; liner_broker 1.3.1 does not).
struct RememberedListener {
  std::string addr;
  std::string topic;
  std::string unique_name;
};

// Numbers of frames as inclusive ranges, ascending: in a channel's offline queue, the frames
// sent with send_to, which another replica of their topic may take when their peer leaves it
// (handover.hpp). A send_all copy is never among them.
using NumberRanges = std::vector<std::pair<uint64_t, uint64_t>>;

// A frame of an offline queue, and its place there (Store::read_messages_after).
struct QueuedFrame {
  uint64_t place = 0;
  std::string frame;
};

// One row of a topic's directory: who listens where.
struct TopicAddress {
  std::string addr;
  std::string unique_name;

  bool operator==(const TopicAddress& o) const { return addr == o.addr && unique_name == o.unique_name; }
  bool operator!=(const TopicAddress& o) const { return !(*this == o); }
};

// What a read of a channel's ack counter ("lnr_connection:{ck}:mess_number") found.
struct AckCounter {
  uint64_t number = 0;      // 0 when absent or unreadable
  bool existed = false;     // the key was there (whatever it held)
  // It held something other than a decimal u64 (a bug, or a hand edit): read as 0, so the
  // channel resends what it still holds (duplicates, never loss) and the listener's next ack
  // writes a number over it. The caller reports it.
  bool unreadable = false;
};

// A directory change, as announced by liner peers (1.3.1 peers announce nothing).
struct DirectoryEvent {
  // join: registered as a source topic; subscribe: as a subscription; leave: a client went
  // away; unsubscribe: a subscription ended; refused: a listener refused a message of channel
  // `connection_key` for good (`number`, `reason`): the sender is told.
  enum Kind { join, subscribe, leave, unsubscribe, refused } kind = join;
  std::string topic;
  std::string addr;
  int32_t connection_key = 0;
  uint64_t number = 0;
  std::string reason;
};

// What a running peer keeps in the store, so that it can be put back when the store lost it
// (a Redis restarted without persistence, keys deleted by hand): its directory entries, the keys
// it uses, and the channels it sends on. Client::keep_registered builds it.
struct Registration {
  struct Entry {
    std::string topic;
    int32_t topic_key = 0;
    DirectoryEvent::Kind why = DirectoryEvent::join;  // join: its source topic; subscribe
  };
  struct Channel {
    std::string listener_unique;
    int32_t key = 0;
    std::string listener_addr;
    std::string listener_topic;
  };
  std::string addr;         // the published address
  std::string unique_name;
  std::string source_topic;
  std::vector<Entry> entries;
  std::vector<std::pair<std::string, int32_t>> sent_topic_keys;  // topics it sends to
  std::vector<Channel> channels;                                  // as a sender
  int32_t highest_key = 0;  // the largest key above: the key counter must not hand it out again
  int lease_ms = 0;         // > 0: how long each renewal keeps this peer's entries alive
};

// ---- What tools read (directory_inspect.hpp: `liner topics`, `inspect`, `purge`) ----------------

// A channel as the store names it: sender `sender_unique` with source topic `sender_topic` talks
// to listener `listener_unique` on connection key `key`.
struct ChannelName {
  std::string sender_unique;
  std::string sender_topic;
  std::string listener_unique;
  int32_t key = 0;
};

// What the store holds for one channel now.
struct ChannelState {
  bool has_sender_topic = false;
  std::string sender_topic;  // what its listener reports as `from`
  AckCounter ack;
  uint64_t queue_length = 0;
  std::string head;  // the oldest frame of the offline queue, when asked for and there is one
};

// What the store holds for one topic now.
struct TopicState {
  bool has_key = false;
  int32_t key = 0;
  std::vector<TopicAddress> addresses;
};

// The records a store keeps, for record_name(): what a tool shows people (Redis: key names).
enum class StoreRecord {
  topic_addresses,        // (topic)
  topic_key,              // (topic)
  channel_name,           // (sender unique, sender topic, listener unique)
  channel_sender,         // (connection key)
  channel_ack,            // (connection key)
  channel_queue,          // (connection key)
  sender_listeners,       // (sender unique, sender topic)
  sender_listener_names,  // (sender unique, sender topic)
};

class Store {
 public:
  virtual ~Store() = default;

  // Checks that the store answers now (creation-time check).
  virtual Status ping() = 0;

  // Directory.
  virtual Status register_address(const std::string& topic, const std::string& addr,
                                  const std::string& unique_name, DirectoryEvent::Kind why) = 0;
  virtual Status unregister_address(const std::string& topic, const std::string& addr,
                                    DirectoryEvent::Kind why) = 0;
  virtual Status addresses_of_topic(const std::string& topic, std::vector<TopicAddress>* out) = 0;
  // Addresses whose peer left `topic` by unsubscribing (unregister_address with `unsubscribe`),
  // until a peer registers there again: senders stop keeping messages for them.
  virtual Status unsubscribed_from_topic(const std::string& topic, std::vector<std::string>* addrs) = 0;
  virtual Status delete_topic_addresses(const std::string& topic) = 0;
  // Renews the lease of every entry of `r` (r.lease_ms from the store's clock), and says in
  // *complete whether every entry is in the directory under r.unique_name and the key counter
  // has reached r.highest_key. One round trip.
  virtual Status renew_registration(const Registration& r, bool* complete) = 0;
  // Removes from `topic`'s directory the peers whose lease lapsed (a peer that crashed, or lost
  // Redis for longer than its lease), announcing each as a leave; entries without a lease
  // (liner_broker peers) are never removed so. *out: the directory afterwards. One round trip.
  virtual Status sweep_lapsed(const std::string& topic, std::vector<TopicAddress>* out) = 0;
  // Puts back what the store lost of `r`, overwriting nothing: entries missing from the
  // directory are registered (and announced) again, keys are set where absent, and the key
  // counter is raised to r.highest_key. *restored (optional): entries registered again.
  virtual Status restore_registration(const Registration& r, size_t* restored) = 0;

  // Keys, allocated once from the global counter, race-free.
  virtual Status topic_key(const std::string& topic, int32_t* key) = 0;
  virtual Status connection_key(const std::string& sender_unique, const std::string& sender_topic,
                                const std::string& listener_unique, bool allocate, int32_t* ck,
                                bool* found) = 0;

  // Channel metadata.
  virtual Status set_sender_topic(int32_t ck, const std::string& sender_topic) = 0;
  virtual Status sender_topic(int32_t ck, std::string* sender_topic, bool* found) = 0;
  // Reads the ack counter. `create`: writes "0" when absent (the sender's side, as liner_broker
  // does); a listener reads without creating, so frames with made-up keys leave no key behind.
  virtual Status read_ack(int32_t ck, bool create, AckCounter* out) = 0;
  virtual Status set_last_mess_number(int32_t ck, uint64_t number) = 0;
  virtual Status save_listener_for_sender(const std::string& sender_unique,
                                          const std::string& sender_topic, const std::string& addr,
                                          const std::string& listener_topic,
                                          const std::string& listener_unique) = 0;
  virtual Status listeners_of_sender(const std::string& sender_unique, const std::string& sender_topic,
                                     std::vector<RememberedListener>* out) = 0;
  // Every channel this sender ever opened, as (listener unique name, connection key), found by
  // key name, so also those whose listener left the directory.
  virtual Status connection_keys_of_sender(const std::string& sender_unique,
                                           const std::string& sender_topic,
                                           std::vector<std::pair<std::string, int32_t>>* out) = 0;
  virtual Status delete_listeners_of_sender(const std::string& sender_unique,
                                            const std::string& sender_topic) = 0;

  // Offline queue of a channel: whole frames, oldest first. Each stored frame has a place:
  // places ascend along the queue and stay the frame's while it is there, so a reader resumes
  // after the last place it read and removes through a place, whatever was removed meanwhile
  // (SQL stores: the row's id; Redis: the frame's number, redis_store.hpp).
  // `handover`: which of `frames` may be handed to another replica (NumberRanges), kept beside
  // the queue ("lnr_connection:{ck}:handover", a key liner_broker neither reads nor writes).
  virtual Status push_messages(int32_t ck, const std::vector<const std::string*>& frames,
                               const NumberRanges& handover) = 0;
  // The ranges push_messages recorded for `ck` (none when the key is absent).
  virtual Status handover_marks(int32_t ck, NumberRanges* out) = 0;
  // Removes each of `frames` (compared byte for byte: numbers make frames unique) from the
  // offline queue wherever it is, and the marks once the queue is empty. *removed (optional).
  virtual Status remove_messages(int32_t ck, const std::vector<std::string>& frames, uint64_t* removed) = 0;
  virtual Status queue_length(int32_t ck, uint64_t* length) = 0;
  // Up to `count` frames placed after `after` (0: from the head), oldest first.
  virtual Status read_messages_after(int32_t ck, uint64_t after, uint64_t count, std::vector<QueuedFrame>* out) = 0;
  // Removes the frames placed at or before `through`, and the marks once the queue is empty.
  // The caller passes the place of a frame it read whose number, and so every number before
  // it, is acknowledged: new frames only ever come after it, so a retry, a repeat or a reply
  // that came too late removes nothing else. *empty (optional): nothing is left in the queue.
  virtual Status drop_messages_through(int32_t ck, uint64_t through, bool* empty) = 0;
  virtual Status last_stored_message(int32_t ck, std::string* frame, bool* found) = 0;
  virtual Status clear_channel(int32_t ck) = 0;  // offline queue and ack counter
  // A listener could not take message `number` of channel `ck` and never will (too big for
  // it): recorded in the channel's last refusals ("lnr_connection:{ck}:refused", the newest
  // 100) and announced, so that its sender can tell its owner.
  virtual Status report_refused(int32_t ck, uint64_t number, const std::string& reason) = 0;

  // For tools, not for peers: reads of the whole store, in a few round trips whatever their
  // size, found without blocking the store for its other users (Redis: SCAN, never KEYS). A
  // store that does not offer them answers Err::store. Names whose parts the store cannot tell
  // apart (liner_broker 1.3.1 writes names with ':' unescaped) are left out.
  // Every topic with a directory or a key, sorted, each once.
  virtual Status list_topics(std::vector<std::string>* /*topics*/) { return for_tools_only(); }
  // The key (if any) and directory of each of `topics`, in their order; allocates nothing.
  virtual Status read_topics(const std::vector<std::string>& /*topics*/, std::vector<TopicState>* /*out*/) {
    return for_tools_only();
  }
  // Every channel whose name record holds a key, of one sender (`sender_unique`, "" for all).
  virtual Status list_channels(const std::string& /*sender_unique*/, std::vector<ChannelName>* /*out*/) {
    return for_tools_only();
  }
  // The state of each of `keys`, in their order; `with_head`: also the oldest queued frame.
  virtual Status read_channels(const std::vector<int32_t>& /*keys*/, bool /*with_head*/, std::vector<ChannelState>* /*out*/) {
    return for_tools_only();
  }
  // The source topics under which `sender_unique` has channels or a sender->listener map, sorted.
  virtual Status source_topics_of_sender(const std::string& /*sender_unique*/, std::vector<std::string>* /*out*/) {
    return for_tools_only();
  }
  // The connection keys that have an offline queue, sorted.
  virtual Status queued_channels(std::vector<int32_t>* /*keys*/) { return for_tools_only(); }
  // Deletes every record of a channel, its name included: for a peer that never comes back.
  virtual Status forget_channel(const ChannelName& /*channel*/) { return for_tools_only(); }
  virtual Status delete_topic_key(const std::string& /*topic*/) { return for_tools_only(); }
  // What `what` is called in this store, for people ("*" as a part shows a pattern); no I/O.
  virtual std::string record_name(StoreRecord /*what*/, const std::string& /*a*/, const std::string& /*b*/ = {},
                                  const std::string& /*c*/ = {}) const {
    return {};
  }

  // Directory change feed, for a Store instance dedicated to it.
  virtual Status wait_directory_events(int timeout_ms, std::vector<DirectoryEvent>* events) = 0;

  // Tells `fn`, on the thread using this Store, when the store stops answering (`up` false,
  // `why` says how) and when it answers again: the client reports an outage once, not once per
  // failed call. A store that cannot tell never calls it.
  using HealthFn = std::function<void(bool up, const std::string& why)>;
  virtual void on_health(HealthFn fn) { (void)fn; }

 private:
  static Status for_tools_only() { return Status(Err::store, "this store cannot be inspected"); }
};

// Opens a store from a URL, by its scheme (store_registry.cpp lists them). Does not connect yet.
// An unknown scheme is Err::invalid_arg, naming the schemes there are.
Status open_store(const std::string& url, std::unique_ptr<Store>* out);
// What open_store would say of `url`'s form, without keeping a store (bindings check options
// when a client is made, before anything connects).
Status check_store_url(const std::string& url);

}  // namespace liner
