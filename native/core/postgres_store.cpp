// PostgresStore (postgres_store.hpp: its tables and invariants): opening a store from a URL, the
// schema shared with liner_broker 1.3.1, the connection, queries and transactions, the server's
// health, and the directory change feed (NOTIFY / LISTEN).
#include <poll.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

#include "core/postgres_store.hpp"

namespace liner {
namespace {

// liner_broker 1.3.1's schema, statement for statement (src/store/postgres.rs).
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

// liner's column of a 1.3.1 table: added, never in the CREATE, so that a database liner made and
// one 1.3.1 made and liner opened have the same schema.
constexpr char kListenerNameColumn[] =
    "ALTER TABLE sender_listener ADD COLUMN IF NOT EXISTS client_name TEXT NOT NULL DEFAULT ''";

constexpr char kLinerSchema[] = R"(
CREATE TABLE IF NOT EXISTS lnr_lease (
    topic TEXT NOT NULL,
    addr TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (topic, addr)
);
CREATE TABLE IF NOT EXISTS lnr_unsubscribed (
    topic TEXT NOT NULL,
    addr TEXT NOT NULL,
    PRIMARY KEY (topic, addr)
);
CREATE TABLE IF NOT EXISTS lnr_handover (
    id BIGSERIAL PRIMARY KEY,
    connection_key INTEGER NOT NULL,
    first NUMERIC(20) NOT NULL,
    last NUMERIC(20) NOT NULL
);
CREATE INDEX IF NOT EXISTS lnr_handover_ck ON lnr_handover(connection_key, id);
CREATE TABLE IF NOT EXISTS lnr_refused (
    id BIGSERIAL PRIMARY KEY,
    connection_key INTEGER NOT NULL,
    number NUMERIC(20) NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lnr_refused_ck ON lnr_refused(connection_key, id);
)";

// Advisory lock keys (pg_advisory_xact_lock(int, int)): the first number is liner's, the second
// says what is locked.
constexpr int kLinerLocks = 0x6c6e72;  // "lnr"
constexpr int kSchemaLock = 0;
constexpr int kQueueLockClass = 0x6c6e73;  // with the connection key as the second number

// liner_broker 1.3.1's LOCK_TIMEOUT; statements get the same bound. Notices are not sent: libpq
// would print each (the schema's "already exists, skipping") on the host process's stderr.
constexpr char kSessionSettings[] =
    "SET lock_timeout = '5s'; SET statement_timeout = '5s'; SET client_min_messages = error";
constexpr char kDefaultConnectTimeout[] = "connect_timeout=2";

constexpr char kNotifyChannel[] = "lnr_directory";

// The words of an event's kind, as the Redis feed's, in the order of DirectoryEvent::Kind.
constexpr const char* kKinds[] = {"join", "subscribe", "leave", "unsubscribe", "refused"};

// SQLSTATEs that say the server does not answer (as opposed to a bad statement or value):
// connection exceptions, operator intervention (shutdown, cancelled by the timeout), out of
// resources, a lock not granted in time.
bool server_down(const char* sqlstate) {
  if (!sqlstate) return false;
  std::string code = sqlstate;
  return code.compare(0, 2, "08") == 0 || code.compare(0, 2, "57") == 0 || code.compare(0, 2, "53") == 0 ||
         code == "55P03";
}

// An event as a NOTIFY payload: "<kind> <ck> <number> <topic bytes> <addr bytes>\n" then the
// topic, the address and the reason, so that any bytes a name may hold (names forbid ':' and
// '\\' only) come back whole.
std::string encode_event(DirectoryEvent::Kind kind, const std::string& topic, const std::string& addr, int32_t ck,
                         uint64_t number, const std::string& reason) {
  return std::string(kKinds[kind]) + " " + std::to_string(ck) + " " + std::to_string(number) + " " +
         std::to_string(topic.size()) + " " + std::to_string(addr.size()) + "\n" + topic + addr + reason;
}

bool decode_event(const std::string& payload, DirectoryEvent* e) {
  size_t eol = payload.find('\n');
  if (eol == std::string::npos) return false;
  std::vector<std::string> words;
  size_t at = 0;
  while (at < eol) {
    size_t sp = std::min(payload.find(' ', at), eol);
    words.push_back(payload.substr(at, sp - at));
    at = sp + 1;
  }
  if (words.size() != 5) return false;
  auto number = [](const std::string& w, auto* out) {
    auto r = std::from_chars(w.data(), w.data() + w.size(), *out);
    return r.ec == std::errc() && r.ptr == w.data() + w.size();
  };
  size_t topic_len = 0, addr_len = 0;
  if (!number(words[1], &e->connection_key) || !number(words[2], &e->number) || !number(words[3], &topic_len) ||
      !number(words[4], &addr_len) || topic_len + addr_len > payload.size() - eol - 1)
    return false;
  e->kind = DirectoryEvent::join;  // an unknown word reads as join, as in the Redis feed
  for (size_t k = 0; k < sizeof kKinds / sizeof kKinds[0]; ++k)
    if (words[0] == kKinds[k]) e->kind = DirectoryEvent::Kind(k);
  e->topic = payload.substr(eol + 1, topic_len);
  e->addr = payload.substr(eol + 1 + topic_len, addr_len);
  e->reason = payload.substr(eol + 1 + topic_len + addr_len);
  return true;
}

// The password a connection URI holds, in its userinfo or as ?password= ("" if none).
std::string password_of(const std::string& url) {
  size_t scheme = url.find("://");
  size_t from = scheme == std::string::npos ? 0 : scheme + 3;
  size_t end = url.find_first_of("/?", from);
  std::string authority = url.substr(from, end == std::string::npos ? std::string::npos : end - from);
  size_t at = authority.rfind('@');
  if (at != std::string::npos) {
    size_t colon = authority.find(':');
    if (colon < at) return authority.substr(colon + 1, at - colon - 1);
  }
  size_t q = url.find("password=", end == std::string::npos ? url.size() : end);
  if (q == std::string::npos) return {};
  size_t stop = url.find('&', q);
  return url.substr(q + 9, stop == std::string::npos ? std::string::npos : stop - q - 9);
}

// `text` with every copy of `secret` replaced.
std::string scrub(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3))
    text.replace(at, secret.size(), "***");
  return text;
}

}  // namespace

PostgresStore::PostgresStore(std::string url) : shown_(redacted(url)), password_(password_of(url)) {
  // The connection is bounded unless the URL says how (libpq waits for the OS's TCP timeout).
  if (url.find("connect_timeout=") == std::string::npos)
    url += (url.find('?') == std::string::npos ? "?" : "&") + std::string(kDefaultConnectTimeout);
  url_ = std::move(url);
}

PostgresStore::~PostgresStore() {
  close();
  if (listen_conn_) pq_->PQfinish(listen_conn_);
}

void PostgresStore::on_health(HealthFn fn) { on_health_ = std::move(fn); }

Status PostgresStore::ping() {
  return with_db(false, [&] { return Query(*this, "SELECT 1").run(); });
}

std::string PostgresStore::redacted(const std::string& url) {
  const std::string password = password_of(url);
  if (password.empty()) return url;
  std::string out = url;
  size_t q = out.find("password=");
  size_t from = out.find("://");
  from = from == std::string::npos ? 0 : from + 3;
  size_t at = out.rfind('@', out.find_first_of("/?", from));
  if (at != std::string::npos && at >= from) {
    size_t colon = out.find(':', from);
    if (colon < at) {
      out.erase(colon, at - colon);  // user:secret@host -> user@host
      if (q != std::string::npos) q -= at - colon;
    }
  }
  if (q != std::string::npos) {
    size_t stop = out.find('&', q);
    out.replace(q + 9, (stop == std::string::npos ? out.size() : stop) - q - 9, "***");
  }
  return out;
}

// ---- Opening ---------------------------------------------------------------------------------

namespace {

std::string percent_encoded(const std::string& text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(char(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace

std::string postgres_store_url(const std::string& conninfo) {
  if (conninfo.compare(0, 11, "postgres://") == 0 || conninfo.compare(0, 13, "postgresql://") == 0) return conninfo;
  // libpq's "key=value key='quoted \\' value'" form, as query parameters of a URI libpq reads
  // the same way ("postgresql:///?host=...&dbname=..."), each value percent-encoded.
  std::string url = "postgresql:///?";
  size_t i = 0;
  bool first = true;
  auto space = [&] { while (i < conninfo.size() && std::isspace(static_cast<unsigned char>(conninfo[i]))) ++i; };
  for (space(); i < conninfo.size(); space()) {
    size_t eq = conninfo.find('=', i);
    if (eq == std::string::npos) return conninfo;  // not that form: the registry will say so
    std::string key = conninfo.substr(i, eq - i);
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
    i = eq + 1;
    space();
    std::string value;
    if (i < conninfo.size() && conninfo[i] == '\'') {
      for (++i; i < conninfo.size() && conninfo[i] != '\''; ++i) {
        if (conninfo[i] == '\\' && i + 1 < conninfo.size()) ++i;
        value.push_back(conninfo[i]);
      }
      if (i == conninfo.size()) return conninfo;  // unterminated quote
      ++i;
    } else {
      while (i < conninfo.size() && !std::isspace(static_cast<unsigned char>(conninfo[i]))) value.push_back(conninfo[i++]);
    }
    url += (first ? "" : "&") + percent_encoded(key) + "=" + percent_encoded(value);
    first = false;
  }
  return first ? conninfo : url;
}

Status open_postgres_store(const std::string& url, std::unique_ptr<Store>* out) {
  out->reset(new PostgresStore(url));
  return Status();
}

Status PostgresStore::connect(pq::PGconn** conn) {
  *conn = nullptr;
  if (!pq_) {
    Status s = pq::load(&pq_);
    if (!s) return s;
  }
  pq::PGconn* c = pq_->PQconnectdb(url_.c_str());
  if (!c || pq_->PQstatus(c) != pq::CONNECTION_OK) {
    std::string why = c ? pq_->PQerrorMessage(c) : "out of memory";
    if (c) pq_->PQfinish(c);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    Status s = error(why);
    set_health(false, s.message);
    return s;
  }
  pq::PGresult* r = pq_->PQexec(c, kSessionSettings);
  if (pq_->PQresultStatus(r) != pq::PGRES_COMMAND_OK) {
    Status s = fail(c, r);
    pq_->PQclear(r);
    pq_->PQfinish(c);
    return s;
  }
  pq_->PQclear(r);
  *conn = c;
  return Status();
}

Status PostgresStore::open() {
  if (conn_) return Status();
  Status s = connect(&conn_);
  if (s) s = create_schema();
  if (!s) close();  // the next call tries again from the start
  return s;
}

Status PostgresStore::create_schema() {
  // Made whole or not at all (one transaction), so its last object tells. The DDL is skipped
  // when it is there: CREATE INDEX IF NOT EXISTS still takes a SHARE lock on its table, which
  // would deadlock with peers writing their queues (a sender's spill holds conn_messages and
  // waits for lnr_handover while a new connection's DDL holds one and waits for the other).
  {
    Query q(*this, "SELECT 1 WHERE to_regclass('lnr_refused_ck') IS NOT NULL");
    Status s = q.run();
    if (!s) return s;
    if (q.rows() == 1) return Status();
  }
  Status s = exec("BEGIN");
  if (!s) return s;
  s = Query(*this, "SELECT pg_advisory_xact_lock($1, $2)").bind(int64_t(kLinerLocks)).bind(int64_t(kSchemaLock)).run();
  if (s) s = exec(kBrokerSchema);
  if (s) s = exec(kListenerNameColumn);
  if (s) s = exec(kLinerSchema);
  if (s) s = exec("COMMIT");
  if (!s && conn_) exec("ROLLBACK");
  return s;
}

void PostgresStore::close() {
  if (conn_) pq_->PQfinish(conn_);
  conn_ = nullptr;
}

Status PostgresStore::exec(const char* sql) {
  if (!conn_) return error("not connected");
  pq::PGresult* r = pq_->PQexec(conn_, sql);
  Status s;
  pq::ExecStatusType st = pq_->PQresultStatus(r);
  if (st != pq::PGRES_COMMAND_OK && st != pq::PGRES_TUPLES_OK) s = fail(conn_, r);
  pq_->PQclear(r);
  return s;
}

// ---- Queries, transactions, health ----------------------------------------------------------------

Status PostgresStore::with_db(bool tx, const std::function<Status()>& body) {
  Status s = open();
  if (!s) return s;
  if (tx) s = exec("BEGIN");
  if (!s) return s;
  s = body();
  if (tx && conn_) {
    if (s) s = exec("COMMIT");
    // After a failure, or a COMMIT that failed: nothing of it stays.
    if (!s && conn_) exec("ROLLBACK");
  }
  if (s) set_health(true, "");
  return s;
}

Status PostgresStore::error(const std::string& why) const {
  return Status(Err::store, scrub("postgres " + shown_ + ": " + why, password_));
}

Status PostgresStore::fail(pq::PGconn* conn, const pq::PGresult* result) {
  std::string why = result ? pq_->PQresultErrorMessage(result) : "";
  if (why.empty()) why = pq_->PQerrorMessage(conn);
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  Status s = error(why);
  const bool broken = pq_->PQstatus(conn) == pq::CONNECTION_BAD;
  if (broken || server_down(result ? pq_->PQresultErrorField(result, pq::PG_DIAG_SQLSTATE) : nullptr))
    set_health(false, s.message);
  if (broken && conn == conn_) close();  // the next call connects again
  return s;
}

Status PostgresStore::corrupt(const std::string& record) const {
  return error(record + " does not hold the expected number");
}

void PostgresStore::set_health(bool up, const std::string& why) {
  Health now = up ? Health::up : Health::down;
  // unknown -> up is the first success, not a recovery.
  bool tell = health_ != now && (!up || health_ == Health::down);
  health_ = now;
  if (tell && on_health_) on_health_(up, why);
}

PostgresStore::Query::Query(PostgresStore& store, const char* sql, bool binary)
    : store_(store), sql_(sql), binary_(binary) {}

PostgresStore::Query::~Query() {
  if (result_) store_.pq_->PQclear(result_);
}

PostgresStore::Query& PostgresStore::Query::bind(const std::string& text) {
  params_.push_back({int(texts_.size()), nullptr});
  texts_.push_back(text);
  return *this;
}

PostgresStore::Query& PostgresStore::Query::bind(int64_t v) { return bind(std::to_string(v)); }

PostgresStore::Query& PostgresStore::Query::bind_u64(uint64_t v) { return bind(std::to_string(v)); }

PostgresStore::Query& PostgresStore::Query::bind_bytes(const std::string& bytes) {
  params_.push_back({-1, &bytes});
  return *this;
}

Status PostgresStore::Query::run() {
  if (!store_.conn_) return store_.error("not connected");
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  for (const Param& p : params_) {
    const std::string& v = p.text >= 0 ? texts_[size_t(p.text)] : *p.bytes;
    values.push_back(v.data());
    lengths.push_back(int(v.size()));
    formats.push_back(p.text >= 0 ? 0 : 1);
  }
  if (result_) store_.pq_->PQclear(result_);
  result_ = store_.pq_->PQexecParams(store_.conn_, sql_, int(params_.size()), nullptr, values.data(),
                                     lengths.data(), formats.data(), binary_ ? 1 : 0);
  pq::ExecStatusType st = store_.pq_->PQresultStatus(result_);
  if (st == pq::PGRES_COMMAND_OK || st == pq::PGRES_TUPLES_OK) return Status();
  return store_.fail(store_.conn_, result_);
}

int PostgresStore::Query::rows() const { return result_ ? store_.pq_->PQntuples(result_) : 0; }

bool PostgresStore::Query::null(int row, int col) const { return store_.pq_->PQgetisnull(result_, row, col) != 0; }

std::string PostgresStore::Query::bytes(int row, int col) const {
  return std::string(store_.pq_->PQgetvalue(result_, row, col), size_t(store_.pq_->PQgetlength(result_, row, col)));
}

bool PostgresStore::Query::i64(int row, int col, int64_t* out) const {
  if (null(row, col)) return false;
  const std::string text = bytes(row, col);
  auto r = std::from_chars(text.data(), text.data() + text.size(), *out);
  return !text.empty() && r.ec == std::errc() && r.ptr == text.data() + text.size();
}

bool PostgresStore::Query::i32(int row, int col, int32_t* out) const {
  int64_t v = 0;
  if (!i64(row, col, &v) || v < INT32_MIN || v > INT32_MAX) return false;
  *out = int32_t(v);
  return true;
}

bool PostgresStore::Query::u64(int row, int col, uint64_t* out) const {
  if (null(row, col)) return false;
  const std::string text = bytes(row, col);  // digits only: from_chars takes no sign here
  auto r = std::from_chars(text.data(), text.data() + text.size(), *out);
  return !text.empty() && r.ec == std::errc() && r.ptr == text.data() + text.size();
}

Status PostgresStore::strings(Query& q, std::vector<std::string>* out) {
  out->clear();
  Status s = q.run();
  if (!s) return s;
  for (int i = 0; i < q.rows(); ++i) out->push_back(q.bytes(i, 0));
  return Status();
}

Status PostgresStore::lock_queue(int32_t ck) {
  return Query(*this, "SELECT pg_advisory_xact_lock($1, $2)").bind(int64_t(kQueueLockClass)).bind(int64_t(ck)).run();
}

Status PostgresStore::raise_counter(int64_t v) {
  return Query(*this,
               "INSERT INTO seq (id, v) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET v = GREATEST(seq.v, EXCLUDED.v)")
      .bind(v)
      .run();
}

// ---- The directory change feed -----------------------------------------------------------------

Status PostgresStore::announce(DirectoryEvent::Kind kind, const std::string& topic, const std::string& addr,
                               int32_t ck, uint64_t number, const std::string& reason) {
  return Query(*this, "SELECT pg_notify($1, $2)")
      .bind(kNotifyChannel)
      .bind(encode_event(kind, topic, addr, ck, number, reason))
      .run();
}

Status PostgresStore::listen() {
  if (listen_conn_) return Status();
  Status s = connect(&listen_conn_);
  if (!s) return s;
  pq::PGresult* r = pq_->PQexec(listen_conn_, (std::string("LISTEN ") + kNotifyChannel).c_str());
  if (pq_->PQresultStatus(r) != pq::PGRES_COMMAND_OK) s = fail(listen_conn_, r);
  pq_->PQclear(r);
  if (!s) {
    pq_->PQfinish(listen_conn_);
    listen_conn_ = nullptr;
  }
  return s;
}

Status PostgresStore::take_notifications(std::vector<DirectoryEvent>* events) {
  if (!pq_->PQconsumeInput(listen_conn_)) {
    Status s = fail(listen_conn_, nullptr);
    // A lost session: the next call listens again (what happened in between is not heard, as
    // with a Redis subscription).
    pq_->PQfinish(listen_conn_);
    listen_conn_ = nullptr;
    return s;
  }
  while (pq::PGnotify* n = pq_->PQnotifies(listen_conn_)) {
    DirectoryEvent e;
    if (n->extra && decode_event(n->extra, &e)) events->push_back(std::move(e));
    pq_->PQfreemem(n);
  }
  set_health(true, "");  // the feed's store answers again once its session does
  return Status();
}

Status PostgresStore::wait_directory_events(int timeout_ms, std::vector<DirectoryEvent>* events) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
  // Like a subscription: what happened before the first call is not delivered.
  Status s = listen();
  for (;;) {
    const size_t before = events->size();
    if (s) s = take_notifications(events);
    if (!s || events->size() > before) return s;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return s;
    pollfd p{pq_->PQsocket(listen_conn_), POLLIN, 0};
    if (::poll(&p, 1, int(left.count())) < 0 && errno != EINTR) return error(std::strerror(errno));
  }
}

}  // namespace liner
