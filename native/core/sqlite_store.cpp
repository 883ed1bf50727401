// SqliteStore (sqlite_store.hpp: its tables and invariants): opening a store from a URL, the
// schema shared with liner_broker 1.3.1, cached statements and transactions, the file's health,
// and the directory change feed, read by polling lnr_directory_event.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/sqlite_store.hpp"
#include "sqlite3.h"

namespace liner {
namespace {

// liner_broker 1.3.1's busy timeout: how long a statement waits for another writer.
constexpr int kBusyTimeoutMs = 5000;

// liner_broker 1.3.1's schema, statement for statement and space for space (src/store/sqlite.rs):
// SQLite keeps the text of each CREATE, so a file either of them made looks the same.
constexpr char kBrokerSchema[] = R"(
            CREATE TABLE IF NOT EXISTS seq (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                v INTEGER NOT NULL
            );
            INSERT OR IGNORE INTO seq (id, v) VALUES (1, 0);

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
                v INTEGER NOT NULL
            );

            CREATE TABLE IF NOT EXISTS conn_messages (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                connection_key INTEGER NOT NULL,
                payload BLOB NOT NULL
            );
            CREATE INDEX IF NOT EXISTS idx_conn_messages_ck
                ON conn_messages(connection_key, id);
            )";

// liner's column of a 1.3.1 table: added, never in the CREATE, so that a file liner made and one
// 1.3.1 made and liner opened have the same schema.
constexpr char kListenerNameColumn[] = "ALTER TABLE sender_listener ADD COLUMN client_name TEXT NOT NULL DEFAULT ''";

constexpr char kLinerSchema[] = R"(
CREATE TABLE IF NOT EXISTS lnr_lease (
    topic TEXT NOT NULL,
    addr TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, addr)
);
CREATE TABLE IF NOT EXISTS lnr_unsubscribed (
    topic TEXT NOT NULL,
    addr TEXT NOT NULL,
    PRIMARY KEY (topic, addr)
);
CREATE TABLE IF NOT EXISTS lnr_handover (
    id INTEGER PRIMARY KEY,
    connection_key INTEGER NOT NULL,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS lnr_handover_ck ON lnr_handover(connection_key, id);
CREATE TABLE IF NOT EXISTS lnr_refused (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_key INTEGER NOT NULL,
    number INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lnr_refused_ck ON lnr_refused(connection_key, id);
CREATE TABLE IF NOT EXISTS lnr_directory_event (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL DEFAULT '',
    addr TEXT NOT NULL DEFAULT '',
    connection_key INTEGER NOT NULL DEFAULT 0,
    number INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT ''
);
)";

// The feed: how often a waiting reader looks, how long events stay, and how often (in event ids)
// a writer trims them.
constexpr int kPollMs = 20;
constexpr int64_t kEventKeepMs = 60000;
constexpr int64_t kTrimEvery = 128;

// The words of lnr_directory_event.kind, as the Redis feed's, in the order of DirectoryEvent::Kind.
constexpr std::pair<DirectoryEvent::Kind, const char*> kKinds[] = {
    {DirectoryEvent::join, "join"},
    {DirectoryEvent::subscribe, "subscribe"},
    {DirectoryEvent::leave, "leave"},
    {DirectoryEvent::unsubscribe, "unsubscribe"},
    {DirectoryEvent::refused, "refused"},
};

// Result codes that say the file does not answer (as opposed to a bad statement or value).
bool file_down(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
    case SQLITE_NOLFS:
    case SQLITE_AUTH:
      return true;
    default:
      return false;
  }
}

}  // namespace

SqliteStore::SqliteStore(std::string path) : path_(std::move(path)) {}

SqliteStore::~SqliteStore() { close(); }

void SqliteStore::on_health(HealthFn fn) { on_health_ = std::move(fn); }

Status SqliteStore::ping() {
  return with_db(Lock::none, [&] { return Query(*this, "SELECT 1").run(); });
}

// ---- Opening ---------------------------------------------------------------------------------

std::string sqlite_store_url(const std::string& path) {
  // "sqlite:" + path, except that a path starting with "//" would read as "sqlite://" + a
  // relative path: "sqlite://" + "//x" keeps it whole.
  return (path.compare(0, 2, "//") == 0 ? "sqlite://" : "sqlite:") + path;
}

Status open_sqlite_store(const std::string& url, std::unique_ptr<Store>* out) {
  std::string path;
  for (const char* scheme : {"sqlite://", "sqlite:"}) {
    if (url.compare(0, std::strlen(scheme), scheme) == 0) {
      path = url.substr(std::strlen(scheme));
      break;
    }
  }
  if (path.empty())
    return Status(Err::invalid_arg, "a sqlite store URL names a file: sqlite:///abs/path/mesh.db or sqlite:relative.db");
  // Every thread of a client opens the store for itself: in-memory databases would be one
  // per thread, a mesh nobody else sees.
  if (path == ":memory:" || path.compare(0, 5, "file:") == 0)
    return Status(Err::invalid_arg, "sqlite store " + path + ": the store must be a file that every thread and peer opens (sqlite:mesh.db)");
  out->reset(new SqliteStore(std::move(path)));
  return Status();
}

Status SqliteStore::open() {
  if (db_) return Status();
  // Connections that open a new file together race to create it and turn on WAL, and SQLite
  // refuses some of those steps with SQLITE_BUSY without asking its busy handler: opening is
  // retried, within the busy timeout every other wait has, and told as an outage only then.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  for (;;) {
    opening_ = true;
    last_rc_ = sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    Status s = last_rc_ == SQLITE_OK ? create_schema() : fail(last_rc_);
    opening_ = false;
    if (s) return s;
    close();  // the next attempt, or the next call, starts again from the start
    const bool busy = (last_rc_ & 0xff) == SQLITE_BUSY || (last_rc_ & 0xff) == SQLITE_LOCKED;
    if (!busy || std::chrono::steady_clock::now() >= deadline) {
      if (file_down(last_rc_)) set_health(false, s.message);
      return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Status SqliteStore::create_schema() {
  auto exec = [&](const char* sql) {
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status() : fail(rc);
  };
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  Status s = exec("PRAGMA foreign_keys = ON");
  if (s) s = exec("PRAGMA journal_mode = WAL");
  // One write transaction: two processes opening a 1.3.1 file at once add the column once.
  if (s) s = exec("BEGIN IMMEDIATE");
  if (!s) return s;
  s = exec(kBrokerSchema);
  bool has_column = false;
  if (s) {
    Query q(*this, "SELECT 1 FROM pragma_table_info('sender_listener') WHERE name = 'client_name'");
    has_column = q.step();
    s = q.status();
  }
  if (s && !has_column) s = exec(kListenerNameColumn);
  if (s) s = exec(kLinerSchema);
  if (s) s = exec("COMMIT");
  if (!s) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  return s;
}

void SqliteStore::close() {
  for (auto& st : statements_) sqlite3_finalize(st.second);
  statements_.clear();
  sqlite3_close_v2(db_);
  db_ = nullptr;
}

// ---- Statements, transactions, health ---------------------------------------------------------------

Status SqliteStore::with_db(Lock lock, const std::function<Status()>& body) {
  Status s = open();
  if (!s) return s;
  if (lock != Lock::none) s = Query(*this, lock == Lock::write ? "BEGIN IMMEDIATE" : "BEGIN").run();
  if (!s) return s;
  s = body();
  if (lock != Lock::none) {
    if (s) s = Query(*this, "COMMIT").run();
    // After a failure, or a COMMIT that failed: nothing of it stays.
    if (!sqlite3_get_autocommit(db_)) Query(*this, "ROLLBACK").run();
  }
  if (s) set_health(true, "");
  return s;
}

Status SqliteStore::fail(int rc) {
  std::string why = "sqlite " + path_ + ": " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
  last_rc_ = rc;
  if (file_down(rc) && !opening_) set_health(false, why);  // open() tells its own failure
  return Status(Err::store, why);
}

Status SqliteStore::corrupt(const std::string& record) const {
  return Status(Err::store, "sqlite " + path_ + ": " + record + " does not hold the expected number");
}

void SqliteStore::set_health(bool up, const std::string& why) {
  Health now = up ? Health::up : Health::down;
  // unknown -> up is the first success, not a recovery.
  bool tell = health_ != now && (!up || health_ == Health::down);
  health_ = now;
  if (tell && on_health_) on_health_(up, why);
}

sqlite3_stmt* SqliteStore::statement(const char* sql, Status* s) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second;
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr);
  if (rc != SQLITE_OK) {
    *s = fail(rc);
    return nullptr;
  }
  statements_.emplace(sql, st);
  return st;
}

int64_t SqliteStore::changes() const { return sqlite3_changes64(db_); }

int64_t SqliteStore::now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

SqliteStore::Query::Query(SqliteStore& store, const char* sql) : store_(store) {
  stmt_ = store_.statement(sql, &status_);
}

SqliteStore::Query::~Query() {
  if (!stmt_) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);  // no BLOB left pointing at a caller's frame
}

SqliteStore::Query& SqliteStore::Query::bind(const std::string& text) {
  if (stmt_) sqlite3_bind_text64(stmt_, next_, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  ++next_;
  return *this;
}

SqliteStore::Query& SqliteStore::Query::bind_blob(const std::string& bytes) {
  if (stmt_) sqlite3_bind_blob64(stmt_, next_, bytes.data(), bytes.size(), SQLITE_STATIC);
  ++next_;
  return *this;
}

SqliteStore::Query& SqliteStore::Query::bind(int64_t v) {
  if (stmt_) sqlite3_bind_int64(stmt_, next_, v);
  ++next_;
  return *this;
}

SqliteStore::Query& SqliteStore::Query::bind_u64(uint64_t v) {
  if (v <= uint64_t(INT64_MAX)) return bind(int64_t(v));
  if (stmt_) {
    std::string text = std::to_string(v);
    sqlite3_bind_blob64(stmt_, next_, text.data(), text.size(), SQLITE_TRANSIENT);
  }
  ++next_;
  return *this;
}

bool SqliteStore::Query::step() {
  if (!stmt_ || !status_) return false;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) status_ = store_.fail(rc);
  return false;
}

Status SqliteStore::Query::run() {
  while (step()) {
  }
  return status_;
}

bool SqliteStore::Query::i32(int col, int32_t* out) const {
  if (!integer(col)) return false;
  int64_t v = sqlite3_column_int64(stmt_, col);
  if (v < INT32_MIN || v > INT32_MAX) return false;
  *out = int32_t(v);
  return true;
}

bool SqliteStore::Query::u64(int col, uint64_t* out) const {
  switch (sqlite3_column_type(stmt_, col)) {
    case SQLITE_INTEGER: {
      int64_t v = sqlite3_column_int64(stmt_, col);
      if (v < 0) return false;
      *out = uint64_t(v);
      return true;
    }
    case SQLITE_TEXT:
    case SQLITE_BLOB: {  // digits only: from_chars takes no sign for an unsigned type
      std::string text = bytes(col);
      const char* end = text.data() + text.size();
      auto r = std::from_chars(text.data(), end, *out);
      return !text.empty() && r.ec == std::errc() && r.ptr == end;
    }
    default:
      return false;
  }
}

bool SqliteStore::Query::integer(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_INTEGER; }

int64_t SqliteStore::Query::i64(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string SqliteStore::Query::bytes(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(static_cast<const char*>(p), size_t(n)) : std::string();
}

Status SqliteStore::strings(Query& q, std::vector<std::string>* out) {
  out->clear();
  while (q.step()) out->push_back(q.bytes(0));
  return q.status();
}

std::string SqliteStore::prefix_end(const std::string& prefix) {
  std::string end = prefix;
  end.back() = ';';  // ':' + 1
  return end;
}

// ---- The key counter ---------------------------------------------------------------------------

Status SqliteStore::read_counter(int64_t* v, bool* found, bool* readable) {
  Query q(*this, "SELECT v FROM seq WHERE id = 1");
  *v = 0;
  *found = q.step();
  *readable = !*found || q.integer(0);
  if (*found && *readable) *v = q.i64(0);
  return q.status();
}

Status SqliteStore::write_counter(int64_t v) {
  return Query(*this, "INSERT OR REPLACE INTO seq (id, v) VALUES (1, ?1)").bind(v).run();
}

// ---- The directory change feed -----------------------------------------------------------------

Status SqliteStore::announce(DirectoryEvent::Kind kind, const std::string& topic, const std::string& addr,
                             int32_t ck, uint64_t number, const std::string& reason) {
  const int64_t now = now_ms();
  Status s = Query(*this,
                   "INSERT INTO lnr_directory_event (at_ms, kind, topic, addr, connection_key, number, reason)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                 .bind(now)
                 .bind(kKinds[kind].second)
                 .bind(topic)
                 .bind(addr)
                 .bind(int64_t(ck))
                 .bind_u64(number)
                 .bind(reason)
                 .run();
  if (!s || sqlite3_last_insert_rowid(db_) % kTrimEvery != 0) return s;
  return Query(*this, "DELETE FROM lnr_directory_event WHERE at_ms < ?1").bind(now - kEventKeepMs).run();
}

Status SqliteStore::wait_directory_events(int timeout_ms, std::vector<DirectoryEvent>* events) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
  if (!watching_) {
    // Like a subscription: what happened before it is not delivered.
    Status s = with_db(Lock::none, [&] {
      Query q(*this, "SELECT COALESCE(MAX(id), 0) FROM lnr_directory_event");
      if (q.step()) last_event_ = q.i64(0);
      return q.status();
    });
    if (!s) return s;
    watching_ = true;
  }
  for (;;) {
    // Every poll reads the table: a seek on its rowid costs what PRAGMA data_version would, and
    // also sees this connection's own writes, which data_version does not count.
    const size_t before = events->size();
    Status s = with_db(Lock::none, [&] { return read_events(events); });
    if (!s || events->size() > before) return s;
    const std::chrono::steady_clock::duration left = deadline - std::chrono::steady_clock::now();
    if (left <= left.zero()) return s;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(kPollMs)));
  }
}

Status SqliteStore::read_events(std::vector<DirectoryEvent>* events) {
  Query q(*this,
          "SELECT id, kind, topic, addr, connection_key, number, reason FROM lnr_directory_event"
          " WHERE id > ?1 ORDER BY id");
  q.bind(last_event_);
  while (q.step()) {
    last_event_ = q.i64(0);
    DirectoryEvent e;
    const std::string kind = q.bytes(1);
    for (const auto& k : kKinds)  // an unknown word reads as join, as in the Redis feed
      if (kind == k.second) e.kind = k.first;
    e.topic = q.bytes(2);
    e.addr = q.bytes(3);
    if (!q.i32(4, &e.connection_key)) e.connection_key = 0;
    if (!q.u64(5, &e.number)) e.number = 0;
    e.reason = q.bytes(6);
    events->push_back(std::move(e));
  }
  return q.status();
}

}  // namespace liner
