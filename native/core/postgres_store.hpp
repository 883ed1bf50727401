// Store on a PostgreSQL database, shared with liner_broker 1.3.1 peers: its tables are made by the
// same CREATE statements as the crate's src/store/postgres.rs, so a Rust peer and a liner peer can
// use one database (compat spec §2; sqlite_store.hpp has the same tables in SQLite):
//   seq(id = 1, v INTEGER)                    counter for topic and connection keys
//   topic_addr(topic, addr, client_name)      the directory: who listens where, by unique name
//   topic_key(topic, k)
//   conn_key_map(composite, connection_key)   composite "U:S:L": sender U with source topic S ->
//                                             listener L
//   conn_sender(connection_key, sender_topic)
//   conn_mess_number(connection_key, v BIGINT)  last number_mess the listener delivered (the ack)
//   conn_messages(id BIGSERIAL, connection_key, payload BYTEA)  the offline queue: whole frames,
//                                             oldest = lowest id
//   sender_listener(sender_key, addr, listener_topic, client_name)
//                                             sender_key "U:S"; client_name is liner's column (the
//                                             listener's unique name, '' where a 1.3.1 peer wrote
//                                             the row), added by ALTER TABLE ... IF NOT EXISTS to
//                                             a database 1.3.1 made
// liner-only tables, which liner_broker neither reads nor writes:
//   lnr_lease(topic, addr, expires_at TIMESTAMPTZ)  when (the server's clock) the entry lapses
//                                             unless its running peer renews it
//   lnr_unsubscribed(topic, addr)             peers that left the topic by unsubscribing, until a
//                                             peer registers that address for it again
//   lnr_handover(id, connection_key, first, last)  number ranges of the queued frames sent with
//                                             send_to; deleted with the queue's last frame
//   lnr_refused(id, connection_key, number, reason)  the newest 100 refusals of each channel
// The directory change feed is NOTIFY on channel lnr_directory (kNotifyChannel), no table.
// Message numbers (u64): NUMERIC(20) in liner's tables. conn_mess_number.v is liner_broker's
// BIGINT: a number above INT64_MAX is kept as the BIGINT of the same 64 bits (negative), which
// 1.3.1 cannot hold in any form (it refuses such a number when writing it).
//
// What the operations keep true, so that a timeout, a retry or another process shifts or drops
// nothing:
// - The schema is made under a transaction-scoped advisory lock: processes that open a new
//   database at once do not race on CREATE TABLE IF NOT EXISTS (which can fail on a duplicate
//   catalog row).
// - A key is allocated in one transaction that first locks seq's row (SELECT ... FOR UPDATE, the
//   row liner_broker's UPDATE locks too): the row is looked up again under that lock and, only if
//   still absent, the counter raised and the row written. Processes that race agree on one key
//   and none hits a duplicate-key error. The counter is raised, never lowered.
// - A directory change and its NOTIFY are in one transaction: PostgreSQL delivers the notification
//   at commit only, so a listener never hears of a change it cannot read yet, nor of a rolled-back
//   one. A listener hears what happened after its LISTEN, on a connection of its own.
// - Leases use the server's clock (now()), whatever host a peer runs on. An entry without a lease
//   (a liner_broker peer) never lapses. Renewing reads the entry FOR SHARE, so an unregister
//   racing it waits and then deletes the lease too. An unsubscribe is marked in the transaction
//   that announces it.
// - The offline queue grows at its tail only: a frame's place (Store::read_messages_after) is
//   its row's id. Changes to one channel's queue take its advisory lock (kQueueLock, ck) until
//   they commit, so ids of one queue commit in ascending order (as SQLite's single writer
//   orders them) and a reader never finds a lower one appear behind what it read. Its head goes
//   through a place (drop_messages_through); other frames go only by their exact bytes. Hand-over marks are written in
//   the transaction of their frames and go with the last one.
// - Every blocking call is bounded: connect_timeout (2 s unless the URL sets one), and the
//   server's statement_timeout and lock_timeout (5 s, liner_broker's LOCK_TIMEOUT).
// - Errors name the URL without its password, and never the password.
//
// The class, by concept (the split of the SQLite store, whose logic this mirrors statement by
// statement where SQL allows):
//   postgres_store.cpp            opening (open_postgres_store, the schema), the connection,
//                                 queries and transactions, health, the directory change feed
//   postgres_store_directory.cpp  topics' addresses, unsubscribe marks, leases, putting back a
//                                 running peer's registration
//   postgres_store_channels.cpp   keys, a channel's metadata and ack, the listeners a sender
//                                 remembers, the offline queue, hand-over marks and refusals
//   postgres_store_inspect.cpp    reads of the whole store for tools, and record names
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/libpq_loader.hpp"
#include "core/store.hpp"

namespace liner {

class PostgresStore final : public Store {
 public:
  // Connects to nothing yet: the first call does (so does ping()). `url`: a libpq connection URI.
  explicit PostgresStore(std::string url);
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  // postgres_store.cpp
  void on_health(HealthFn fn) override;
  Status ping() override;
  Status wait_directory_events(int timeout_ms, std::vector<DirectoryEvent>* events) override;

  // postgres_store_directory.cpp
  Status register_address(const std::string& topic, const std::string& addr, const std::string& unique_name,
                          DirectoryEvent::Kind why) override;
  Status unregister_address(const std::string& topic, const std::string& addr, DirectoryEvent::Kind why) override;
  Status unsubscribed_from_topic(const std::string& topic, std::vector<std::string>* addrs) override;
  Status addresses_of_topic(const std::string& topic, std::vector<TopicAddress>* out) override;
  Status delete_topic_addresses(const std::string& topic) override;
  Status renew_registration(const Registration& r, bool* complete) override;
  Status sweep_lapsed(const std::string& topic, std::vector<TopicAddress>* out) override;
  Status restore_registration(const Registration& r, size_t* restored) override;

  // postgres_store_channels.cpp
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

  // postgres_store_inspect.cpp
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

  // `url` as errors show it: without its password (userinfo or ?password=).
  static std::string redacted(const std::string& url);

 private:
  // One statement with parameters ($1, $2...): bind in order, run, read the rows. Parameters
  // are text except bind_bytes's (binary: BYTEA with NUL bytes); `binary` results hand BYTEA
  // columns back as their bytes (so such a query selects BYTEA and TEXT columns only).
  class Query {
   public:
    Query(PostgresStore& store, const char* sql, bool binary = false);
    ~Query();
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;
    Query& bind(const std::string& text);
    Query& bind(int64_t v);
    Query& bind_u64(uint64_t v);  // into a NUMERIC(20) column
    // Not copied: the frames are the caller's and outlive the query.
    Query& bind_bytes(const std::string& bytes);
    Status run();
    int rows() const;
    bool null(int row, int col) const;
    std::string bytes(int row, int col) const;
    bool i32(int row, int col, int32_t* out) const;
    bool i64(int row, int col, int64_t* out) const;
    bool u64(int row, int col, uint64_t* out) const;  // a NUMERIC(20)

   private:
    PostgresStore& store_;
    const char* sql_;
    bool binary_;
    std::vector<std::string> texts_;  // the text parameters' values
    struct Param {
      int text = -1;  // index in texts_, or -1: `bytes`
      const std::string* bytes = nullptr;
    };
    std::vector<Param> params_;
    pq::PGresult* result_ = nullptr;
  };

  // ---- postgres_store.cpp -------------------------------------------------------------------------
  // Connects if not connected (and makes the schema), runs `body` in a transaction if `tx`,
  // commits or rolls back, and tells on_health when the server answers again.
  Status with_db(bool tx, const std::function<Status()>& body);
  Status connect(pq::PGconn** conn);  // a new session with the timeouts set
  Status open();
  Status create_schema();
  void close();
  Status exec(const char* sql);  // a statement without parameters or rows
  // A failed call on `conn` (result may be null): Err::store, "postgres <url>: <why>"; the
  // server is down, and the connection dropped, when the connection broke.
  Status fail(pq::PGconn* conn, const pq::PGresult* result);
  Status corrupt(const std::string& record) const;
  Status error(const std::string& why) const;
  void set_health(bool up, const std::string& why);
  // Adds a change to the feed, in the caller's transaction (delivered at its commit).
  Status announce(DirectoryEvent::Kind kind, const std::string& topic, const std::string& addr, int32_t ck = 0,
                  uint64_t number = 0, const std::string& reason = {});
  Status listen();
  Status take_notifications(std::vector<DirectoryEvent>* events);
  // Takes channel ck's queue lock for the caller's transaction.
  Status lock_queue(int32_t ck);
  // Raises the key counter to at least `v` (writes the row when it is gone).
  Status raise_counter(int64_t v);
  // Runs `q`; every row's column 0, as bytes.
  static Status strings(Query& q, std::vector<std::string>* out);
  static std::string sender_key(const std::string& u, const std::string& s) { return u + ":" + s; }
  static std::string composite(const std::string& u, const std::string& s, const std::string& l) {
    return u + ":" + s + ":" + l;
  }

  // ---- postgres_store_directory.cpp ---------------------------------------------------------------
  Status read_directory(const std::string& topic, std::vector<TopicAddress>* out);
  Status put_address(const std::string& topic, const std::string& addr, const std::string& unique_name,
                     DirectoryEvent::Kind why);
  Status is_ours(const std::string& topic, const std::string& addr, const std::string& unique_name, bool* ours);
  Status lapsed_of(const std::string& topic, std::vector<std::string>* addrs);

  // ---- postgres_store_channels.cpp ----------------------------------------------------------------
  struct KeyTable;
  Status key_of(const KeyTable& table, const std::string& name, bool allocate, int32_t* value, bool* found);
  Status read_sender_topic(int32_t ck, std::string* sender_topic, bool* found);
  Status read_ack_row(int32_t ck, AckCounter* out);
  Status count_queue(int32_t ck, uint64_t* length);
  Status read_frames(int32_t ck, uint64_t after, uint64_t count, std::vector<QueuedFrame>* out);
  // After a push: analyses conn_messages when it has no statistics yet (reads plan on them);
  // once they are there, queue_has_statistics_ spares the question.
  void give_queue_statistics();
  bool queue_has_statistics_ = false;
  // *empty (optional): whether the queue holds nothing.
  Status drop_marks_if_empty(int32_t ck, bool* empty = nullptr);
  Status delete_rows(int32_t ck, std::initializer_list<const char*> deletes);

  // ---- postgres_store_inspect.cpp -----------------------------------------------------------------
  Status channel_names(const std::string& sender_unique, bool keyed, std::vector<ChannelName>* out);

  std::string shown_;     // redacted(the URL as given): what errors show
  std::string password_;  // scrubbed from every message
  std::string url_;       // as given, with connect_timeout added when it sets none
  const pq::Api* pq_ = nullptr;
  pq::PGconn* conn_ = nullptr;
  pq::PGconn* listen_conn_ = nullptr;  // the feed's session (LISTEN)
  HealthFn on_health_;
  enum class Health { unknown, up, down } health_ = Health::unknown;
};

// The registry's opener for "postgres://..." and "postgresql://..." (libpq's URI forms). Does
// no I/O and loads no library: the store's first call does.
Status open_postgres_store(const std::string& url, std::unique_ptr<Store>* out);

// The URL of the PostgreSQL store that liner_broker's postgres_url names: a postgres:// or
// postgresql:// URL as it is, or libpq's "host=... dbname=..." form made a URL with the same
// parameters. Anything else is returned as it is (open_store then says what store URLs are).
std::string postgres_store_url(const std::string& conninfo);

}  // namespace liner
