// The bad-input table of include/liner.h: every C function with NULL, empty, invalid UTF-8,
// embedded NUL, huge sizes, calls on NULL / deleted / made-up handles, double delete and calls
// made from inside a callback. Each row states the documented result and error code; none may
// crash. (Run under ASan/UBSan with leak detection by scripts/sanitize.sh: none may leak.)
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "liner.h"
#include "test_support.hpp"

using testing_support::redis;
using testing_support::wait_for;

namespace {

void ignore_msg(const char*, const char*, const char*, size_t, lnr_uData) {}
void ignore_status(int, const char*, const char*, const char*, lnr_uData) {}
void ignore_log(const char*, lnr_uData) {}
void ignore_addr(const char*, const char*, lnr_uData) {}
void ignore_pending(const char*, const char*, const char*, long long, lnr_uData) {}

// Invalid UTF-8, one per kind of defect.
const char* const kBadUtf8[] = {
    "\xff",              // byte never valid
    "ok\xfe",            // invalid after valid text
    "\xc0\xaf",          // overlong '/'
    "\xe0\x80\xaf",      // overlong, 3 bytes
    "\xed\xa0\x80",      // UTF-16 surrogate
    "\xf4\x90\x80\x80",  // above U+10FFFF
    "\xe2\x82",          // truncated sequence
    "\x80",              // lone continuation byte
    "\xf8\x88\x80\x80\x80",  // 5-byte form
};

// A result: what a function returned, as a number (BOOL, pointer != NULL, count).
struct Row {
  const char* function;
  const char* input;
  std::function<long long()> call;
  long long result;  // expected return value
  int code;          // expected lnr_last_error_code(client) afterwards (-1: not checked)
};

void check(lnr_hClient c, const std::vector<Row>& rows) {
  for (const Row& r : rows) {
    SCOPED_TRACE(std::string(r.function) + " with " + r.input);
    EXPECT_EQ(r.call(), r.result);
    if (r.code >= 0) {
      EXPECT_EQ(lnr_last_error_code(c), r.code);
      if (r.code != LNR_OK && c) {
        const char* m = lnr_last_error_message(c);
        ASSERT_NE(m, nullptr);
        EXPECT_STRNE(m, "") << "an error without a message";
      }
    }
  }
}

long long b(BOOL v) { return v == TRUE ? 1 : v == FALSE ? 0 : 100 + int(v); }  // 0/1 only
long long p(const void* v) { return v ? 1 : 0; }

class Table : public ::testing::Test {
 protected:
  void SetUp() override {
    redis().flush();
    c = lnr_new_client_redis("tbl_u", "tbl_topic", "127.0.0.1:0", redis().url().c_str());
    ASSERT_NE(c, nullptr) << lnr_last_create_error();
  }
  void TearDown() override {
    if (c) EXPECT_EQ(lnr_delete_client(c), TRUE);
    if (peer) EXPECT_EQ(lnr_delete_client(peer), TRUE);
  }
  void run_with_peer() {
    ASSERT_EQ(lnr_run(c, ignore_msg, nullptr), TRUE);
    peer = lnr_new_client_redis("tbl_peer", "tbl_peer_topic", "127.0.0.1:0", redis().url().c_str());
    ASSERT_NE(peer, nullptr);
    ASSERT_EQ(lnr_run(peer, ignore_msg, nullptr), TRUE);
  }
  lnr_hClient c = nullptr;
  lnr_hClient peer = nullptr;
};

}  // namespace

// ---- creation ------------------------------------------------------------------------------

TEST(CapiTableCreate, EveryCreationArgument) {
  std::string url = redis().url();
  const char* u = url.c_str();
  struct Case {
    const char *input, *name, *topic, *host, *url;
    int code;
  };
  std::vector<Case> cases = {
      {"NULL unique_name", nullptr, "t", "127.0.0.1:0", u, LNR_ERR_INVALID_ARG},
      {"NULL topic", "n", nullptr, "127.0.0.1:0", u, LNR_ERR_INVALID_ARG},
      {"NULL localhost", "n", "t", nullptr, u, LNR_ERR_INVALID_ARG},
      {"NULL redis_url", "n", "t", "127.0.0.1:0", nullptr, LNR_ERR_INVALID_ARG},
      {"empty unique_name", "", "t", "127.0.0.1:0", u, LNR_ERR_INVALID_ARG},
      {"empty topic", "n", "", "127.0.0.1:0", u, LNR_ERR_INVALID_ARG},
      {"empty localhost", "n", "t", "", u, LNR_ERR_INVALID_ARG},
      {"empty redis_url", "n", "t", "127.0.0.1:0", "", LNR_ERR_INVALID_ARG},
      {"reserved topic", "n", "__#internal_channel", "127.0.0.1:0", u, LNR_ERR_INTERNAL_TOPIC},
      {"localhost without port", "n", "t", "127.0.0.1", u, LNR_ERR_INVALID_ARG},
      {"localhost with empty port", "n", "t", "127.0.0.1:", u, LNR_ERR_INVALID_ARG},
      {"localhost without host", "n", "t", ":2255", u, LNR_ERR_INVALID_ARG},
      {"localhost port 65536", "n", "t", "127.0.0.1:65536", u, LNR_ERR_INVALID_ARG},
      {"localhost port not a number", "n", "t", "127.0.0.1:http", u, LNR_ERR_INVALID_ARG},
      {"localhost huge port", "n", "t", "127.0.0.1:99999999999999999999", u, LNR_ERR_INVALID_ARG},
      {"localhost unbracketed IPv6", "n", "t", "::1:2255", u, LNR_ERR_INVALID_ARG},
      {"localhost unclosed bracket", "n", "t", "[::1:2255", u, LNR_ERR_INVALID_ARG},
      {"url with other scheme", "n", "t", "127.0.0.1:0", "http://127.0.0.1:6379", LNR_ERR_INVALID_ARG},
      {"url without host", "n", "t", "127.0.0.1:0", "redis://:6379/0", LNR_ERR_INVALID_ARG},
      {"url with bad port", "n", "t", "127.0.0.1:0", "redis://127.0.0.1:0/0", LNR_ERR_INVALID_ARG},
      {"url with bad db", "n", "t", "127.0.0.1:0", "redis://127.0.0.1:6379/x", LNR_ERR_INVALID_ARG},
      {"url with relative socket path", "n", "t", "127.0.0.1:0", "unix://sock", LNR_ERR_INVALID_ARG},
      {"url naming a missing socket", "n", "t", "127.0.0.1:0", "unix:///nonexistent/redis.sock", LNR_ERR_STORE},
  };
  for (const char* bad : kBadUtf8) {
    cases.push_back({"invalid UTF-8 unique_name", bad, "t", "127.0.0.1:0", u, LNR_ERR_INVALID_ARG});
    cases.push_back({"invalid UTF-8 topic", "n", bad, "127.0.0.1:0", u, LNR_ERR_INVALID_ARG});
    cases.push_back({"invalid UTF-8 localhost", "n", "t", bad, u, LNR_ERR_INVALID_ARG});
    cases.push_back({"invalid UTF-8 redis_url", "n", "t", "127.0.0.1:0", bad, LNR_ERR_INVALID_ARG});
  }
  std::string huge(1 << 20, 'n');  // 1 MiB name: accepted or refused, never a crash
  for (const auto& k : cases) {
    SCOPED_TRACE(k.input);
    for (auto make : {lnr_new_client_redis, lnr_new_client}) {
      EXPECT_EQ(make(k.name, k.topic, k.host, k.url), nullptr);
      EXPECT_EQ(lnr_last_create_error_code(), k.code);
      EXPECT_STRNE(lnr_last_create_error(), "");
    }
  }
  lnr_hClient big = lnr_new_client_redis(huge.c_str(), huge.c_str(), "127.0.0.1:0", u);
  if (big) {
    EXPECT_EQ(lnr_delete_client(big), TRUE);
  } else {
    EXPECT_NE(lnr_last_create_error_code(), LNR_OK);
  }
  // The SQLite constructor: NULL and empty arguments, and receivers_json that is not
  // liner_broker's catalogue (checked before the file is touched: the path does not exist).
  const char* db = "/nonexistent-dir/x.db";
  struct SqliteCase {
    const char *name, *topic, *host, *path, *receivers;
  } sqlite_cases[] = {
      {nullptr, "t", "127.0.0.1:0", db, ""},     {"n", "t", "127.0.0.1:0", nullptr, ""},
      {"n", "t", "127.0.0.1:0", "", ""},          {"n", "t", "127.0.0.1:0", db, "not-json"},
      {"n", "t", "127.0.0.1:0", db, "{}"},        {"n", "t", "127.0.0.1:0", db, "[{\"topic\":\"a\"}]"},
      {"n", "t", "127.0.0.1:0", db, "[1]"},       {"n", "t", "127.0.0.1:0", db, "[] x"},
      {"n", "t", "127.0.0.1:0", db, kBadUtf8[0]},
  };
  for (const auto& k : sqlite_cases) {
    EXPECT_EQ(lnr_new_client_sqlite(k.name, k.topic, k.host, k.path, k.receivers), nullptr);
    EXPECT_EQ(lnr_last_create_error_code(), LNR_ERR_INVALID_ARG) << lnr_last_create_error();
  }
  // A success resets the creation error.
  lnr_hClient ok = lnr_new_client_redis("n", "t", "127.0.0.1:0", u);
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(lnr_last_create_error_code(), LNR_OK);
  EXPECT_STREQ(lnr_last_create_error(), "");
  EXPECT_EQ(lnr_delete_client(ok), TRUE);
}

// ---- handles -------------------------------------------------------------------------------

TEST(CapiTableHandles, NullDeletedAndMadeUpHandlesAreRefusedByEveryFunction) {
  lnr_hClient deleted = lnr_new_client_redis("h_u", "h_t", "127.0.0.1:0", redis().url().c_str());
  ASSERT_NE(deleted, nullptr);
  ASSERT_EQ(lnr_run(deleted, ignore_msg, nullptr), TRUE);
  ASSERT_EQ(lnr_delete_client(deleted), TRUE);
  lnr_stats_t st;
  st.size = sizeof st;
  struct H {
    const char* input;
    lnr_hClient h;
  } handles[] = {{"NULL handle", nullptr},
                 {"deleted handle", deleted},
                 {"made-up handle", reinterpret_cast<lnr_hClient>(uintptr_t(0xdeadbeef))},
                 {"pointer to stack", reinterpret_cast<lnr_hClient>(&st)}};
  const char* const one_data[] = {"d"};
  const size_t one_size[] = {1};
  for (const auto& k : handles) {
    lnr_hClient h = k.h;
    std::vector<Row> rows = {
        {"lnr_run", k.input, [&] { return b(lnr_run(h, ignore_msg, nullptr)); }, 0, LNR_OK},
        {"lnr_send_to", k.input, [&] { return b(lnr_send_to(h, "x", "d", 1, TRUE)); }, 0, LNR_OK},
        {"lnr_send_all", k.input, [&] { return b(lnr_send_all(h, "x", "d", 1, TRUE)); }, 0, LNR_OK},
        {"lnr_send_to_many", k.input, [&] { return b(lnr_send_to_many(h, "x", one_data, one_size, 1, TRUE, nullptr)); }, 0, LNR_OK},
        {"lnr_subscribe", k.input, [&] { return b(lnr_subscribe(h, "x")); }, 0, LNR_OK},
        {"lnr_unsubscribe", k.input, [&] { return b(lnr_unsubscribe(h, "x")); }, 0, LNR_OK},
        {"lnr_refresh_address_topic", k.input, [&] { return b(lnr_refresh_address_topic(h, "x")); }, 0, LNR_OK},
        {"lnr_clear_stored_messages", k.input, [&] { return b(lnr_clear_stored_messages(h)); }, 0, LNR_OK},
        {"lnr_clear_addresses_of_topic", k.input, [&] { return b(lnr_clear_addresses_of_topic(h)); }, 0, LNR_OK},
        {"lnr_delete_client", k.input, [&] { return b(lnr_delete_client(h)); }, 0, LNR_OK},
        {"lnr_last_error_message", k.input, [&] { return p(lnr_last_error_message(h)); }, 0, LNR_OK},
        {"lnr_bound_listen_addr", k.input, [&] { return p(lnr_bound_listen_addr(h)); }, 0, LNR_OK},
        {"lnr_stop", k.input, [&] { return b(lnr_stop(h)); }, 0, LNR_OK},
        {"lnr_is_running", k.input, [&] { return b(lnr_is_running(h)); }, 0, LNR_OK},
        {"lnr_set_status_cb", k.input, [&] { return b(lnr_set_status_cb(h, ignore_status, nullptr)); }, 0, LNR_OK},
        {"lnr_list_addresses", k.input, [&] { return b(lnr_list_addresses(h, "x", ignore_addr, nullptr)); }, 0, LNR_OK},
        {"lnr_pending_count", k.input, [&] { return lnr_pending_count(h); }, -1, LNR_OK},
        {"lnr_pending_by_peer", k.input, [&] { return b(lnr_pending_by_peer(h, ignore_pending, nullptr)); }, 0, LNR_OK},
        {"lnr_set_advertise_addr", k.input, [&] { return b(lnr_set_advertise_addr(h, "127.0.0.1:0")); }, 0, LNR_OK},
        {"lnr_advertise_addr", k.input, [&] { return p(lnr_advertise_addr(h)); }, 0, LNR_OK},
        {"lnr_published_addr", k.input, [&] { return p(lnr_published_addr(h)); }, 0, LNR_OK},
        {"lnr_set_handover", k.input, [&] { return b(lnr_set_handover(h, FALSE)); }, 0, LNR_OK},
        {"lnr_handover", k.input, [&] { return lnr_handover(h); }, -1, LNR_OK},
        {"lnr_stats", k.input, [&] { return b(lnr_stats(h, &st)); }, 0, LNR_OK},
    };
    check(h, rows);
    EXPECT_EQ(lnr_last_error_code(h), LNR_OK);
  }
}

TEST(CapiTableHandles, DoubleDeleteAndDeleteOfAStoppedClient) {
  lnr_hClient h = lnr_new_client_redis("dd_u", "dd_t", "127.0.0.1:0", redis().url().c_str());
  ASSERT_NE(h, nullptr);
  ASSERT_EQ(lnr_run(h, ignore_msg, nullptr), TRUE);
  EXPECT_EQ(lnr_stop(h), TRUE);
  EXPECT_EQ(lnr_stop(h), TRUE);  // idempotent
  EXPECT_EQ(lnr_delete_client(h), TRUE);
  EXPECT_EQ(lnr_delete_client(h), FALSE);
  EXPECT_EQ(lnr_delete_client(h), FALSE);
}

// ---- string arguments ----------------------------------------------------------------------

TEST_F(Table, TopicArgumentsOfEveryFunctionTakingOne) {
  run_with_peer();
  const char* const one_data[] = {"d"};
  const size_t one_size[] = {1};
  std::vector<std::pair<std::string, const char*>> bad = {{"NULL", nullptr}, {"empty", ""}};
  for (const char* s : kBadUtf8) bad.push_back({"invalid UTF-8 " + testing_support::to_hex(s), s});
  for (const auto& [name, t] : bad) {
    const char* in = name.c_str();
    check(c, {
        {"lnr_send_to", in, [&] { return b(lnr_send_to(c, t, "d", 1, TRUE)); }, 0, LNR_ERR_INVALID_ARG},
        {"lnr_send_all", in, [&] { return b(lnr_send_all(c, t, "d", 1, FALSE)); }, 0, LNR_ERR_INVALID_ARG},
        {"lnr_send_to_many", in, [&] { return b(lnr_send_to_many(c, t, one_data, one_size, 1, TRUE, nullptr)); }, 0, LNR_ERR_INVALID_ARG},
        {"lnr_subscribe", in, [&] { return b(lnr_subscribe(c, t)); }, 0, LNR_ERR_INVALID_ARG},
        {"lnr_unsubscribe", in, [&] { return b(lnr_unsubscribe(c, t)); }, 0, LNR_ERR_INVALID_ARG},
        {"lnr_refresh_address_topic", in, [&] { return b(lnr_refresh_address_topic(c, t)); }, 0, LNR_ERR_INVALID_ARG},
        {"lnr_list_addresses", in, [&] { return b(lnr_list_addresses(c, t, ignore_addr, nullptr)); }, 0, LNR_ERR_INVALID_ARG},
    });
  }
  const char* own = "tbl_topic";
  const char* reserved = "__#internal_channel";
  check(c, {
      {"lnr_send_to", "own topic", [&] { return b(lnr_send_to(c, own, "d", 1, TRUE)); }, 0, LNR_ERR_SELF_TOPIC},
      {"lnr_send_all", "own topic", [&] { return b(lnr_send_all(c, own, "d", 1, TRUE)); }, 0, LNR_ERR_SELF_TOPIC},
      {"lnr_send_to_many", "own topic", [&] { return b(lnr_send_to_many(c, own, one_data, one_size, 1, TRUE, nullptr)); }, 0, LNR_ERR_SELF_TOPIC},
      {"lnr_send_to_many", "reserved topic", [&] { return b(lnr_send_to_many(c, reserved, one_data, one_size, 1, TRUE, nullptr)); }, 0, LNR_ERR_INTERNAL_TOPIC},
      {"lnr_send_to_many", "topic nobody serves", [&] { return b(lnr_send_to_many(c, "nobody", one_data, one_size, 1, TRUE, nullptr)); }, 0, LNR_ERR_NO_ADDR},
      {"lnr_subscribe", "own topic", [&] { return b(lnr_subscribe(c, own)); }, 0, LNR_ERR_SELF_TOPIC},
      {"lnr_unsubscribe", "own topic", [&] { return b(lnr_unsubscribe(c, own)); }, 0, LNR_ERR_SELF_TOPIC},
      {"lnr_send_to", "reserved topic", [&] { return b(lnr_send_to(c, reserved, "d", 1, TRUE)); }, 0, LNR_ERR_INTERNAL_TOPIC},
      {"lnr_subscribe", "reserved topic", [&] { return b(lnr_subscribe(c, reserved)); }, 0, LNR_ERR_INTERNAL_TOPIC},
      {"lnr_unsubscribe", "reserved topic", [&] { return b(lnr_unsubscribe(c, reserved)); }, 0, LNR_ERR_INTERNAL_TOPIC},
      {"lnr_send_to", "topic nobody serves", [&] { return b(lnr_send_to(c, "nobody", "d", 1, TRUE)); }, 0, LNR_ERR_NO_ADDR},
      {"lnr_send_all", "topic nobody serves", [&] { return b(lnr_send_all(c, "nobody", "d", 1, TRUE)); }, 0, LNR_ERR_NO_ADDR},
      {"lnr_refresh_address_topic", "topic nobody serves", [&] { return b(lnr_refresh_address_topic(c, "nobody")); }, 0, LNR_ERR_NO_ADDR},
      {"lnr_list_addresses", "topic nobody serves", [&] { return b(lnr_list_addresses(c, "nobody", ignore_addr, nullptr)); }, 1, LNR_OK},
  });
  // A 1 MiB topic name: a valid string; refused or served, never a crash.
  std::string long_topic(1 << 20, 't');
  EXPECT_EQ(lnr_send_to(c, long_topic.c_str(), "d", 1, TRUE), FALSE);
  EXPECT_EQ(lnr_last_error_code(c), LNR_ERR_NO_ADDR);
}

TEST_F(Table, EmbeddedNulEndsACStringAndIsKeptInsideAPayload) {
  // C strings end at the first NUL: "tbl_peer_topic\0junk" is the topic "tbl_peer_topic".
  std::atomic<int> got{0};
  std::string seen;
  std::mutex mu;
  ASSERT_EQ(lnr_run(c, ignore_msg, nullptr), TRUE);
  peer = lnr_new_client_redis("tbl_peer", "tbl_peer_topic", "127.0.0.1:0", redis().url().c_str());
  struct Ctx {
    std::atomic<int>* got;
    std::string* seen;
    std::mutex* mu;
  } ctx{&got, &seen, &mu};
  ASSERT_EQ(lnr_run(peer,
                    [](const char*, const char*, const char* data, size_t size, lnr_uData u) {
                      auto* x = static_cast<Ctx*>(u);
                      std::lock_guard<std::mutex> lock(*x->mu);
                      x->seen->assign(data, size);
                      ++*x->got;
                    },
                    &ctx),
            TRUE);
  const char payload[] = {'\0', 'a', '\0', '\0', 'b', '\0'};
  EXPECT_EQ(lnr_send_to(c, "tbl_peer_topic\0junk", payload, sizeof payload, TRUE), TRUE);
  ASSERT_TRUE(wait_for([&] { return got.load() == 1; }, std::chrono::seconds(5)));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen, std::string(payload, sizeof payload));
}

// ---- sizes and data ------------------------------------------------------------------------

TEST_F(Table, DataPointerAndSize) {
  run_with_peer();
  const char one = 'x';
  size_t max = lnr_get_max_message_size();
  std::vector<Row> rows;
  for (auto [fn, send] : {std::make_pair("lnr_send_to", lnr_send_to), std::make_pair("lnr_send_all", lnr_send_all)}) {
    auto f = send;
    rows.push_back({fn, "size 0", [=] { return b(f(c, "tbl_peer_topic", &one, 0, TRUE)); }, 0, LNR_ERR_INVALID_ARG});
    rows.push_back({fn, "NULL data, size 0", [=] { return b(f(c, "tbl_peer_topic", nullptr, 0, TRUE)); }, 0, LNR_ERR_INVALID_ARG});
    rows.push_back({fn, "NULL data, size 5", [=] { return b(f(c, "tbl_peer_topic", nullptr, 5, TRUE)); }, 0, LNR_ERR_INVALID_ARG});
    // Sizes larger than the buffer: refused before a byte is read (ASan would see a read).
    rows.push_back({fn, "max message size + 1", [=] { return b(f(c, "tbl_peer_topic", &one, max + 1, TRUE)); }, 0, LNR_ERR_INVALID_ARG});
    rows.push_back({fn, "SIZE_MAX", [=] { return b(f(c, "tbl_peer_topic", &one, SIZE_MAX, TRUE)); }, 0, LNR_ERR_INVALID_ARG});
    rows.push_back({fn, "SIZE_MAX, NULL data", [=] { return b(f(c, "tbl_peer_topic", nullptr, SIZE_MAX, FALSE)); }, 0, LNR_ERR_INVALID_ARG});
    // Any non-zero low byte means at-least-once; other bits are ignored.
    rows.push_back({fn, "at_least_once = 0x7fffffff", [=] { return b(f(c, "tbl_peer_topic", &one, 1, BOOL(0x7fffffff))); }, 1, LNR_OK});
    rows.push_back({fn, "at_least_once = -1", [=] { return b(f(c, "tbl_peer_topic", &one, 1, BOOL(-1))); }, 1, LNR_OK});
  }
  // lnr_send_to_many: the arrays and every entry; a bad entry refuses the batch, *queued 0.
  const char* datas[] = {"a", "b", "c"};
  size_t sizes[] = {1, 1, 1};
  static size_t queued = 99;
  auto many = [&](const char* const* d, const size_t* z, size_t n) {
    queued = 99;
    return b(lnr_send_to_many(c, "tbl_peer_topic", d, z, n, TRUE, &queued));
  };
  auto with = [&](size_t i, const char* d, size_t z) {
    return [=]() mutable {
      const char* dd[] = {datas[0], datas[1], datas[2]};
      size_t zz[] = {sizes[0], sizes[1], sizes[2]};
      dd[i] = d;
      zz[i] = z;
      long long r = many(dd, zz, 3);
      return queued == 0 ? r : 100 + r;  // nothing may be queued
    };
  };
  const char* m = "lnr_send_to_many";
  rows.push_back({m, "NULL data array", [&] { return many(nullptr, sizes, 3); }, 0, LNR_ERR_INVALID_ARG});
  rows.push_back({m, "NULL sizes array", [&] { return many(datas, nullptr, 3); }, 0, LNR_ERR_INVALID_ARG});
  rows.push_back({m, "NULL arrays, count 0", [&] { return many(nullptr, nullptr, 0) + long(queued); }, 1, LNR_OK});
  rows.push_back({m, "size 0 in the middle", with(1, "b", 0), 0, LNR_ERR_INVALID_ARG});
  rows.push_back({m, "NULL entry, size 1", with(2, nullptr, 1), 0, LNR_ERR_INVALID_ARG});
  rows.push_back({m, "max message size + 1 at the end", with(2, &one, max + 1), 0, LNR_ERR_INVALID_ARG});
  rows.push_back({m, "SIZE_MAX first", with(0, &one, SIZE_MAX), 0, LNR_ERR_INVALID_ARG});
  rows.push_back({m, "count SIZE_MAX", [&] { return many(datas, sizes, SIZE_MAX); }, 0, LNR_ERR_INVALID_ARG});
  rows.push_back({m, "three good ones", [&] { return many(datas, sizes, 3) + long(queued); }, 4, LNR_OK});
  rows.push_back({m, "NULL queued", [&] { return b(lnr_send_to_many(c, "tbl_peer_topic", datas, sizes, 3, BOOL(-1), nullptr)); }, 1, LNR_OK});
  check(c, rows);
  // A lowered limit applies at once; the payload above it is refused, at it accepted.
  ASSERT_EQ(lnr_set_max_message_size(16), TRUE);
  std::string seventeen(17, 's');
  check(c, {
      {"lnr_send_to", "17 bytes over a 16-byte limit", [&] { return b(lnr_send_to(c, "tbl_peer_topic", seventeen.data(), 17, TRUE)); }, 0, LNR_ERR_INVALID_ARG},
      {"lnr_send_to", "16 bytes at a 16-byte limit", [&] { return b(lnr_send_to(c, "tbl_peer_topic", seventeen.data(), 16, TRUE)); }, 1, LNR_OK},
  });
  ASSERT_EQ(lnr_set_max_message_size(max), TRUE);
}

TEST(CapiTableLimits, ProcessWideLimitsRefuseNonsenseAndKeepTheirValue) {
  size_t msg = lnr_get_max_message_size(), thr = lnr_get_compress_threshold();
  size_t q = lnr_get_max_send_queue(), qb = lnr_get_max_send_queue_bytes();
  std::vector<Row> rows = {
      {"lnr_set_max_message_size", "0", [] { return b(lnr_set_max_message_size(0)); }, 0, -1},
      {"lnr_set_max_message_size", "1 GiB (over the 1 GiB - 21 frame bound)", [] { return b(lnr_set_max_message_size(size_t(1) << 30)); }, 0, -1},
      {"lnr_set_max_message_size", "SIZE_MAX", [] { return b(lnr_set_max_message_size(SIZE_MAX)); }, 0, -1},
      {"lnr_set_compress_threshold", "0", [] { return b(lnr_set_compress_threshold(0)); }, 0, -1},
      {"lnr_set_max_send_queue_bytes", "0", [] { return b(lnr_set_max_send_queue_bytes(0)); }, 0, -1},
      {"lnr_set_store_wait", "an hour and 1 ms", [] { return b(lnr_set_store_wait(3600 * 1000 + 1)); }, 0, -1},
      {"lnr_set_store_wait", "SIZE_MAX", [] { return b(lnr_set_store_wait(SIZE_MAX)); }, 0, -1},
      {"lnr_set_lease", "0", [] { return b(lnr_set_lease(0)); }, 0, -1},
      {"lnr_set_lease", "2999 ms (under 3 s)", [] { return b(lnr_set_lease(2999)); }, 0, -1},
      {"lnr_set_lease", "SIZE_MAX", [] { return b(lnr_set_lease(SIZE_MAX)); }, 0, -1},
  };
  check(nullptr, rows);
  EXPECT_EQ(lnr_get_store_wait(), 0u);
  EXPECT_EQ(lnr_get_lease(), 7000u);
  EXPECT_EQ(lnr_get_max_message_size(), msg);
  EXPECT_EQ(lnr_get_compress_threshold(), thr);
  EXPECT_EQ(lnr_get_max_send_queue_bytes(), qb);
  // Accepted extremes, then restored.
  EXPECT_EQ(lnr_set_max_message_size(1), TRUE);
  EXPECT_EQ(lnr_set_max_message_size((size_t(1) << 30) - 21), TRUE);
  EXPECT_EQ(lnr_set_compress_threshold(SIZE_MAX), TRUE);
  EXPECT_EQ(lnr_set_max_send_queue(SIZE_MAX), TRUE);
  EXPECT_EQ(lnr_set_max_send_queue(0), TRUE);  // 0 = no count limit
  EXPECT_EQ(lnr_set_max_send_queue_bytes(SIZE_MAX), TRUE);
  EXPECT_EQ(lnr_set_store_wait(3600 * 1000), TRUE);
  EXPECT_EQ(lnr_set_store_wait(0), TRUE);
  EXPECT_EQ(lnr_set_lease(3000), TRUE);
  EXPECT_EQ(lnr_set_lease(3600 * 1000), TRUE);
  EXPECT_EQ(lnr_set_lease(7000), TRUE);
  EXPECT_EQ(lnr_set_max_message_size(msg), TRUE);
  EXPECT_EQ(lnr_set_compress_threshold(thr), TRUE);
  EXPECT_EQ(lnr_set_max_send_queue(q), TRUE);
  EXPECT_EQ(lnr_set_max_send_queue_bytes(qb), TRUE);
  EXPECT_STRNE(lnr_version(), "");
}

// ---- callbacks and out-parameters ----------------------------------------------------------

TEST_F(Table, NullCallbacksAndOutParameters) {
  lnr_stats_t st;
  check(c, {
      {"lnr_run", "NULL receive_cb", [&] { return b(lnr_run(c, nullptr, nullptr)); }, 0, LNR_ERR_INVALID_ARG},
      {"lnr_list_addresses", "NULL cb", [&] { return b(lnr_list_addresses(c, "t", nullptr, nullptr)); }, 0, LNR_ERR_INVALID_ARG},
      {"lnr_pending_by_peer", "NULL cb", [&] { return b(lnr_pending_by_peer(c, nullptr, nullptr)); }, 0, LNR_ERR_INVALID_ARG},
      {"lnr_stats", "NULL out", [&] { return b(lnr_stats(c, nullptr)); }, 0, LNR_ERR_INVALID_ARG},
      {"lnr_stats", "size 0", [&] { st.size = 0; return b(lnr_stats(c, &st)); }, 0, LNR_ERR_INVALID_ARG},
      {"lnr_stats", "size 4", [&] { st.size = 4; return b(lnr_stats(c, &st)); }, 0, LNR_ERR_INVALID_ARG},
      {"lnr_set_status_cb", "NULL cb (clears)", [&] { return b(lnr_set_status_cb(c, nullptr, nullptr)); }, 1, LNR_OK},
      {"lnr_set_log_cb", "NULL cb (restores stderr)", [&] { return b(lnr_set_log_cb(nullptr, nullptr)); }, 1, -1},
      {"lnr_set_log_cb", "a cb", [&] { return b(lnr_set_log_cb(ignore_log, nullptr)); }, 1, -1},
  });
  EXPECT_EQ(lnr_set_log_cb(nullptr, nullptr), TRUE);
  EXPECT_FALSE(lnr_is_running(c));  // the refused run did not start anything
  // A shorter (older) stats struct: only its bytes are written.
  unsigned char buf[sizeof(lnr_stats_t) + 16];
  std::memset(buf, 0xab, sizeof buf);
  size_t short_size = sizeof(size_t) + 2 * sizeof(unsigned long long);
  std::memcpy(buf, &short_size, sizeof short_size);
  EXPECT_EQ(lnr_stats(c, reinterpret_cast<lnr_stats_t*>(buf)), TRUE);
  for (size_t i = short_size; i < sizeof buf; ++i) ASSERT_EQ(buf[i], 0xab) << "byte " << i << " written";
  // A longer (newer) one: nothing beyond sizeof(lnr_stats_t) is written.
  size_t long_size = sizeof buf;
  std::memcpy(buf, &long_size, sizeof long_size);
  EXPECT_EQ(lnr_stats(c, reinterpret_cast<lnr_stats_t*>(buf)), TRUE);
  for (size_t i = sizeof(lnr_stats_t); i < sizeof buf; ++i) ASSERT_EQ(buf[i], 0xab) << "byte " << i << " written";
}

TEST_F(Table, AdvertiseAddress) {
  std::vector<Row> rows;
  for (const char* bad : {"not-an-address", "localhost:5000", "127.0.0.1", "127.0.0.1:65536",
                          "1.2.3.4:-1", "[::1]", "::1:80", "127.0.0.1:80 "}) {
    rows.push_back({"lnr_set_advertise_addr", bad, [=] { return b(lnr_set_advertise_addr(c, bad)); }, 0, LNR_ERR_INVALID_ARG});
  }
  for (const char* bad : kBadUtf8)
    rows.push_back({"lnr_set_advertise_addr", "invalid UTF-8", [=] { return b(lnr_set_advertise_addr(c, bad)); }, 0, LNR_ERR_INVALID_ARG});
  rows.push_back({"lnr_set_advertise_addr", "NULL (clears)", [&] { return b(lnr_set_advertise_addr(c, nullptr)); }, 1, LNR_OK});
  rows.push_back({"lnr_set_advertise_addr", "empty (clears)", [&] { return b(lnr_set_advertise_addr(c, "")); }, 1, LNR_OK});
  rows.push_back({"lnr_advertise_addr", "cleared", [&] { return p(lnr_advertise_addr(c)); }, 0, -1});
  rows.push_back({"lnr_published_addr", "not running", [&] { return p(lnr_published_addr(c)); }, 0, -1});
  rows.push_back({"lnr_bound_listen_addr", "never run", [&] { return p(lnr_bound_listen_addr(c)); }, 0, -1});
  check(c, rows);
  ASSERT_EQ(lnr_run(c, ignore_msg, nullptr), TRUE);
  check(c, {{"lnr_set_advertise_addr", "while running", [&] { return b(lnr_set_advertise_addr(c, "127.0.0.1:0")); }, 0, LNR_ERR_ALREADY_RUNNING}});
}

// ---- state ---------------------------------------------------------------------------------

TEST_F(Table, CallsInTheWrongState) {
  check(c, {
      {"lnr_send_to", "before run", [&] { return b(lnr_send_to(c, "x", "d", 1, TRUE)); }, 0, LNR_ERR_NOT_RUNNING},
      {"lnr_send_all", "before run", [&] { return b(lnr_send_all(c, "x", "d", 1, TRUE)); }, 0, LNR_ERR_NOT_RUNNING},
      {"lnr_stop", "before run", [&] { return b(lnr_stop(c)); }, 1, LNR_OK},
      {"lnr_clear_stored_messages", "before run", [&] { return b(lnr_clear_stored_messages(c)); }, 1, LNR_OK},
      {"lnr_clear_addresses_of_topic", "before run", [&] { return b(lnr_clear_addresses_of_topic(c)); }, 1, LNR_OK},
      {"lnr_pending_count", "before run", [&] { return lnr_pending_count(c); }, 0, LNR_OK},
  });
  ASSERT_EQ(lnr_run(c, ignore_msg, nullptr), TRUE);
  check(c, {
      {"lnr_run", "while running", [&] { return b(lnr_run(c, ignore_msg, nullptr)); }, 1, LNR_OK},
      {"lnr_clear_stored_messages", "while running", [&] { return b(lnr_clear_stored_messages(c)); }, 0, LNR_ERR_CLEAR_WHILE_RUNNING},
      {"lnr_clear_addresses_of_topic", "while running", [&] { return b(lnr_clear_addresses_of_topic(c)); }, 0, LNR_ERR_CLEAR_WHILE_RUNNING},
  });
  ASSERT_EQ(lnr_stop(c), TRUE);
  check(c, {
      {"lnr_send_to", "after stop", [&] { return b(lnr_send_to(c, "x", "d", 1, TRUE)); }, 0, LNR_ERR_NOT_RUNNING},
      {"lnr_is_running", "after stop", [&] { return b(lnr_is_running(c)); }, 0, LNR_OK},
      {"lnr_clear_stored_messages", "after stop", [&] { return b(lnr_clear_stored_messages(c)); }, 1, LNR_OK},
      {"lnr_published_addr", "after stop", [&] { return p(lnr_published_addr(c)); }, 0, -1},
      {"lnr_bound_listen_addr", "after stop (kept)", [&] { return p(lnr_bound_listen_addr(c)); }, 1, -1},
  });
}

// ---- from inside the callback --------------------------------------------------------------

namespace {

struct Inside {
  lnr_hClient self = nullptr;
  lnr_hClient other = nullptr;
  std::atomic<bool> done{false};
  std::vector<std::pair<std::string, long long>> results;  // (call, result)
  std::vector<std::pair<std::string, int>> codes;
};

void call_everything_inside(const char*, const char*, const char*, size_t, lnr_uData u) {
  auto* in = static_cast<Inside*>(u);
  if (in->done) return;
  auto note = [&](const char* what, long long r) {
    in->results.push_back({what, r});
    in->codes.push_back({what, lnr_last_error_code(in->self)});
  };
  note("lnr_delete_client(self)", b(lnr_delete_client(in->self)));
  note("lnr_stop(self)", b(lnr_stop(in->self)));
  note("lnr_run(self)", b(lnr_run(in->self, ignore_msg, nullptr)));
  note("lnr_set_advertise_addr(self)", b(lnr_set_advertise_addr(in->self, "127.0.0.1:0")));
  note("lnr_send_to(self -> peer)", b(lnr_send_to(in->self, "cb_peer_topic", "r", 1, TRUE)));
  note("lnr_subscribe(self)", b(lnr_subscribe(in->self, "cb_extra")));
  note("lnr_unsubscribe(self)", b(lnr_unsubscribe(in->self, "cb_extra")));
  note("lnr_is_running(self)", b(lnr_is_running(in->self)));
  lnr_stats_t st;
  st.size = sizeof st;
  note("lnr_stats(self)", b(lnr_stats(in->self, &st)));
  note("lnr_pending_count(self)", lnr_pending_count(in->self));
  // Another client may be deleted from here.
  note("lnr_delete_client(other)", b(lnr_delete_client(in->other)));
  in->done = true;
}

}  // namespace

TEST(CapiTableCallback, EveryCallFromInsideTheReceiveCallback) {
  redis().flush();
  std::string url = redis().url();
  Inside in;
  in.self = lnr_new_client_redis("cb_self", "cb_self_topic", "127.0.0.1:0", url.c_str());
  in.other = lnr_new_client_redis("cb_other", "cb_other_topic", "127.0.0.1:0", url.c_str());
  lnr_hClient peer = lnr_new_client_redis("cb_peer", "cb_peer_topic", "127.0.0.1:0", url.c_str());
  ASSERT_TRUE(in.self && in.other && peer);
  ASSERT_EQ(lnr_run(in.other, ignore_msg, nullptr), TRUE);
  ASSERT_EQ(lnr_run(in.self, call_everything_inside, &in), TRUE);
  ASSERT_EQ(lnr_run(peer, ignore_msg, nullptr), TRUE);
  ASSERT_EQ(lnr_send_to(peer, "cb_self_topic", "go", 2, TRUE), TRUE);
  ASSERT_TRUE(wait_for([&] { return in.done.load(); }, std::chrono::seconds(10)));
  struct Expect {
    long long result;
    int code;
  };
  std::vector<Expect> expect = {
      {0, LNR_ERR_INVALID_ARG},      // delete own client: refused
      {0, LNR_ERR_INVALID_ARG},      // stop own client: refused
      {0, LNR_ERR_INVALID_ARG},      // run: refused
      {0, LNR_ERR_ALREADY_RUNNING},  // advertise address: only before run
      {1, LNR_OK},                   // send_to
      {1, LNR_OK},                   // subscribe
      {1, LNR_OK},                   // unsubscribe
      {1, LNR_OK},                   // is_running
      {1, LNR_OK},                   // stats
      {0, LNR_OK},                   // pending_count
      {1, -1},                       // delete another client
  };
  ASSERT_EQ(in.results.size(), expect.size());
  for (size_t i = 0; i < expect.size(); ++i) {
    SCOPED_TRACE(in.results[i].first);
    EXPECT_EQ(in.results[i].second, expect[i].result);
    if (expect[i].code >= 0) EXPECT_EQ(in.codes[i].second, expect[i].code);
  }
  // The client refused to die from inside and still works.
  EXPECT_EQ(lnr_is_running(in.self), TRUE);
  EXPECT_EQ(lnr_send_to(in.self, "cb_peer_topic", "after", 5, TRUE), TRUE);
  EXPECT_EQ(lnr_delete_client(in.self), TRUE);
  EXPECT_EQ(lnr_delete_client(in.other), FALSE);  // already deleted inside the callback
  EXPECT_EQ(lnr_delete_client(peer), TRUE);
}

namespace {
struct StatusInside {
  lnr_hClient self = nullptr;
  std::atomic<int> calls{0};
  std::atomic<int> delete_result{-1};
  std::atomic<int> delete_code{-1};
  std::atomic<int> stop_result{-1};
  std::atomic<int> stop_code{-1};
};

void stop_and_delete_inside(int, const char*, const char*, const char*, lnr_uData u) {
  auto* s = static_cast<StatusInside*>(u);
  if (s->calls++ != 0) return;
  s->delete_result = int(lnr_delete_client(s->self));
  s->delete_code = lnr_last_error_code(s->self);
  s->stop_result = int(lnr_stop(s->self));
  s->stop_code = lnr_last_error_code(s->self);
}
}  // namespace

TEST(CapiTableCallback, DeleteAndStopFromInsideTheStatusCallbackAreRefused) {
  // The status callback runs on the client's own sender / delivery / directory threads, which
  // stop() joins: like the receive callback, it must not be able to delete or stop its own
  // client (the header says it "must not"), and trying must not take the process down.
  redis().flush();
  std::string url = redis().url();
  StatusInside in;
  in.self = lnr_new_client_redis("scb_self", "scb_self_topic", "127.0.0.1:0", url.c_str());
  ASSERT_NE(in.self, nullptr);
  ASSERT_EQ(lnr_set_status_cb(in.self, stop_and_delete_inside, &in), TRUE);
  ASSERT_EQ(lnr_run(in.self, ignore_msg, nullptr), TRUE);
  lnr_hClient peer = lnr_new_client_redis("scb_peer", "scb_peer_topic", "127.0.0.1:0", url.c_str());
  ASSERT_EQ(lnr_run(peer, ignore_msg, nullptr), TRUE);
  // A send opens a connection: PEER_CONNECTED on scb_self's sender thread.
  EXPECT_EQ(lnr_send_to(in.self, "scb_peer_topic", "x", 1, TRUE), TRUE);
  ASSERT_TRUE(wait_for([&] { return in.stop_result.load() != -1; }, std::chrono::seconds(10)));
  EXPECT_EQ(in.delete_result.load(), FALSE);
  EXPECT_EQ(in.delete_code.load(), LNR_ERR_INVALID_ARG);
  EXPECT_EQ(in.stop_result.load(), FALSE);
  EXPECT_EQ(in.stop_code.load(), LNR_ERR_INVALID_ARG);
  EXPECT_EQ(lnr_is_running(in.self), TRUE);
  EXPECT_EQ(lnr_delete_client(peer), TRUE);
  EXPECT_EQ(lnr_delete_client(in.self), TRUE);
}
