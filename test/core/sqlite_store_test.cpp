// The SQLite store: liner_broker 1.3.1's schema and seeding, race-free key allocation between
// connections to one file, the change feed without a server, the offline queue, and failures.
// The behaviour every store shares is the conformance suite's; this file pins what is SQLite's.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "core/sqlite_store.hpp"
#include "sqlite3.h"
#include "test_support.hpp"

using namespace liner;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

// liner_broker 1.3.1's tables as SQLite keeps them (src/store/sqlite.rs, white space folded and
// IF NOT EXISTS dropped, as sqlite_master shows them).
const std::vector<std::pair<std::string, std::string>> kBrokerSchema = {
    {"seq", "CREATE TABLE seq ( id INTEGER PRIMARY KEY CHECK (id = 1), v INTEGER NOT NULL )"},
    {"topic_addr",
     "CREATE TABLE topic_addr ( topic TEXT NOT NULL, addr TEXT NOT NULL, client_name TEXT NOT NULL, "
     "PRIMARY KEY (topic, addr) )"},
    {"sender_listener",
     "CREATE TABLE sender_listener ( sender_key TEXT NOT NULL, addr TEXT NOT NULL, listener_topic TEXT NOT NULL, "
     "PRIMARY KEY (sender_key, addr) )"},
    {"conn_key_map", "CREATE TABLE conn_key_map ( composite TEXT PRIMARY KEY, connection_key INTEGER NOT NULL UNIQUE )"},
    {"topic_key", "CREATE TABLE topic_key ( topic TEXT PRIMARY KEY, k INTEGER NOT NULL )"},
    {"conn_sender", "CREATE TABLE conn_sender ( connection_key INTEGER PRIMARY KEY, sender_topic TEXT NOT NULL )"},
    {"conn_mess_number", "CREATE TABLE conn_mess_number ( connection_key INTEGER PRIMARY KEY, v INTEGER NOT NULL )"},
    {"conn_messages",
     "CREATE TABLE conn_messages ( id INTEGER PRIMARY KEY AUTOINCREMENT, connection_key INTEGER NOT NULL, "
     "payload BLOB NOT NULL )"},
    {"idx_conn_messages_ck", "CREATE INDEX idx_conn_messages_ck ON conn_messages(connection_key, id)"},
};

std::string fold_space(const std::string& sql) {
  std::string out;
  for (char c : sql) {
    bool space = c == ' ' || c == '\n' || c == '\t';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out.push_back(space ? ' ' : c);
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// A connection of the test's own, beside the store's: what a liner_broker peer or a person sees.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "") << "\n" << sql;
    sqlite3_free(err);
  }
  // Column 0 of each row, as text ("NULL" for a null).
  std::vector<std::string> column(const std::string& sql) {
    std::vector<std::string> out;
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    while (st && sqlite3_step(st) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(st, 0);
      out.push_back(text ? std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(st, 0)) : "NULL");
    }
    sqlite3_finalize(st);
    return out;
  }
  std::string one(const std::string& sql) {
    auto rows = column(sql);
    return rows.empty() ? "(none)" : rows[0];
  }

 private:
  sqlite3* db_ = nullptr;
};

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/liner-sqlite-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
    path = dir + "/mesh.db";
    store = open();
    ASSERT_TRUE(store->ping());
  }
  void TearDown() override {
    store.reset();
    std::filesystem::remove_all(dir);
  }
  std::unique_ptr<Store> open(const std::string& file = {}) {
    std::unique_ptr<Store> s;
    EXPECT_TRUE(open_store("sqlite://" + (file.empty() ? path : file), &s));
    return s;
  }
  // Collects the feed of `watcher` until it holds `n` events or `within` passed.
  static std::vector<DirectoryEvent> collect(Store& watcher, size_t n, milliseconds within) {
    std::vector<DirectoryEvent> got;
    auto deadline = steady_clock::now() + within;
    while (got.size() < n && steady_clock::now() < deadline) EXPECT_TRUE(watcher.wait_directory_events(10, &got));
    return got;
  }
  static std::vector<const std::string*> refs(const std::vector<std::string>& frames) {
    std::vector<const std::string*> out;
    for (auto& f : frames) out.push_back(&f);
    return out;
  }

  std::string dir, path;
  std::unique_ptr<Store> store;
};

}  // namespace

TEST_F(SqliteStoreTest, UrlsNameTheFile) {
  for (const char* url : {"sqlite:", "sqlite://"}) {
    std::unique_ptr<Store> s;
    Status st = open_store(url, &s);
    EXPECT_EQ(st.code, Err::invalid_arg) << url;
    EXPECT_NE(st.message.find("sqlite:///"), std::string::npos) << st.message;
  }
  // Opening does no I/O: the file appears with the first call.
  std::unique_ptr<Store> s;
  ASSERT_TRUE(open_store("sqlite:" + dir + "/other.db", &s));
  EXPECT_FALSE(std::filesystem::exists(dir + "/other.db"));
  ASSERT_TRUE(s->ping());
  EXPECT_TRUE(std::filesystem::exists(dir + "/other.db"));
  EXPECT_EQ(s->record_name(StoreRecord::channel_queue, "*"), "conn_messages[connection_key=*]");
  EXPECT_EQ(s->record_name(StoreRecord::channel_name, "U", "S", "L"), "conn_key_map[composite=U:S:L]");
}

TEST_F(SqliteStoreTest, SchemaIsLinerBrokersWithTheListenerNameColumnAdded) {
  RawDb db(path);
  for (const auto& object : kBrokerSchema) {
    std::string expected = object.second;
    if (object.first == "sender_listener")  // where ALTER TABLE ADD COLUMN puts it
      expected.replace(expected.find(" PRIMARY KEY"), 0, " client_name TEXT NOT NULL DEFAULT '',");
    EXPECT_EQ(fold_space(db.one("SELECT sql FROM sqlite_master WHERE name = '" + object.first + "'")), expected);
  }
  EXPECT_EQ(db.one("SELECT id || ',' || v FROM seq"), "1,0");
  EXPECT_EQ(db.one("PRAGMA journal_mode"), "wal");
  // liner's own tables, and nothing else, are prefixed.
  for (const auto& name : db.column("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")) {
    bool broker = false;
    for (const auto& object : kBrokerSchema) broker |= object.first == name;
    EXPECT_TRUE(broker || name.rfind("lnr_", 0) == 0) << name;
  }
}

TEST_F(SqliteStoreTest, AFileLinerBrokerMadeGetsTheColumnAndTheSameSchema) {
  const std::string old = dir + "/broker.db";
  {
    RawDb db(old);
    for (const auto& object : kBrokerSchema) db.exec(object.second);
    db.exec("INSERT INTO seq (id, v) VALUES (1, 0)");
    db.exec("INSERT INTO sender_listener (sender_key, addr, listener_topic) VALUES ('U:S', '127.0.0.1:5', 'T')");
    EXPECT_EQ(db.one("SELECT COUNT(*) FROM pragma_table_info('sender_listener') WHERE name = 'client_name'"), "0");
  }
  auto s = open(old);
  ASSERT_TRUE(s->ping());
  std::vector<RememberedListener> listeners;
  ASSERT_TRUE(s->listeners_of_sender("U", "S", &listeners));
  ASSERT_EQ(listeners.size(), 1u);
  EXPECT_EQ(listeners[0].topic, "T");
  EXPECT_EQ(listeners[0].unique_name, "");
  // Put back by a running peer: the name goes into the row 1.3.1 wrote, its topic stays.
  Registration r;
  r.unique_name = "U";
  r.source_topic = "S";
  r.channels.push_back({"L", 3, "127.0.0.1:5", "T9"});
  ASSERT_TRUE(s->restore_registration(r, nullptr));
  ASSERT_TRUE(s->listeners_of_sender("U", "S", &listeners));
  EXPECT_EQ(listeners[0].topic, "T");
  EXPECT_EQ(listeners[0].unique_name, "L");
  // Both files now have the same schema, text for text.
  RawDb a(old), b(path);
  const std::string all = "SELECT type || ' ' || name || ' ' || COALESCE(sql, '') FROM sqlite_master ORDER BY name";
  auto fold_all = [&](RawDb& db) {
    std::vector<std::string> out;
    for (const auto& row : db.column(all)) out.push_back(fold_space(row));
    return out;
  };
  EXPECT_EQ(fold_all(a), fold_all(b));
  // A 1.3.1 peer's statements still work on it.
  a.exec("INSERT OR REPLACE INTO sender_listener (sender_key, addr, listener_topic) VALUES ('U:S', '127.0.0.1:6', 'T6')");
  EXPECT_EQ(a.one("SELECT client_name FROM sender_listener WHERE addr = '127.0.0.1:6'"), "");
}

TEST_F(SqliteStoreTest, ConnectionsRacingForKeysAgreeAndNeverFail) {
  constexpr int kNames = 150;
  std::vector<int32_t> keys[2];
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      auto s = open();  // its own connection, as every liner thread has
      keys[t].resize(2 * kNames);
      ++ready;
      while (ready < 2) std::this_thread::yield();
      bool found = false;
      for (int i = 0; i < kNames; ++i) {
        EXPECT_TRUE(s->topic_key("topic" + std::to_string(i), &keys[t][i]));
        Status st = s->connection_key("U", "S", "L" + std::to_string(i), true, &keys[t][kNames + i], &found);
        EXPECT_TRUE(st) << st.message;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(keys[0], keys[1]);
  std::set<int32_t> distinct(keys[0].begin(), keys[0].end());
  EXPECT_EQ(distinct.size(), size_t(2 * kNames));
  EXPECT_EQ(*distinct.begin(), 1);
  RawDb db(path);
  EXPECT_EQ(db.one("SELECT v FROM seq"), std::to_string(2 * kNames));  // no number wasted
}

TEST_F(SqliteStoreTest, KeysAreIntegersFromSeqAndACorruptOneIsAnError) {
  int32_t tk = 0, ck = 0;
  bool found = false;
  ASSERT_TRUE(store->topic_key("topic_a", &tk));
  EXPECT_EQ(tk, 1);
  ASSERT_TRUE(store->connection_key("U", "S", "L", false, &ck, &found));
  EXPECT_FALSE(found);
  ASSERT_TRUE(store->connection_key("U", "S", "L", true, &ck, &found));
  EXPECT_TRUE(found);
  EXPECT_EQ(ck, 2);
  RawDb db(path);
  EXPECT_EQ(db.one("SELECT typeof(k) || k FROM topic_key WHERE topic = 'topic_a'"), "integer1");
  EXPECT_EQ(db.one("SELECT connection_key FROM conn_key_map WHERE composite = 'U:S:L'"), "2");
  db.exec("INSERT INTO conn_key_map (composite, connection_key) VALUES ('U:S:M', 'garbage')");
  Status s = store->connection_key("U", "S", "M", true, &ck, &found);
  EXPECT_EQ(s.code, Err::store);
  EXPECT_NE(s.message.find("conn_key_map[composite=U:S:M]"), std::string::npos) << s.message;
  EXPECT_EQ(db.one("SELECT v FROM seq"), "2");
  db.exec("UPDATE seq SET v = 'x'");
  EXPECT_EQ(store->topic_key("topic_b", &tk).code, Err::store);
  EXPECT_EQ(db.one("SELECT COUNT(*) FROM topic_key WHERE topic = 'topic_b'"), "0");
}

TEST_F(SqliteStoreTest, AckCountersHoldEveryU64AndAnUnreadableOneReadsAsZero) {
  AckCounter c;
  ASSERT_TRUE(store->read_ack(5, false, &c));
  EXPECT_FALSE(c.existed);
  RawDb db(path);
  EXPECT_EQ(db.one("SELECT COUNT(*) FROM conn_mess_number"), "0");
  ASSERT_TRUE(store->read_ack(5, true, &c));
  EXPECT_EQ(db.one("SELECT typeof(v) || v FROM conn_mess_number WHERE connection_key = 5"), "integer0");
  for (uint64_t n : {uint64_t(INT64_MAX), uint64_t(INT64_MAX) + 1, UINT64_MAX}) {
    ASSERT_TRUE(store->set_last_mess_number(5, n));
    ASSERT_TRUE(store->read_ack(5, true, &c));
    EXPECT_EQ(c.number, n);
    EXPECT_FALSE(c.unreadable);
  }
  for (const char* bad : {"'abc'", "-1", "1.5", "X'00'"}) {
    db.exec(std::string("UPDATE conn_mess_number SET v = ") + bad);
    c.number = 7;
    ASSERT_TRUE(store->read_ack(5, true, &c));
    EXPECT_TRUE(c.existed && c.unreadable) << bad;
    EXPECT_EQ(c.number, 0u);
  }
  EXPECT_EQ(db.one("SELECT hex(v) FROM conn_mess_number"), "00");  // left for the listener to fix
}

TEST_F(SqliteStoreTest, TheFeedDeliversAnotherConnectionsChangesAtOnce) {
  auto watcher = open();
  std::vector<DirectoryEvent> got;
  ASSERT_TRUE(store->register_address("t", "127.0.0.1:999", "before", DirectoryEvent::join));
  ASSERT_TRUE(watcher->wait_directory_events(0, &got));  // subscribes: what came before is not news
  EXPECT_TRUE(got.empty());
  auto t0 = steady_clock::now();
  ASSERT_TRUE(store->register_address("t", "127.0.0.1:1", "u1", DirectoryEvent::join));
  ASSERT_TRUE(store->register_address("t", "127.0.0.1:2", "u2", DirectoryEvent::subscribe));
  ASSERT_TRUE(store->unregister_address("t", "127.0.0.1:1", DirectoryEvent::leave));
  ASSERT_TRUE(store->unregister_address("t", "127.0.0.1:2", DirectoryEvent::unsubscribe));
  ASSERT_TRUE(store->report_refused(7, UINT64_MAX, "too big: 5 MiB"));
  got = collect(*watcher, 5, milliseconds(2000));
  EXPECT_LT(steady_clock::now() - t0, milliseconds(200));
  ASSERT_EQ(got.size(), 5u);
  const DirectoryEvent::Kind kinds[] = {DirectoryEvent::join, DirectoryEvent::subscribe, DirectoryEvent::leave,
                                        DirectoryEvent::unsubscribe, DirectoryEvent::refused};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(got[i].kind, kinds[i]);
    EXPECT_EQ(got[i].topic, "t");
    EXPECT_EQ(got[i].addr, i % 2 ? "127.0.0.1:2" : "127.0.0.1:1");
  }
  EXPECT_EQ(got[4].kind, DirectoryEvent::refused);
  EXPECT_EQ(got[4].connection_key, 7);
  EXPECT_EQ(got[4].number, UINT64_MAX);
  EXPECT_EQ(got[4].reason, "too big: 5 MiB");
  // Nothing new: it waits its time out, and not much longer.
  t0 = steady_clock::now();
  got.clear();
  ASSERT_TRUE(watcher->wait_directory_events(60, &got));
  EXPECT_TRUE(got.empty());
  EXPECT_GE(steady_clock::now() - t0, milliseconds(60));
  EXPECT_LT(steady_clock::now() - t0, milliseconds(100));
  // The unsubscribe was marked with its announcement.
  std::vector<std::string> gone;
  ASSERT_TRUE(watcher->unsubscribed_from_topic("t", &gone));
  EXPECT_EQ(gone, std::vector<std::string>{"127.0.0.1:2"});
}

TEST_F(SqliteStoreTest, WritersTrimTheFeedToTheLastMinute) {
  RawDb db(path);
  db.exec("INSERT INTO lnr_directory_event (at_ms, kind) VALUES (1, 'join')");  // long ago
  for (int i = 0; i < 130; ++i) ASSERT_TRUE(store->register_address("t", "127.0.0.1:1", "u", DirectoryEvent::join));
  EXPECT_EQ(db.one("SELECT COUNT(*) FROM lnr_directory_event WHERE at_ms = 1"), "0");
  EXPECT_EQ(db.one("SELECT COUNT(*) FROM lnr_directory_event"), "130");
}

TEST_F(SqliteStoreTest, TheQueueIsFifoByIdAndKeepsNulBytes) {
  std::vector<std::string> frames{std::string(3, '\0')};
  for (int i = 0; i < 2000; ++i) frames.push_back(std::string(1, '\0') + "frame-" + std::to_string(i) + '\0');
  frames.push_back(frames[0]);  // a copy: frames go by their bytes, the oldest copy first
  ASSERT_TRUE(store->push_messages(9, refs(frames), {}));
  RawDb db(path);
  EXPECT_EQ(db.one("SELECT COUNT(*) FROM conn_messages WHERE typeof(payload) = 'blob'"), std::to_string(frames.size()));
  std::vector<QueuedFrame> got;
  ASSERT_TRUE(store->read_messages_after(9, 0, UINT64_MAX, &got));
  ASSERT_EQ(got.size(), frames.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].frame, frames[i]);
    EXPECT_EQ(got[i].place, i + 1) << "a frame's place is its row's id";
  }
  uint64_t removed = 0;
  ASSERT_TRUE(store->remove_messages(9, {frames[0]}, &removed));
  EXPECT_EQ(removed, 1u);
  got.clear();
  ASSERT_TRUE(store->read_messages_after(9, 1001, 1, &got));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].frame, frames[1001]);
  std::string last;
  bool found = false;
  ASSERT_TRUE(store->last_stored_message(9, &last, &found));
  EXPECT_TRUE(found);
  EXPECT_EQ(last, frames[0]);
  std::vector<int32_t> queued;
  ASSERT_TRUE(store->queued_channels(&queued));
  EXPECT_EQ(queued, std::vector<int32_t>{9});
  // None of them is a frame: they go by their places all the same.
  uint64_t length = 0;
  bool empty = false;
  ASSERT_TRUE(store->drop_messages_through(9, frames.size(), &empty));
  EXPECT_TRUE(empty);
  ASSERT_TRUE(store->queue_length(9, &length));
  EXPECT_EQ(length, 0u);
}

TEST_F(SqliteStoreTest, HandoverMarksAreRowsThatLeaveWithTheirQueuesLastFrame) {
  const std::string f1 = testing_support::numbered_frame(1), f2 = testing_support::numbered_frame(2);
  ASSERT_TRUE(store->push_messages(5, {&f1, &f2}, {{1, 2}}));
  ASSERT_TRUE(store->push_messages(6, {&f1}, {{1, 1}}));
  RawDb db(path);
  EXPECT_EQ(db.one("SELECT group_concat(connection_key || ':' || first || '-' || last, ' ') FROM lnr_handover"),
            "5:1-2 6:1-1");
  uint64_t n = 0;
  ASSERT_TRUE(store->remove_messages(5, {f2}, &n));
  EXPECT_EQ(db.one("SELECT COUNT(*) FROM lnr_handover WHERE connection_key = 5"), "1");
  ASSERT_TRUE(store->drop_messages_through(5, 1, nullptr));
  EXPECT_EQ(db.one("SELECT group_concat(connection_key, ' ') FROM lnr_handover"), "6");
  ASSERT_TRUE(store->clear_channel(6));
  EXPECT_EQ(db.one("SELECT COUNT(*) FROM lnr_handover"), "0");
  // Numbers above INT64_MAX come back whole; a mark that is not a number is a store error.
  ASSERT_TRUE(store->push_messages(7, {&f1}, {{UINT64_MAX - 1, UINT64_MAX}}));
  NumberRanges marks;
  ASSERT_TRUE(store->handover_marks(7, &marks));
  EXPECT_EQ(marks, (NumberRanges{{UINT64_MAX - 1, UINT64_MAX}}));
  db.exec("INSERT INTO lnr_handover (connection_key, first, last) VALUES (7, 7, 'x')");
  EXPECT_EQ(store->handover_marks(7, &marks).code, Err::store);
}

// Places are AUTOINCREMENT ids, never handed out again, even once the queue was emptied: a drop
// that runs again late (a retry, a reply that came too late) removes nothing pushed since.
TEST_F(SqliteStoreTest, ADropRunAgainLateRemovesNothingPushedSince) {
  const std::string f1 = testing_support::numbered_frame(1), f2 = testing_support::numbered_frame(2);
  ASSERT_TRUE(store->push_messages(3, {&f1, &f2}, {}));
  bool empty = false;
  ASSERT_TRUE(store->drop_messages_through(3, 2, &empty));
  EXPECT_TRUE(empty);
  ASSERT_TRUE(store->push_messages(3, {&f1}, {}));
  ASSERT_TRUE(store->drop_messages_through(3, 2, &empty));
  EXPECT_FALSE(empty);
  std::vector<QueuedFrame> got;
  ASSERT_TRUE(store->read_messages_after(3, 0, 10, &got));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].place, 3u);
}

TEST_F(SqliteStoreTest, LapsedLeasesLeaveAndAreAnnouncedEntriesWithoutOneStay) {
  ASSERT_TRUE(store->register_address("t", "127.0.0.1:1", "mine", DirectoryEvent::join));
  ASSERT_TRUE(store->register_address("t", "127.0.0.1:2", "broker", DirectoryEvent::join));  // no lease
  Registration r;
  r.addr = "127.0.0.1:1";
  r.unique_name = "mine";
  r.entries.push_back({"t", 1, DirectoryEvent::join});
  r.highest_key = 1;
  r.lease_ms = 60000;
  bool complete = true;
  ASSERT_TRUE(store->renew_registration(r, &complete));
  EXPECT_FALSE(complete);  // the counter is below the key in use
  size_t restored = 9;
  ASSERT_TRUE(store->restore_registration(r, &restored));
  EXPECT_EQ(restored, 0u);  // its entry was there
  ASSERT_TRUE(store->renew_registration(r, &complete));
  EXPECT_TRUE(complete);
  std::vector<TopicAddress> dir_after;
  ASSERT_TRUE(store->sweep_lapsed("t", &dir_after));
  EXPECT_EQ(dir_after.size(), 2u);  // not due yet
  auto watcher = open();
  std::vector<DirectoryEvent> events;
  ASSERT_TRUE(watcher->wait_directory_events(0, &events));
  r.lease_ms = 1;
  ASSERT_TRUE(store->renew_registration(r, &complete));
  std::this_thread::sleep_for(milliseconds(5));
  ASSERT_TRUE(store->sweep_lapsed("t", &dir_after));
  EXPECT_EQ(dir_after, (std::vector<TopicAddress>{{"127.0.0.1:2", "broker"}}));
  events = collect(*watcher, 1, milliseconds(500));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, DirectoryEvent::leave);
  EXPECT_EQ(events[0].addr, "127.0.0.1:1");
  RawDb db(path);
  EXPECT_EQ(db.one("SELECT COUNT(*) FROM lnr_lease"), "0");
}

TEST_F(SqliteStoreTest, AnUnopenableFileIsAStoreErrorNamingItAndHealthSaysSoOnce) {
  const std::string missing = dir + "/not/yet/mesh.db";
  auto s = open(missing);
  std::vector<std::pair<bool, std::string>> health;
  s->on_health([&](bool up, const std::string& why) { health.emplace_back(up, why); });
  Status st = s->ping();
  EXPECT_EQ(st.code, Err::store);
  EXPECT_NE(st.message.find("sqlite " + missing + ": "), std::string::npos) << st.message;
  int32_t k = 0;
  EXPECT_EQ(s->topic_key("t", &k).code, Err::store);
  ASSERT_EQ(health.size(), 1u);
  EXPECT_FALSE(health[0].first);
  EXPECT_EQ(health[0].second, st.message);
  std::filesystem::create_directories(dir + "/not/yet");
  ASSERT_TRUE(s->topic_key("t", &k));
  ASSERT_EQ(health.size(), 2u);
  EXPECT_TRUE(health[1].first);
  // A directory, and a file that is not a database.
  EXPECT_EQ(open(dir)->ping().code, Err::store);
  std::ofstream(dir + "/junk.db") << std::string(8192, 'j');
  st = open(dir + "/junk.db")->ping();
  EXPECT_EQ(st.code, Err::store);
  EXPECT_NE(st.message.find("junk.db"), std::string::npos) << st.message;
}

// Another process holding the write lock past the busy timeout (liner_broker's 5 s) is an outage,
// told once; the next call that gets through ends it.
TEST_F(SqliteStoreTest, AWriteLockHeldPastTheBusyTimeoutIsAnOutage) {
  std::vector<bool> health;
  store->on_health([&](bool up, const std::string&) { health.push_back(up); });
  RawDb holder(path);
  holder.exec("BEGIN IMMEDIATE");
  auto t0 = steady_clock::now();
  Status s = store->register_address("t", "127.0.0.1:1", "u", DirectoryEvent::join);
  EXPECT_EQ(s.code, Err::store);
  EXPECT_GE(steady_clock::now() - t0, milliseconds(4900));
  EXPECT_NE(s.message.find("locked"), std::string::npos) << s.message;
  holder.exec("COMMIT");
  ASSERT_TRUE(store->register_address("t", "127.0.0.1:1", "u", DirectoryEvent::join));
  EXPECT_EQ(health, (std::vector<bool>{false, true}));
}

TEST_F(SqliteStoreTest, ToolsReadChannelsByTheirCompositeNames) {
  int32_t ck = 0;
  bool found = false;
  ASSERT_TRUE(store->connection_key("U", "S", "L", true, &ck, &found));
  ASSERT_TRUE(store->set_sender_topic(ck, "S"));
  std::string frame = testing_support::numbered_frame(4);
  ASSERT_TRUE(store->push_messages(ck, {&frame}, {}));
  ASSERT_TRUE(store->save_listener_for_sender("U", "S2", "127.0.0.1:5", "T", "L"));
  RawDb db(path);
  // Names 1.3.1 may write with ':' inside a part cannot be split: left out.
  db.exec("INSERT INTO conn_key_map (composite, connection_key) VALUES ('U:a:b:L', 50), ('V:S:L', 51)");
  std::vector<ChannelName> channels;
  ASSERT_TRUE(store->list_channels("U", &channels));
  ASSERT_EQ(channels.size(), 1u);
  EXPECT_EQ(channels[0].listener_unique, "L");
  EXPECT_EQ(channels[0].key, ck);
  ASSERT_TRUE(store->list_channels("", &channels));
  EXPECT_EQ(channels.size(), 2u);
  std::vector<std::string> topics;
  ASSERT_TRUE(store->source_topics_of_sender("U", &topics));
  EXPECT_EQ(topics, (std::vector<std::string>{"S", "S2"}));
  std::vector<std::pair<std::string, int32_t>> keys;
  ASSERT_TRUE(store->connection_keys_of_sender("U", "S", &keys));
  EXPECT_EQ(keys, (std::vector<std::pair<std::string, int32_t>>{{"L", ck}}));
  std::vector<ChannelState> states;
  ASSERT_TRUE(store->read_channels({ck, 99}, true, &states));
  ASSERT_EQ(states.size(), 2u);
  EXPECT_EQ(states[0].sender_topic, "S");
  EXPECT_EQ(states[0].queue_length, 1u);
  EXPECT_EQ(states[0].head, frame);
  EXPECT_FALSE(states[1].has_sender_topic);
  ASSERT_TRUE(store->forget_channel({"U", "S", "L", ck}));
  ASSERT_TRUE(store->list_channels("U", &channels));
  EXPECT_TRUE(channels.empty());
  EXPECT_EQ(db.one("SELECT COUNT(*) FROM conn_messages"), "0");
}

// ---- liner_broker 1.3.1's seeding (the tests of its src/store/sqlite.rs) ----------------------------

TEST_F(SqliteStoreTest, SeedingAnythingButASqliteStoreIsRefusedAndNothingIsANoOp) {
  std::unique_ptr<Store> redis;
  ASSERT_TRUE(open_store("redis://127.0.0.1:1/0", &redis));  // never connects
  EXPECT_EQ(seed_sqlite_receivers(*redis, "u", "s", "l", {{"t", "a", "n"}}).code, Err::invalid_arg);
  ASSERT_TRUE(seed_sqlite_receivers(*store, "u", "s", "l", {}));
  RawDb db(path);
  EXPECT_EQ(db.one("SELECT COUNT(*) FROM topic_key"), "0");
}

TEST_F(SqliteStoreTest, SeedingWritesThePeersCatalogWithKeysOne) {
  ASSERT_TRUE(seed_sqlite_receivers(*store, "listener", "me", "127.0.0.1:9", {{"peer_t", "127.0.0.1:4000", "peer_name"}}));
  std::vector<TopicAddress> addrs;
  ASSERT_TRUE(store->addresses_of_topic("peer_t", &addrs));
  EXPECT_EQ(addrs, (std::vector<TopicAddress>{{"127.0.0.1:4000", "peer_name"}}));
  int32_t k = 0;
  ASSERT_TRUE(store->topic_key("peer_t", &k));
  EXPECT_EQ(k, 1);
  ASSERT_TRUE(store->topic_key("me", &k));
  EXPECT_EQ(k, 1);
  std::string from;
  bool found = false;
  ASSERT_TRUE(store->sender_topic(1, &from, &found));
  EXPECT_EQ(from, "peer_t");
  // Upserted with the same keys.
  ASSERT_TRUE(seed_sqlite_receivers(*store, "listener", "me", "127.0.0.1:9", {{"peer_t", "127.0.0.1:4000", "n2"}}));
  ASSERT_TRUE(store->addresses_of_topic("peer_t", &addrs));
  EXPECT_EQ(addrs, (std::vector<TopicAddress>{{"127.0.0.1:4000", "n2"}}));
  ASSERT_TRUE(store->topic_key("peer_t", &k));
  EXPECT_EQ(k, 1);
  // The counter follows the connection keys only: a new key comes above them.
  ASSERT_TRUE(store->topic_key("other", &k));
  EXPECT_EQ(k, 2);
}

TEST_F(SqliteStoreTest, TwoConnectionsToASeededFileBothFindConnectionKeyOne) {
  ASSERT_TRUE(seed_sqlite_receivers(*store, "client1", "topic_client1", "127.0.0.1:22771",
                                    {{"topic_client2", "127.0.0.1:22782", "client2"}}));
  auto other = open();
  for (Store* s : {store.get(), other.get()}) {
    int32_t ck = 0;
    bool found = false;
    ASSERT_TRUE(s->connection_key("client1", "topic_client1", "client2", true, &ck, &found));
    EXPECT_EQ(ck, 1);
  }
  // As liner_broker's bench: clearing the client's own directory and registering again keeps it.
  ASSERT_TRUE(store->delete_topic_addresses("topic_client1"));
  ASSERT_TRUE(store->register_address("topic_client1", "127.0.0.1:22771", "client1", DirectoryEvent::join));
  int32_t ck = 0;
  bool found = false;
  ASSERT_TRUE(store->connection_key("client1", "topic_client1", "client2", true, &ck, &found));
  EXPECT_EQ(ck, 1);
  // The directory reads in address order, as 1.3.1's does.
  ASSERT_TRUE(store->register_address("topic_client1", "127.0.0.1:1", "client1b", DirectoryEvent::join));
  std::vector<TopicAddress> addrs;
  ASSERT_TRUE(store->addresses_of_topic("topic_client1", &addrs));
  ASSERT_EQ(addrs.size(), 2u);
  EXPECT_EQ(addrs[0].addr, "127.0.0.1:1");
}
