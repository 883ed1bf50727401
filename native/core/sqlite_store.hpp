// Store on one SQLite file, shared with liner_broker 1.3.1 peers: its tables are made by the same
// CREATE statements as the crate's src/store/sqlite.rs, so a Rust peer and a liner peer can use
// one file (compat spec §2; the Redis layout they mirror is in redis_store.hpp):
//   seq(id = 1, v)                            counter for topic and connection keys
//   topic_addr(topic, addr, client_name)      the directory: who listens where, by unique name
//   topic_key(topic, k)
//   conn_key_map(composite, connection_key)   composite "U:S:L": sender U with source topic S ->
//                                             listener L
//   conn_sender(connection_key, sender_topic)
//   conn_mess_number(connection_key, v)       last number_mess the listener delivered (the ack)
//   conn_messages(id, connection_key, payload)  the offline queue: whole frames, oldest = lowest id
//   sender_listener(sender_key, addr, listener_topic, client_name)
//                                             sender_key "U:S"; client_name is liner's column (the
//                                             listener's unique name, '' where a 1.3.1 peer wrote
//                                             the row), added by ALTER TABLE to a file 1.3.1 made
// liner-only tables, which liner_broker neither reads nor writes:
//   lnr_lease(topic, addr, expires_ms)        when (ms, this machine's wall clock) the entry lapses
//                                             unless its running peer renews it
//   lnr_unsubscribed(topic, addr)             peers that left the topic by unsubscribing, until a
//                                             peer registers that address for it again
//   lnr_handover(id, connection_key, first, last)  number ranges of the queued frames sent with
//                                             send_to; deleted with the queue's last frame
//   lnr_refused(id, connection_key, number, reason)  the newest 100 refusals of each channel
//   lnr_directory_event(id, at_ms, kind, topic, addr, connection_key, number, reason)
//                                             the directory change feed (Redis: PUBLISH), kept 60 s
// Message numbers (u64) are INTEGER up to INT64_MAX and decimal text in a BLOB above it: an
// INTEGER column would turn such text into a lossy REAL. Anything else there is unreadable.
//
// What the operations keep true, so that a timeout, a retry or another process shifts or drops
// nothing:
// - A key is allocated in one BEGIN IMMEDIATE transaction: its row is looked up and, only if
//   absent, the counter raised and the row written, so processes that race agree on one key (and
//   none hits liner_broker's primary-key error). The counter is raised, never lowered.
// - A directory change and its event are written in one transaction: a reader of the feed sees
//   both or neither. Events get ascending ids in commit order (SQLite has one writer at a time).
// - Leases use one machine's clock: every user of a WAL file is on one host (WAL needs shared
//   memory). An entry without a lease (a liner_broker peer) never lapses. An unsubscribe is
//   marked in the transaction that announces it.
// - The offline queue grows at its tail only: a frame's place (Store::read_messages_after) is
//   its row's id, which AUTOINCREMENT never hands out again. Its head goes through a place
//   (drop_messages_through); other frames go only by their exact bytes. Hand-over marks are written in the transaction of their frames and go with the last one.
//
// The class, by concept:
//   sqlite_store.cpp            opening (open_sqlite_store, the schema), statements and
//                               transactions, health, the directory change feed
//   sqlite_store_directory.cpp  topics' addresses, unsubscribe marks, leases, putting back a
//                               running peer's registration, liner_broker's seeding
//   sqlite_store_channels.cpp   keys, a channel's metadata and ack, the listeners a sender
//                               remembers, the offline queue, hand-over marks and refusals
//   sqlite_store_inspect.cpp    reads of the whole store for tools, and record names
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/store.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace liner {

// One row of liner_broker's receivers_json (its ReceiverSeedEntry): a peer's topic, address and
// unique name, written to the directory before the client starts.
struct SeedReceiver {
  std::string topic;
  std::string addr;
  std::string client_name;
};

class SqliteStore final : public Store {
 public:
  // Opens nothing yet: the first call does (so does ping()).
  explicit SqliteStore(std::string path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // sqlite_store.cpp
  void on_health(HealthFn fn) override;
  Status ping() override;
  Status wait_directory_events(int timeout_ms, std::vector<DirectoryEvent>* events) override;

  // sqlite_store_directory.cpp
  Status register_address(const std::string& topic, const std::string& addr, const std::string& unique_name,
                          DirectoryEvent::Kind why) override;
  Status unregister_address(const std::string& topic, const std::string& addr, DirectoryEvent::Kind why) override;
  Status unsubscribed_from_topic(const std::string& topic, std::vector<std::string>* addrs) override;
  Status addresses_of_topic(const std::string& topic, std::vector<TopicAddress>* out) override;
  Status delete_topic_addresses(const std::string& topic) override;
  Status renew_registration(const Registration& r, bool* complete) override;
  Status sweep_lapsed(const std::string& topic, std::vector<TopicAddress>* out) override;
  Status restore_registration(const Registration& r, size_t* restored) override;
  // liner_broker's seed_receivers_sqlite (seed_sqlite_receivers below).
  Status seed_receivers(const std::string& unique_name, const std::string& source_topic,
                        const std::vector<SeedReceiver>& entries);

  // sqlite_store_channels.cpp
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

  // sqlite_store_inspect.cpp
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
  // One run of a cached statement: bind in order, step, read columns. Reset when it goes out of
  // scope, so the statement is ready for the next run.
  class Query {
   public:
    Query(SqliteStore& store, const char* sql);
    ~Query();
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;
    Query& bind(const std::string& text);  // TEXT, copied
    // BLOB, not copied: the frames are the caller's and outlive the query.
    Query& bind_blob(const std::string& bytes);
    Query& bind(int64_t v);
    Query& bind_u64(uint64_t v);  // a message number, as the layout above says
    bool step();                  // a row is there; false when done or failed (status())
    Status run();                 // steps to the end
    const Status& status() const { return status_; }
    bool i32(int col, int32_t* out) const;  // an INTEGER that fits
    bool u64(int col, uint64_t* out) const;
    bool integer(int col) const;  // an INTEGER is there
    int64_t i64(int col) const;
    std::string bytes(int col) const;  // TEXT or BLOB, NUL bytes included

   private:
    SqliteStore& store_;
    sqlite3_stmt* stmt_ = nullptr;
    int next_ = 1;  // the next parameter to bind
    Status status_;
  };

  // What with_db wraps the operation in. `write` takes the write lock at once (BEGIN IMMEDIATE):
  // a read-modify-write that upgraded a read lock could meet another writer and fail with
  // SQLITE_BUSY at once, without waiting for the busy timeout.
  enum class Lock { none, read, write };

  // ---- sqlite_store.cpp ---------------------------------------------------------------------------
  // Opens the file if it is not open (and makes the schema), runs `body` in a transaction of
  // `lock`, commits or rolls back, and tells on_health when the file answers again.
  Status with_db(Lock lock, const std::function<Status()>& body);
  Status open();
  Status create_schema();
  void close();
  // A failed SQLite call: Err::store, "sqlite <path>: <why>"; the file is down if it no longer
  // answers (busy past the timeout, I/O, full, read-only, not a database...).
  Status fail(int rc);
  Status corrupt(const std::string& record) const;
  void set_health(bool up, const std::string& why);
  sqlite3_stmt* statement(const char* sql, Status* s);
  int64_t changes() const;  // rows the last statement changed
  static int64_t now_ms();  // the store's clock (the layout above): this machine's wall clock
  // Adds a change to the feed, in the caller's transaction; trims it now and then.
  Status announce(DirectoryEvent::Kind kind, const std::string& topic, const std::string& addr, int32_t ck = 0,
                  uint64_t number = 0, const std::string& reason = {});
  Status read_events(std::vector<DirectoryEvent>* events);
  // The key counter: *found false when the row is gone, *readable false when v is no integer.
  Status read_counter(int64_t* v, bool* found, bool* readable);
  Status write_counter(int64_t v);
  // Every row's column 0, as bytes.
  static Status strings(Query& q, std::vector<std::string>* out);
  static std::string sender_key(const std::string& u, const std::string& s) { return u + ":" + s; }
  static std::string composite(const std::string& u, const std::string& s, const std::string& l) {
    return u + ":" + s + ":" + l;
  }
  // Bounds of the text keys that start with `prefix`, whose last character is ':' (the upper
  // bound has ';' there): a range the primary key's index answers, exact for any bytes.
  static std::string prefix_end(const std::string& prefix);

  // ---- sqlite_store_directory.cpp -----------------------------------------------------------------
  Status read_directory(const std::string& topic, std::vector<TopicAddress>* out);
  // Registers and announces, in the caller's transaction (register_address, restore_registration).
  Status put_address(const std::string& topic, const std::string& addr, const std::string& unique_name,
                     DirectoryEvent::Kind why);
  // Whether `addr` is in `topic`'s directory under `unique_name`.
  Status is_ours(const std::string& topic, const std::string& addr, const std::string& unique_name, bool* ours);
  Status lapsed_of(const std::string& topic, int64_t now, std::vector<std::string>* addrs);

  // ---- sqlite_store_channels.cpp ------------------------------------------------------------------
  // A key row of `table` (topic_key or conn_key_map): looked up; if absent and `allocate`, taken
  // from the counter and written in one write transaction.
  struct KeyTable;
  Status key_of(const KeyTable& table, const std::string& name, bool allocate, int32_t* value, bool* found);
  Status read_sender_topic(int32_t ck, std::string* sender_topic, bool* found);
  Status read_ack_row(int32_t ck, AckCounter* out);
  Status count_queue(int32_t ck, uint64_t* length);
  Status read_frames(int32_t ck, uint64_t after, uint64_t count, std::vector<QueuedFrame>* out);
  // *empty (optional): whether the queue holds nothing.
  Status drop_marks_if_empty(int32_t ck, bool* empty = nullptr);
  // Runs each of `deletes` ("DELETE FROM <table> WHERE connection_key = ?1") for `ck`.
  Status delete_rows(int32_t ck, std::initializer_list<const char*> deletes);

  // ---- sqlite_store_inspect.cpp -------------------------------------------------------------------
  // The channel names "U:S:L" of conn_key_map of one sender ("" for all) that split into three
  // parts; `keyed`: only those whose key is readable (in ChannelName::key).
  Status channel_names(const std::string& sender_unique, bool keyed, std::vector<ChannelName>* out);

  std::string path_;
  sqlite3* db_ = nullptr;
  // Prepared once per connection (SQLITE_PREPARE_PERSISTENT), by the address of their SQL text:
  // every statement is a literal.
  std::unordered_map<const char*, sqlite3_stmt*> statements_;
  HealthFn on_health_;
  enum class Health { unknown, up, down } health_ = Health::unknown;
  bool opening_ = false;  // open() is retrying: it tells an outage once it gives up
  int last_rc_ = 0;       // the result code of the last failure (fail())
  bool watching_ = false;  // the feed: last_event_ is set
  int64_t last_event_ = 0;
};

// The registry's opener for "sqlite:///abs/path.db", "sqlite:relative.db" and "sqlite:/abs.db".
// Does no I/O: the file is opened by the store's first call.
Status open_sqlite_store(const std::string& url, std::unique_ptr<Store>* out);

// What liner_broker 1.3.1's seed_receivers_sqlite does, for a client `unique_name` with source
// topic `source_topic`, in one transaction: each entry's directory row, topic key 1 for its topic
// and for `source_topic`, and connection key 1 (with its sender topic) for each entry of another
// topic; then the counter is raised to the connection keys in use. `localhost` is the client's
// address, which 1.3.1 takes and does not use here. No entries: nothing. Err::invalid_arg when
// `store` is not a SqliteStore.
Status seed_sqlite_receivers(Store& store, const std::string& unique_name, const std::string& source_topic,
                             const std::string& localhost, const std::vector<SeedReceiver>& entries);

// The URL of the SQLite store in the file `path` (liner_broker's sqlite_path: absolute or
// relative to the working directory), for open_store.
std::string sqlite_store_url(const std::string& path);

}  // namespace liner
