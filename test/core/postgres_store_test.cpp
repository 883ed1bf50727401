// The PostgreSQL store: liner_broker 1.3.1's schema (and liner's column added to a database 1.3.1
// made), race-free key allocation between processes, the NOTIFY change feed, libpq loaded at run
// time, and failures that are bounded and never show the password. The behaviour every store
// shares is the conformance suite's; this file pins what is PostgreSQL's. The server is the one
// LINER_TEST_POSTGRES_URL names (test_support.hpp), a new database per test.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <set>
#include <thread>

#include "core/postgres_store.hpp"
#include "test_support.hpp"

using namespace liner;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing_support::PgRows;
using testing_support::postgres_exec;

namespace {

// liner_broker 1.3.1's statements, verbatim (src/store/postgres.rs, SCHEMA): what a Rust peer
// runs on the database.
constexpr char kBrokerSchema[] = R"(
CREATE TABLE IF NOT EXISTS seq (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    v INTEGER NOT NULL
);
INSERT INTO seq (id, v) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;

CREATE TABLE IF NOT EXISTS topic_addr (
    topic TEXT NOT NULL,
    addr TEXT NOT NULL,
    client_name TEXT NOT NULL,
    PRIMARY KEY (topic, addr)
);

CREATE TABLE IF NOT EXISTS sender_listener (
    sender_key TEXT NOT NULL,
    addr TEXT NOT NULL,
    listener_topic TEXT NOT NULL,
    PRIMARY KEY (sender_key, addr)
);

CREATE TABLE IF NOT EXISTS conn_key_map (
    composite TEXT PRIMARY KEY,
    connection_key INTEGER NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS topic_key (
    topic TEXT PRIMARY KEY,
    k INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS conn_sender (
    connection_key INTEGER PRIMARY KEY,
    sender_topic TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS conn_mess_number (
    connection_key INTEGER PRIMARY KEY,
    v BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS conn_messages (
    id BIGSERIAL PRIMARY KEY,
    connection_key INTEGER NOT NULL,
    payload BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_conn_messages_ck
    ON conn_messages(connection_key, id);
)";

// Every column of liner_broker's tables (not lnr_*), with its type, nullability and default.
constexpr char kBrokerColumns[] =
    "SELECT table_name, column_name, data_type, is_nullable, COALESCE(column_default, '')"
    " FROM information_schema.columns WHERE table_schema = 'public' AND table_name NOT LIKE 'lnr\\_%'"
    " ORDER BY table_name, column_name";
// Their indexes and constraints, as PostgreSQL would recreate them.
constexpr char kBrokerIndexes[] =
    "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    " AND tablename NOT LIKE 'lnr\\_%' ORDER BY indexname";
constexpr char kBrokerChecks[] =
    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text NOT LIKE 'lnr\\_%'"
    " ORDER BY conname";

PgRows rows_of(const std::string& url, const char* sql) {
  PgRows rows;
  EXPECT_TRUE(postgres_exec(url, sql, &rows)) << sql;
  return rows;
}

::testing::AssertionResult succeeded(const Status& s) {
  if (s) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "store error " << int(s.code) << ": " << s.message;
}

std::unique_ptr<Store> open(const std::string& url) {
  std::unique_ptr<Store> store;
  EXPECT_TRUE(succeeded(open_store(url, &store))) << url;
  return store;
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = testing_support::fresh_postgres_database();
    ASSERT_FALSE(url_.empty()) << "no database for this test (the failure above says why)";
  }
  std::string url_;
};

// A database made by liner and one made by liner_broker's statements then opened by liner have
// the same tables, columns, indexes and constraints; liner's only change to 1.3.1's tables is
// sender_listener.client_name.
TEST_F(PostgresStoreTest, TheSchemaIsLinerBrokersWithTheListenerNameColumn) {
  ASSERT_TRUE(succeeded(open(url_)->ping()));

  const std::string broker = testing_support::fresh_postgres_database();
  ASSERT_FALSE(broker.empty());
  ASSERT_TRUE(postgres_exec(broker, kBrokerSchema));
  PgRows pure = rows_of(broker, kBrokerColumns);
  const PgRows pure_indexes = rows_of(broker, kBrokerIndexes), pure_checks = rows_of(broker, kBrokerChecks);

  PgRows ours = rows_of(url_, kBrokerColumns);
  const PgRows listener_name = {{"sender_listener", "client_name", "text", "NO", "''::text"}};
  PgRows added;
  for (auto it = ours.begin(); it != ours.end();) {
    if ((*it)[0] == "sender_listener" && (*it)[1] == "client_name") {
      added.push_back(*it);
      it = ours.erase(it);
    } else {
      ++it;
    }
  }
  EXPECT_EQ(added, listener_name);
  EXPECT_EQ(ours, pure);
  EXPECT_EQ(rows_of(url_, kBrokerIndexes), pure_indexes);
  EXPECT_EQ(rows_of(url_, kBrokerChecks), pure_checks);
  // Spot checks of the crate's types: BIGSERIAL ids, BYTEA frames, a BIGINT ack.
  EXPECT_NE(std::find(pure.begin(), pure.end(),
                      std::vector<std::string>{"conn_messages", "payload", "bytea", "NO", ""}),
            pure.end());
  EXPECT_NE(std::find(pure.begin(), pure.end(),
                      std::vector<std::string>{"conn_mess_number", "v", "bigint", "NO", ""}),
            pure.end());
}

TEST_F(PostgresStoreTest, ADatabaseLinerBrokerMadeGetsTheListenerNameColumnAndKeepsItsRows) {
  ASSERT_TRUE(postgres_exec(url_, kBrokerSchema));
  ASSERT_TRUE(postgres_exec(url_,
                            "INSERT INTO sender_listener (sender_key, addr, listener_topic)"
                            " VALUES ('U:S', '127.0.0.1:9', 'T')"));
  auto store = open(url_);
  std::vector<RememberedListener> listeners;
  ASSERT_TRUE(succeeded(store->listeners_of_sender("U", "S", &listeners)));
  ASSERT_EQ(listeners.size(), 1u);
  EXPECT_EQ(listeners[0].addr, "127.0.0.1:9");
  EXPECT_EQ(listeners[0].topic, "T");
  EXPECT_EQ(listeners[0].unique_name, "");
  EXPECT_EQ(rows_of(url_, "SELECT client_name FROM sender_listener"), PgRows{{""}});
  // A second opening changes nothing.
  ASSERT_TRUE(succeeded(open(url_)->ping()));
  EXPECT_EQ(rows_of(url_,
                    "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'sender_listener'"
                    " AND column_name = 'client_name'"),
            PgRows{{"1"}});
}

// Two stores (as two processes would) ask for the same new names at the same moment, the first
// time on a database that has no tables yet: they agree on every key, no error, no key twice.
TEST_F(PostgresStoreTest, StoresRacingOnNewNamesAgreeOnTheirKeys) {
  auto a = open(url_), b = open(url_);
  constexpr int kNames = 40;
  std::vector<int32_t> keys_a(kNames), keys_b(kNames);
  std::vector<Status> errors;
  std::mutex errors_mutex;
  std::atomic<int> ready{0};
  auto race = [&](Store* store, std::vector<int32_t>* keys) {
    for (int i = 0; i < kNames; ++i) {
      // Both threads at the same name together.
      ready.fetch_add(1);
      while (ready.load() < 2 * (i + 1)) std::this_thread::yield();
      bool found = false;
      Status s = i % 2 ? store->topic_key("topic" + std::to_string(i), &(*keys)[size_t(i)])
                       : store->connection_key("U", "S", "L" + std::to_string(i), true, &(*keys)[size_t(i)], &found);
      if (!s) {
        std::lock_guard<std::mutex> lock(errors_mutex);
        errors.push_back(s);
      }
    }
  };
  std::thread ta(race, a.get(), &keys_a), tb(race, b.get(), &keys_b);
  ta.join();
  tb.join();
  for (const auto& e : errors) ADD_FAILURE() << e.message;
  EXPECT_EQ(keys_a, keys_b);
  EXPECT_EQ(std::set<int32_t>(keys_a.begin(), keys_a.end()).size(), size_t(kNames));
  // The counter went up once per name: no allocation was thrown away.
  EXPECT_EQ(rows_of(url_, "SELECT v FROM seq"), PgRows{{std::to_string(kNames)}});
}

// push_messages sends its frames as arrays of at most 16 MiB: a push larger than that takes
// several statements, and every frame (NUL bytes included) keeps its bytes and its place.
TEST_F(PostgresStoreTest, APushLargerThanOneStatementKeepsEveryFrameInOrder) {
  auto store = open(url_);
  std::vector<std::string> frames;
  for (char c = 'a'; c < 'f'; ++c) frames.push_back(std::string(size_t(5) << 20, c) + '\0' + c);
  frames.push_back("");  // and an empty frame and a one-byte one after them
  frames.push_back(std::string(1, '\0'));
  std::vector<const std::string*> refs;
  for (const auto& f : frames) refs.push_back(&f);
  ASSERT_TRUE(succeeded(store->push_messages(4, refs, {})));
  std::vector<QueuedFrame> got;
  ASSERT_TRUE(succeeded(store->read_messages_after(4, 0, 100, &got)));
  ASSERT_EQ(got.size(), frames.size());
  for (size_t i = 0; i < frames.size(); ++i) EXPECT_TRUE(got[i].frame == frames[i]) << "frame " << i;
}

// Reads of a long queue walk the (connection_key, id) index from the first push on: the push
// gives conn_messages the statistics without which the planner sorts the whole queue per read.
TEST_F(PostgresStoreTest, AFirstPushLeavesTheQueueReadThroughItsIndex) {
  auto store = open(url_);
  const std::string frame(1024, 'x');
  std::vector<const std::string*> refs(20000, &frame);
  ASSERT_TRUE(succeeded(store->push_messages(6, refs, {})));
  EXPECT_EQ(rows_of(url_, "SELECT count(*) FROM pg_stats WHERE tablename = 'conn_messages'"
                          " AND attname = 'connection_key'"),
            PgRows{{"1"}});
  PgRows plan = rows_of(url_,
                        "EXPLAIN SELECT id::text AS id_text, payload FROM conn_messages WHERE connection_key = 6"
                        " AND id > 5000 ORDER BY id LIMIT 1025");
  std::string text;
  for (const auto& row : plan) text += row.empty() ? "" : row[0] + "\n";
  EXPECT_EQ(text.find("Sort"), std::string::npos) << text;
}

TEST_F(PostgresStoreTest, ANotificationFromAnotherInstanceArrivesWithin200ms) {
  auto watcher = open(url_), writer = open(url_);
  std::vector<DirectoryEvent> events;
  ASSERT_TRUE(succeeded(watcher->wait_directory_events(0, &events)));  // listening from now on
  ASSERT_TRUE(succeeded(writer->ping()));
  for (int round = 0; round < 3; ++round) {
    events.clear();
    const std::string topic = "t" + std::to_string(round);
    const auto start = steady_clock::now();
    std::thread change([&] { EXPECT_TRUE(succeeded(writer->register_address(topic, "127.0.0.1:7000", "P", DirectoryEvent::subscribe))); });
    ASSERT_TRUE(succeeded(watcher->wait_directory_events(2000, &events)));
    const auto took = steady_clock::now() - start;
    change.join();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, DirectoryEvent::subscribe);
    EXPECT_EQ(events[0].topic, topic);
    EXPECT_EQ(events[0].addr, "127.0.0.1:7000");
    EXPECT_LT(took, milliseconds(200));
  }
}

// An event's names come back whole whatever bytes they hold (names forbid ':' and '\\' only).
TEST_F(PostgresStoreTest, AnEventCarriesNamesWithSpacesAndNewlines) {
  auto watcher = open(url_), writer = open(url_);
  std::vector<DirectoryEvent> events;
  ASSERT_TRUE(succeeded(watcher->wait_directory_events(0, &events)));
  ASSERT_TRUE(succeeded(writer->register_address("a b\nc 3 4", "127.0.0.1:7000", "P", DirectoryEvent::join)));
  ASSERT_TRUE(succeeded(writer->report_refused(7, UINT64_MAX, "too big\nfor it")));
  for (int i = 0; i < 20 && events.size() < 2; ++i) ASSERT_TRUE(succeeded(watcher->wait_directory_events(100, &events)));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].topic, "a b\nc 3 4");
  EXPECT_EQ(events[1].kind, DirectoryEvent::refused);
  EXPECT_EQ(events[1].connection_key, 7);
  EXPECT_EQ(events[1].number, UINT64_MAX);
  EXPECT_EQ(events[1].reason, "too big\nfor it");
}

// libpq is loaded on first use: without it, the store says what to install. Run in a new process
// (a thread-safe death test re-executes the binary), where nothing has loaded libpq yet.
TEST(PostgresStoreLibpq, WithoutLibpqTheStoreSaysWhatToInstall) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(
      {
        pq::set_library_name_for_test("libpq-not-installed.so.5");
        std::unique_ptr<Store> store;
        Status s = open_store("postgres://postgres@127.0.0.1:1/postgres", &store);
        if (s) s = store->ping();
        fprintf(stderr, "%d %s\n", int(s.code), s.message.c_str());
        std::exit(s.code == Err::store ? 0 : 1);
      },
      ::testing::ExitedWithCode(0),
      "PostgreSQL store: libpq is not installed \\(libpq-not-installed.so.5 not found\\); install it: "
      "apt-get install libpq5 / dnf install libpq / brew install libpq");
}

TEST(PostgresStoreUrl, RedactedUrlsShowNoPassword) {
  EXPECT_EQ(PostgresStore::redacted("postgres://u:secret@h:5432/db"), "postgres://u@h:5432/db");
  EXPECT_EQ(PostgresStore::redacted("postgresql://u:p%40ss@h/db?sslmode=disable"), "postgresql://u@h/db?sslmode=disable");
  EXPECT_EQ(PostgresStore::redacted("postgres://h/db?user=u&password=secret&sslmode=disable"),
            "postgres://h/db?user=u&password=***&sslmode=disable");
  EXPECT_EQ(PostgresStore::redacted("postgres://u@h/db"), "postgres://u@h/db");
}

// Whatever fails (no server there, no such database), the message names the URL without the
// password, and the password nowhere.
TEST(PostgresStoreErrors, ErrorsNeverShowThePassword) {
  const std::string base = testing_support::postgres_url();
  ASSERT_FALSE(base.empty());
  const std::string secret = "s3cret-Pw";
  const std::string authority = base.substr(base.find("://") + 3, base.find('/', base.find("://") + 3) - base.find("://") - 3);
  const std::string user = authority.substr(0, authority.find('@'));
  const std::string host = authority.substr(authority.find('@') + 1);
  for (const std::string& url : {
           "postgres://" + user + ":" + secret + "@127.0.0.1:1/postgres",
           "postgres://" + user + ":" + secret + "@" + host + "/no_such_database",
           "postgres://" + host + "/no_such_database?user=" + user + "&password=" + secret,
       }) {
    auto store = open(url);
    Status s = store->ping();
    EXPECT_EQ(s.code, Err::store) << url;
    EXPECT_EQ(s.message.find(secret), std::string::npos) << s.message;
    EXPECT_EQ(s.message.find("postgres postgres://"), 0u) << s.message;
  }
}

TEST(PostgresStoreErrors, ARefusedConnectionFailsAtOnce) {
  auto store = open("postgres://postgres@127.0.0.1:1/postgres");
  const auto start = steady_clock::now();
  Status s = store->ping();
  EXPECT_EQ(s.code, Err::store);
  EXPECT_LT(steady_clock::now() - start, milliseconds(1000));
}

// A server that takes the connection and never answers: connect_timeout (2 s, added to a URL
// that sets none) bounds the wait.
TEST(PostgresStoreErrors, AServerThatNeverAnswersFailsWithinTheConnectTimeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 8), 0);  // the kernel completes the handshake; nobody reads
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  auto store = open("postgres://postgres@127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/postgres");
  const auto start = steady_clock::now();
  Status s = store->ping();
  const auto took = steady_clock::now() - start;
  ::close(fd);
  EXPECT_EQ(s.code, Err::store);
  EXPECT_GE(took, milliseconds(1500));
  EXPECT_LT(took, milliseconds(4500));
}

}  // namespace
