// Store on Redis, key-compatible with liner_broker 1.3.1 (compat spec §2.2):
//   lnr_unique_key                      counter for topic and connection keys
//   lnr_topic:{topic}:addr              hash  addr -> unique_name
//   lnr_topic:{topic}:key               decimal i32
//   lnr_connection:{U}:{S}:{L}:key      decimal i32 (sender U with source topic S -> listener L)
//   lnr_connection:{ck}:sender          the sender's source topic
//   lnr_connection:{ck}:mess_number     last number_mess the listener delivered (the ack)
//   lnr_connection:{ck}:messages        list of whole frames (the offline queue)
//   lnr_connection:{ck}:refused         liner only: "number reason" of the newest 100 messages
//                                       its listener refused for good (too big for it)
//   lnr_connection:{ck}:handover        liner only: list of "first-last" number ranges of the
//                                       offline queue's frames sent with send_to (another
//                                       replica may take them when the peer leaves); deleted
//                                       with the queue's last frame
//   lnr_sender:{U}:{S}:listener         hash  listener addr -> listener topic
//   lnr_sender:{U}:{S}:listener_name    liner only: hash  listener addr -> listener unique name
//                                       (a restarted sender finds the channel of a listener
//                                       that is offline: compat spec §6.1 rule 3)
//   lnr_topic:{topic}:unsubscribed      liner only: hash  addr -> "1" of peers that left the
//                                       topic by unsubscribing (not by stopping), until a peer
//                                       registers that address for the topic again
//   lnr_topic:{topic}:lease             liner only: hash  addr -> when (ms, Redis's clock) the
//                                       entry lapses unless its running peer renews it
// Directory changes are also PUBLISHed on the channel "lnr_directory:{db}" (not a key), so
// running liner peers learn of them at once.
//
// What the operations keep true, so that a timeout, a late reply or a retry shifts or drops nothing:
// - A topic or connection key is written only where absent (SET NX), so peers that race to create
//   it agree on one value; the counter is raised, never lowered: no key in use is handed out again.
// - A directory entry lapses only when its lease is a time past on Redis's clock (peers' clocks
//   never matter); an entry without a lease (a liner_broker peer) never lapses. An unsubscribe is
//   marked before it is announced.
// - The offline queue grows at its tail only. A frame's place there (Store::read_messages_after)
//   is its number: liner numbers a channel's frames in the order they are queued (a push that
//   failed and is made again may repeat some); an element that is not a frame takes the place
//   of the frame before it. A read goes on where this instance's last read ended if the frame
//   read last is still just before it, else it searches from the head.
// - The head goes through a place (drop_messages_through) in one script: when this instance read
//   the queue from its head, up to the first element it read at that place, and that element
//   is still where it was read, nothing before it left, so the elements before it are those it
//   read there, at or before the place, and the script trims them; otherwise it takes elements
//   from the head one by one while each is placed at or before the place, never one above it,
//   a bounded number per script so that Redis is not held. Other frames go only by their exact
//   bytes. The hand-over marks are written before their frames and go with the queue's last one.
// - Every command (and every script) touches one key, so that each runs on one node of a Redis
//   Cluster (redis_cluster.hpp) with liner_broker's key names, which have no {hash tags}. Where
//   one script used to see two keys, the steps are ordered so that a crash or another writer
//   between two of them loses no message and shifts no number:
//   . the queue is trimmed alone; its marks go afterwards, in three steps (read them, see the
//     queue still empty, trim exactly those if they still head the list): marks pushed since
//     stay, and marks left by a failure match no frame and go when the queue next empties;
//   . a lease is written before its entry is checked, and taken back (only if it is still
//     the one written) when the entry is not ours: stop() removes the entry, then the lease,
//     so no interleaving leaves a lease without an entry;
//   . a sweep takes the lapsed leases in one script, then removes each entry only if it still
//     names the peer it named before the sweep began, and announces only what it removed;
//   . a registration put back is written before it is announced;
//   . several keys are deleted one at a time, the data before the key that names it (queue and
//     marks before the ack, a channel's records before its name), so a crash part-way leaves
//     something a retry finds and finishes, never an ack reset under a queue.
//   Pub/sub messages are not keys: a PUBLISH reaches subscribers on every node.
//
// The class, by concept:
//   redis_store.cpp            opening (open_redis_store), health, the directory change feed, and the
//                              reply parsing the other files share
//   redis_store_directory.cpp  topics' addresses, unsubscribe marks, leases, putting back a
//                              running peer's registration
//   redis_store_channels.cpp   keys, a channel's metadata and ack, the listeners a sender
//                              remembers, the offline queue, hand-over marks and refusals
//   redis_store_inspect.cpp    reads of the whole store for tools, and record names
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/redis_conn.hpp"
#include "core/store.hpp"

namespace liner {

class RedisStore final : public Store {
 public:
  explicit RedisStore(RedisEndpoint ep);

  // redis_store.cpp
  void on_health(HealthFn fn) override;
  Status ping() override;
  Status wait_directory_events(int timeout_ms, std::vector<DirectoryEvent>* events) override;

  // redis_store_directory.cpp
  Status register_address(const std::string& topic, const std::string& addr, const std::string& unique_name,
                          DirectoryEvent::Kind why) override;
  Status unregister_address(const std::string& topic, const std::string& addr, DirectoryEvent::Kind why) override;
  Status unsubscribed_from_topic(const std::string& topic, std::vector<std::string>* addrs) override;
  Status addresses_of_topic(const std::string& topic, std::vector<TopicAddress>* out) override;
  Status delete_topic_addresses(const std::string& topic) override;
  Status renew_registration(const Registration& r, bool* complete) override;
  Status sweep_lapsed(const std::string& topic, std::vector<TopicAddress>* out) override;
  Status restore_registration(const Registration& r, size_t* restored) override;

  // redis_store_channels.cpp
  Status topic_key(const std::string& topic, int32_t* key) override;
  Status connection_key(const std::string& u, const std::string& s, const std::string& l, bool allocate,
                        int32_t* ck, bool* found) override;
  Status set_sender_topic(int32_t ck, const std::string& sender_topic) override;
  Status sender_topic(int32_t ck, std::string* sender_topic, bool* found) override;
  Status read_ack(int32_t ck, bool create, AckCounter* out) override;
  Status set_last_mess_number(int32_t ck, uint64_t number) override;
  Status save_listener_for_sender(const std::string& u, const std::string& s, const std::string& addr,
                                  const std::string& listener_topic, const std::string& listener_unique) override;
  Status listeners_of_sender(const std::string& u, const std::string& s,
                             std::vector<RememberedListener>* out) override;
  Status connection_keys_of_sender(const std::string& u, const std::string& s,
                                   std::vector<std::pair<std::string, int32_t>>* out) override;
  Status delete_listeners_of_sender(const std::string& u, const std::string& s) override;
  Status push_messages(int32_t ck, const std::vector<const std::string*>& frames,
                       const NumberRanges& handover) override;
  Status handover_marks(int32_t ck, NumberRanges* out) override;
  Status remove_messages(int32_t ck, const std::vector<std::string>& frames, uint64_t* removed) override;
  Status queue_length(int32_t ck, uint64_t* length) override;
  Status read_messages_after(int32_t ck, uint64_t after, uint64_t count, std::vector<QueuedFrame>* out) override;
  Status drop_messages_through(int32_t ck, uint64_t through, bool* empty) override;
  Status last_stored_message(int32_t ck, std::string* frame, bool* found) override;
  Status clear_channel(int32_t ck) override;
  Status report_refused(int32_t ck, uint64_t number, const std::string& reason) override;

  // redis_store_inspect.cpp
  Status list_topics(std::vector<std::string>* topics) override;
  Status read_topics(const std::vector<std::string>& topics, std::vector<TopicState>* out) override;
  Status list_channels(const std::string& sender_unique, std::vector<ChannelName>* out) override;
  Status read_channels(const std::vector<int32_t>& keys, bool with_head, std::vector<ChannelState>* out) override;
  Status source_topics_of_sender(const std::string& u, std::vector<std::string>* out) override;
  Status queued_channels(std::vector<int32_t>* keys) override;
  Status forget_channel(const ChannelName& c) override;
  Status delete_topic_key(const std::string& topic) override;
  std::string record_name(StoreRecord what, const std::string& a, const std::string& b,
                          const std::string& c) const override;

 private:
  // ---- Key names (the layout above) ------------------------------------------------------------
  static constexpr char kKeyCounter[] = "lnr_unique_key";
  static constexpr char kSep = '\x1f';  // between the fields of a PUBLISHed directory change

  static std::string topic_addr_key(const std::string& t) { return "lnr_topic:" + t + ":addr"; }
  static std::string topic_key_key(const std::string& t) { return "lnr_topic:" + t + ":key"; }
  // `ck` as text: a number, or "*" in a pattern shown to people (record_name).
  static std::string conn_key(const std::string& ck, const char* what) { return "lnr_connection:" + ck + ":" + what; }
  static std::string conn_key(int32_t ck, const char* what) { return conn_key(std::to_string(ck), what); }
  static std::string topic_unsubscribed_key(const std::string& t) { return "lnr_topic:" + t + ":unsubscribed"; }
  static std::string topic_lease_key(const std::string& t) { return "lnr_topic:" + t + ":lease"; }
  static std::string connection_name_key(const std::string& u, const std::string& s, const std::string& l) {
    return "lnr_connection:" + u + ":" + s + ":" + l + ":key";
  }
  static std::string sender_listener_key(const std::string& u, const std::string& s) {
    return "lnr_sender:" + u + ":" + s + ":listener";
  }
  static std::string sender_listener_name_key(const std::string& u, const std::string& s) {
    return "lnr_sender:" + u + ":" + s + ":listener_name";
  }

  // Owns the strings a list of RedisArgs (views) points at until the pipeline returned; a deque,
  // so that adding one moves none of those already kept.
  class KeptStrings {
   public:
    std::string_view operator()(std::string v) { return kept_.emplace_back(std::move(v)); }

   private:
    std::deque<std::string> kept_;
  };

  // ---- Helpers: in redis_store.cpp unless said --------------------------------------------------
  // Digits only, at most a u64.
  static bool parse_u64(std::string_view text, uint64_t* out);
  static bool parse_u64(const redisReply* r, uint64_t* out);
  // Decimal text of an i32, as liner_broker writes keys.
  static bool parse_i32(std::string_view text, int32_t* out);
  static bool parse_i32(const redisReply* r, int32_t* out);
  // The part of `name` between `prefix` and `suffix`, when it has both.
  static bool between(const std::string& name, const std::string& prefix, const char* suffix, std::string* middle);
  static Status corrupt(const std::string& key);
  static std::string glob_escape(const std::string& text);
  // The payload PUBLISHed for a directory change (wait_directory_events reads it).
  static std::string event(const char* kind, const std::string& topic, const std::string& addr);
  // Every key name matching a glob `pattern`, sorted. SCAN, never KEYS: it does not block Redis
  // for other clients on a big keyspace.
  Status scan(const std::string& pattern, std::vector<std::string>* names);
  // redis_store_directory.cpp: a topic's directory from the reply of HGETALL
  // lnr_topic:{topic}:addr (`key`).
  static Status read_directory(const redisReply* r, const std::string& key, std::vector<TopicAddress>* out);
  // redis_store_channels.cpp: GET; if absent: INCRBY the global counter and SET NX, then GET
  // again, so two peers that race to create the same key agree on one value. A failed GET is an
  // error, never "absent".
  Status get_or_allocate(const std::string& key, bool allocate, int32_t* value, bool* found);
  // redis_store_channels.cpp: deletes the channel's hand-over marks if its queue is empty.
  Status drop_marks_if_empty(int32_t ck);
  // redis_store_inspect.cpp: the channel names "lnr_connection:{U}:{S}:{L}:key" of one sender
  // ("" for all), by name; keys not read.
  Status channel_names(const std::string& sender_unique, std::vector<ChannelName>* out);

  // What this instance read of a channel's queue, in queue order: the places of the elements
  // at [first_index, end()) as they were then, as runs of consecutive places (a
  // queue's frames are numbered one after another, so a long read is one run). Only a guess that
  // reads and drops check: elements leave from anywhere (hand-over) and come at the tail.
  struct ReadView {
    struct Run {
      uint64_t first;  // places first, first + 1, ... (count of them)
      uint64_t count;
    };
    uint64_t first_index = 0;
    std::deque<Run> runs;
    uint64_t end() const;
    uint64_t last() const { return runs.back().first + runs.back().count - 1; }  // runs not empty
    void add(uint64_t place);
    // How many elements from the first up to the first placed at `place` (0: none is).
    uint64_t count_through(uint64_t place) const;
    void drop_front(uint64_t n);
  };
  static constexpr size_t kViewRuns = 4096;  // beyond (repeats, or elements that are not frames): read again
  std::unordered_map<int32_t, ReadView> read_views_;

  std::string channel_;
  RedisConn conn_;
  bool subscribed_ = false;
};

// The registry's opener for every Redis URL form (redis_url.hpp): one server, Sentinel, Cluster.
Status open_redis_store(const std::string& url, std::unique_ptr<Store>* out);

}  // namespace liner
