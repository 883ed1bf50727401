#include "test_support.hpp"

#include "core/frame.hpp"

#include <netinet/in.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace testing_support {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

RedisServer::RedisServer(bool own) {
  const char* env = std::getenv("LINER_TEST_REDIS_URL");
  if (!own && env && *env) {
    url_ = env;
    std::string rest = url_.substr(url_.find("://") + 3);
    rest = rest.substr(0, rest.find('/'));
    host_ = rest.substr(0, rest.rfind(':'));
    port_ = std::stoi(rest.substr(rest.rfind(':') + 1));
    return;
  }
  port_ = free_port();
  url_ = "redis://127.0.0.1:" + std::to_string(port_) + "/0";
  char tmpl[] = "/tmp/liner-redis-XXXXXX";
  dir_ = mkdtemp(tmpl);
  start();
}

RedisServer::~RedisServer() { stop(); }

void RedisServer::start() {
  if (dir_.empty()) return;  // not ours
  pid_ = fork();
  if (pid_ == 0) {
    int null_fd = ::open("/dev/null", O_WRONLY);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    std::string port = std::to_string(port_);
    execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--dir", dir_.c_str(), "--loglevel", "warning", (char*)nullptr);
    _exit(127);
  }
  if (!wait_for([&] { return cli({"PING"}) == "PONG"; }, std::chrono::seconds(10)))
    throw std::runtime_error("redis-server did not start");
}

void RedisServer::stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

std::string RedisServer::cli(const std::vector<std::string>& args) const {
  std::string cmd = "redis-cli -h " + host_ + " -p " + std::to_string(port_);
  for (const auto& a : args) {
    std::string q = "'";
    for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    cmd += " " + q + "'";
  }
  cmd += " 2>/dev/null";
  std::string out;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    pclose(f);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

RedisServer& redis() {
  static RedisServer server;
  return server;
}

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(char(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

std::string to_hex(const std::string& bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

namespace {
struct Parser {
  const std::string& s;
  size_t i = 0;
  void ws() {
    while (i < s.size() && isspace(static_cast<unsigned char>(s[i]))) ++i;
  }
  Json value() {
    ws();
    Json j;
    char c = s.at(i);
    if (c == '{') {
      j.type = Json::object;
      ++i;
      ws();
      if (s[i] == '}') return ++i, j;
      for (;;) {
        ws();
        std::string k = value().str;
        ws();
        ++i;  // ':'
        j.fields[k] = value();
        ws();
        if (s[i++] == '}') return j;
      }
    }
    if (c == '[') {
      j.type = Json::array;
      ++i;
      ws();
      if (s[i] == ']') return ++i, j;
      for (;;) {
        j.items.push_back(value());
        ws();
        if (s[i++] == ']') return j;
      }
    }
    if (c == '"') {
      j.type = Json::string;
      for (++i; s[i] != '"'; ++i) {
        if (s[i] == '\\') ++i;  // the vectors hold no escapes beyond \" and \\.
        j.str.push_back(s[i]);
      }
      ++i;
      return j;
    }
    if (s.compare(i, 4, "true") == 0) return i += 4, j.type = Json::boolean, j.b = true, j;
    if (s.compare(i, 5, "false") == 0) return i += 5, j.type = Json::boolean, j;
    if (s.compare(i, 4, "null") == 0) return i += 4, j;
    size_t end = i;
    while (end < s.size() && (isdigit(static_cast<unsigned char>(s[end])) || strchr("+-.eE", s[end]))) ++end;
    j.type = Json::number;
    j.num = std::stod(s.substr(i, end - i));
    i = end;
    return j;
  }
};
}  // namespace

Json parse_json(const std::string& text) {
  Parser p{text};
  return p.value();
}

std::string numbered_frame(uint64_t number, const std::string& payload) {
  liner::FrameHeader h;
  h.number_mess = number;
  h.connection_key = 1;
  h.topic_key = 1;
  h.flags = liner::kFlagAtLeastOnce;
  std::string out;
  liner::encode_frame(out, h, payload.data(), payload.size());
  return out;
}

}  // namespace testing_support

// ---- PostgreSQL --------------------------------------------------------------------------------

#include <gtest/gtest.h>

#include "core/libpq_loader.hpp"

namespace testing_support {

std::string postgres_url() {
  const char* env = std::getenv("LINER_TEST_POSTGRES_URL");
  if (env && *env) return env;
  ADD_FAILURE() << "LINER_TEST_POSTGRES_URL is unset: run the tests through scripts/test.sh, or start a "
                   "throwaway server first: `. scripts/lib/postgres.sh && start_throwaway_postgres` "
                   "(exports LINER_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres)";
  return {};
}

std::string postgres_database_url(const std::string& url, const std::string& db) {
  size_t from = url.find("://");
  size_t path = url.find('/', from == std::string::npos ? 0 : from + 3);
  size_t query = url.find('?', from);
  std::string rest = query == std::string::npos ? std::string() : url.substr(query);
  return (path == std::string::npos || path > query ? url.substr(0, query) : url.substr(0, path)) + "/" + db + rest;
}

bool postgres_exec(const std::string& url, const std::string& sql, PgRows* rows) {
  const liner::pq::Api* pq = nullptr;
  liner::Status s = liner::pq::load(&pq);
  if (!s) {
    ADD_FAILURE() << s.message;
    return false;
  }
  liner::pq::PGconn* conn = pq->PQconnectdb(url.c_str());
  if (pq->PQstatus(conn) != liner::pq::CONNECTION_OK) {
    ADD_FAILURE() << "connecting to " << url << ": " << pq->PQerrorMessage(conn);
    pq->PQfinish(conn);
    return false;
  }
  liner::pq::PGresult* r = pq->PQexec(conn, sql.c_str());
  liner::pq::ExecStatusType st = pq->PQresultStatus(r);
  bool ok = st == liner::pq::PGRES_COMMAND_OK || st == liner::pq::PGRES_TUPLES_OK;
  if (!ok) ADD_FAILURE() << sql << ": " << pq->PQresultErrorMessage(r);
  if (ok && rows) {
    rows->clear();
    for (int i = 0; i < pq->PQntuples(r); ++i) {
      std::vector<std::string> row;
      for (int j = 0; j < pq->PQnfields(r); ++j) row.push_back(pq->PQgetvalue(r, i, j));
      rows->push_back(std::move(row));
    }
  }
  pq->PQclear(r);
  pq->PQfinish(conn);
  return ok;
}

std::string fresh_postgres_database() {
  // The databases of earlier tests are dropped; the current test's stay until it is over.
  static std::vector<std::string> made;
  static std::string made_by;
  static int count = 0;
  const std::string base = postgres_url();
  if (base.empty()) return {};
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string current = test ? std::string(test->test_suite_name()) + "." + test->name() : std::string();
  if (current != made_by) {
    for (const auto& db : made) postgres_exec(base, "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    made.clear();
    made_by = current;
  }
  const std::string db = "liner_test_" + std::to_string(::getpid()) + "_" + std::to_string(++count);
  if (!postgres_exec(base, "CREATE DATABASE " + db)) return {};
  made.push_back(db);
  return postgres_database_url(base, db);
}

}  // namespace testing_support
