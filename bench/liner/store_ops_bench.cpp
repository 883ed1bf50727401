// store_ops_bench.cpp - directory operations per second of one store, as bench/run.py measures
// them for each store (Redis, SQLite, PostgreSQL) in the same run.
//
//   bench_store_ops --store URL --prefix PREFIX [--count N]
//
// One Store (store.hpp, opened by URL through the registry as a client opens it), one thread,
// each call waiting for its answer, as a client's threads use their own Store. Three workloads,
// N operations each, on topics named after PREFIX (so runs on one Redis do not meet):
//   register   register_address then unregister_address of one address of a topic: what a
//              subscribe and an unsubscribe write (directory rows, lease marks, announcements)
//   lookup     addresses_of_topic of a topic with 4 addresses: what a sender asks per topic
//   topic_key  topic_key of a topic never seen: an allocation from the global key counter
// Prints one JSON line on stdout: {"event":"done","register_per_s":...,"lookup_per_s":...,
// "topic_key_per_s":...}, or {"event":"error","message":...} and exits 1.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/store.hpp"

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what, const liner::Status& s) {
  std::string message = what + ": " + s.message;
  for (char& c : message)
    if (c == '"' || c == '\\' || c < ' ') c = ' ';  // JSON without escapes
  std::printf("{\"event\":\"error\",\"message\":\"%s\"}\n", message.c_str());
  std::exit(1);
}

void check(const std::string& what, const liner::Status& s) {
  if (!s) fail(what, s);
}

// Runs `op(i)` for i in [0, n) and returns operations per second.
template <typename Op>
double per_second(int n, Op op) {
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) op(i);
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return n / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url, prefix = "bench";
  int count = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--store")) url = argv[i + 1];
    else if (!std::strcmp(argv[i], "--prefix")) prefix = argv[i + 1];
    else if (!std::strcmp(argv[i], "--count")) count = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: bench_store_ops --store URL --prefix PREFIX [--count N]\n");
      return 2;
    }
  }
  if (url.empty() || count <= 0) {
    std::fprintf(stderr, "usage: bench_store_ops --store URL --prefix PREFIX [--count N]\n");
    return 2;
  }

  std::unique_ptr<liner::Store> store;
  check("open", liner::open_store(url, &store));
  check("ping", store->ping());  // connects (and makes the schema) before anything is timed

  const std::string unique = prefix + ".peer";
  const std::string reg_topic = prefix + ".reg";
  double reg = per_second(count, [&](int i) {
    const std::string addr = "127.0.0.1:" + std::to_string(20000 + i % 1000);
    check("register_address", store->register_address(reg_topic, addr, unique, liner::DirectoryEvent::subscribe));
    check("unregister_address", store->unregister_address(reg_topic, addr, liner::DirectoryEvent::unsubscribe));
  });

  const std::string lookup_topic = prefix + ".lookup";
  for (int k = 0; k < 4; ++k)
    check("register_address", store->register_address(lookup_topic, "127.0.0.1:" + std::to_string(30000 + k),
                                                      unique + std::to_string(k), liner::DirectoryEvent::join));
  std::vector<liner::TopicAddress> found;
  double lookup = per_second(count, [&](int) {
    found.clear();
    check("addresses_of_topic", store->addresses_of_topic(lookup_topic, &found));
    if (found.size() != 4) fail("addresses_of_topic", liner::Status(liner::Err::store, "not the 4 addresses"));
  });

  double keys = per_second(count, [&](int i) {
    int32_t key = 0;
    check("topic_key", store->topic_key(prefix + ".key." + std::to_string(i), &key));
  });

  std::printf("{\"event\":\"done\",\"register_per_s\":%.1f,\"lookup_per_s\":%.1f,\"topic_key_per_s\":%.1f}\n", reg,
              lookup, keys);
  return 0;
}
