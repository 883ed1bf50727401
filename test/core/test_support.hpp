// Helpers shared by the C++ tests: a private redis-server, a tiny JSON reader for the golden
// vectors, hex, and bounded waiting.
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace testing_support {

// A redis-server owned by the test (or the one LINER_TEST_REDIS_URL names).
class RedisServer {
 public:
  // own=false: use LINER_TEST_REDIS_URL when set; own=true: always start a private server
  // (for tests that stop and restart it).
  explicit RedisServer(bool own = false);
  ~RedisServer();
  const std::string& url() const { return url_; }
  int port() const { return port_; }
  // Runs redis-cli with the arguments; returns its stdout without the final newline.
  std::string cli(const std::vector<std::string>& args) const;
  void flush() const { cli({"FLUSHALL"}); }
  void stop();
  void start();

 private:
  std::string url_;
  std::string host_ = "127.0.0.1";
  int port_ = 0;
  int pid_ = -1;
  std::string dir_;
};

// One shared server per test binary.
RedisServer& redis();

struct Json {
  enum Type { null, boolean, number, string, array, object } type = null;
  double num = 0;
  bool b = false;
  std::string str;
  std::vector<Json> items;
  std::map<std::string, Json> fields;
  const Json& operator[](const std::string& k) const { return fields.at(k); }
};
Json parse_json(const std::string& text);
std::string read_file(const std::string& path);
std::string from_hex(const std::string& hex);
std::string to_hex(const std::string& bytes);

// Polls `cond` every 5 ms until it holds or `timeout` passes.
bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout);

int free_port();

// A whole at-least-once frame numbered `number` (ck 1, tk 1), as the offline queue stores
// frames.
std::string numbered_frame(uint64_t number, const std::string& payload = "x");

}  // namespace testing_support

namespace testing_support {

// ---- PostgreSQL: the server LINER_TEST_POSTGRES_URL names ---------------------------------------
// scripts/test.sh starts one for the run; by hand:
//   . scripts/lib/postgres.sh && start_throwaway_postgres   (exports LINER_TEST_POSTGRES_URL)
// Unset, a test that needs it fails saying so (a skipped test would hide the store untested).

// The server's URL, or "" after a test failure that says how to set it.
std::string postgres_url();
// `url` (a postgres:// URI) naming database `db` instead.
std::string postgres_database_url(const std::string& url, const std::string& db);
// A new empty database on that server, its URL; those this process made for earlier tests are
// dropped (the server is shared by the run). "" after a test failure.
std::string fresh_postgres_database();
// Runs `sql` (statements without parameters) on the database `url` names, through the loader
// the store uses. The rows of the last statement, as text (NULL as ""); a test failure if it fails.
using PgRows = std::vector<std::vector<std::string>>;
bool postgres_exec(const std::string& url, const std::string& sql, PgRows* rows = nullptr);

}  // namespace testing_support
