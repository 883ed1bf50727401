// The directory's truth through the C API, each on a Redis of its own: a Redis restarted empty
// under running clients gets their entries back within 5 s (a client started afterwards reaches
// them); the outage is told once per side (LNR_SENDER_STORE_ERROR, LNR_LISTENER_STORE_ERROR),
// then its end once per side (LNR_STORE_RECOVERED); a store wait outlasts a Redis that starts
// late; a killed peer leaves the directory within 10 s (its lease lapses); messages waiting for
// a peer that left go to a replica (hand-over), unless lnr_set_handover turned that off.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "liner.h"
#include "capi_inbox.hpp"
#include "test_support.hpp"

using testing_support::CapiInbox;
using testing_support::capi_inbox_receive;
using testing_support::RedisServer;
using testing_support::wait_for;

namespace {

struct Events {
  std::mutex mu;
  std::vector<std::pair<int, std::string>> items;  // kind, message
  size_t count(int kind) {
    std::lock_guard<std::mutex> l(mu);
    size_t n = 0;
    for (const auto& e : items) n += e.first == kind;
    return n;
  }
};

void on_status(int kind, const char*, const char*, const char* message, lnr_uData ud) {
  auto* ev = static_cast<Events*>(ud);
  std::lock_guard<std::mutex> l(ev->mu);
  ev->items.emplace_back(kind, message);
}

lnr_hClient client(const RedisServer& redis, const char* name, const char* topic) {
  lnr_hClient c = lnr_new_client_redis(name, topic, "127.0.0.1:0", redis.url().c_str());
  EXPECT_NE(c, nullptr) << lnr_last_create_error();
  return c;
}

BOOL send(lnr_hClient c, const char* topic, const std::string& data) {
  return lnr_send_to(c, topic, data.data(), data.size(), TRUE);
}

}  // namespace

TEST(RedisRestart, RunningClientsRegisterAgainAndANewcomerReachesThem) {
  RedisServer redis(true);
  CapiInbox inbox, ignored;
  lnr_hClient worker = client(redis, "crr_worker", "crr_jobs");
  lnr_hClient producer = client(redis, "crr_producer", "crr_producer_topic");
  ASSERT_EQ(lnr_subscribe(worker, "crr_news"), TRUE);
  ASSERT_EQ(lnr_run(worker, capi_inbox_receive, &inbox), TRUE);
  ASSERT_EQ(lnr_run(producer, capi_inbox_receive, &ignored), TRUE);
  ASSERT_EQ(send(producer, "crr_jobs", "before"), TRUE);
  ASSERT_TRUE(wait_for([&] { return inbox.size() == 1; }, std::chrono::seconds(5)));
  std::string addr = lnr_published_addr(worker);

  redis.stop();
  redis.start();
  auto back = std::chrono::steady_clock::now();
  EXPECT_TRUE(wait_for([&] { return redis.cli({"HGET", "lnr_topic:crr_jobs:addr", addr}) == "crr_worker" &&
                                    redis.cli({"HGET", "lnr_topic:crr_news:addr", addr}) == "crr_worker"; },
                       std::chrono::seconds(5)));
  EXPECT_LT(std::chrono::steady_clock::now() - back, std::chrono::seconds(5));
  EXPECT_NE(redis.cli({"GET", "lnr_connection:crr_producer:crr_producer_topic:crr_worker:key"}), "");

  lnr_hClient newcomer = client(redis, "crr_newcomer", "crr_newcomer_topic");
  ASSERT_EQ(lnr_run(newcomer, capi_inbox_receive, &ignored), TRUE);
  EXPECT_EQ(send(newcomer, "crr_jobs", "from the newcomer"), TRUE) << lnr_last_error_message(newcomer);
  EXPECT_EQ(lnr_send_all(newcomer, "crr_news", "news", 4, TRUE), TRUE) << lnr_last_error_message(newcomer);
  EXPECT_TRUE(wait_for([&] { return inbox.size() == 3; }, std::chrono::seconds(5)));
  lnr_delete_client(newcomer);
  lnr_delete_client(producer);
  lnr_delete_client(worker);
}

TEST(RedisRestart, AnOutageIsToldOncePerSideThenItsEnd) {
  RedisServer redis(true);
  CapiInbox inbox, ignored;
  Events listener_events, sender_events;
  lnr_hClient listener = client(redis, "cro_listener", "cro_listener_topic");
  lnr_hClient sender = client(redis, "cro_sender", "cro_sender_topic");
  ASSERT_EQ(lnr_set_status_cb(listener, on_status, &listener_events), TRUE);
  ASSERT_EQ(lnr_set_status_cb(sender, on_status, &sender_events), TRUE);
  ASSERT_EQ(lnr_run(listener, capi_inbox_receive, &inbox), TRUE);
  ASSERT_EQ(lnr_run(sender, capi_inbox_receive, &ignored), TRUE);
  ASSERT_EQ(send(sender, "cro_listener_topic", "0"), TRUE);
  ASSERT_TRUE(wait_for([&] { return inbox.size() == 1; }, std::chrono::seconds(5)));

  redis.stop();
  size_t n = 1;
  for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3); std::chrono::steady_clock::now() < end;) {
    ASSERT_EQ(send(sender, "cro_listener_topic", std::to_string(n++)), TRUE) << lnr_last_error_message(sender);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(listener_events.count(LNR_LISTENER_STORE_ERROR), 1u);
  EXPECT_EQ(sender_events.count(LNR_SENDER_STORE_ERROR), 1u);
  EXPECT_EQ(listener_events.count(LNR_STORE_RECOVERED) + sender_events.count(LNR_STORE_RECOVERED), 0u);
  redis.start();
  EXPECT_TRUE(wait_for([&] { return listener_events.count(LNR_STORE_RECOVERED) == 1 &&
                                    sender_events.count(LNR_STORE_RECOVERED) == 1; },
                       std::chrono::seconds(10)));
  EXPECT_TRUE(wait_for([&] { return inbox.size() == n; }, std::chrono::seconds(10)));
  EXPECT_EQ(listener_events.count(LNR_LISTENER_STORE_ERROR), 1u);
  EXPECT_EQ(sender_events.count(LNR_SENDER_STORE_ERROR), 1u);
  lnr_delete_client(sender);
  lnr_delete_client(listener);
}

TEST(RedisRestart, StoreWaitOutlastsARedisThatStartsLate) {
  EXPECT_EQ(lnr_get_store_wait(), 0u);  // off by default, as liner_broker
  EXPECT_EQ(lnr_set_store_wait(3600 * 1000 + 1), FALSE);
  RedisServer redis(true);
  redis.stop();
  ASSERT_EQ(lnr_set_store_wait(5000), TRUE);
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    redis.start();
  });
  auto t = std::chrono::steady_clock::now();
  lnr_hClient c = client(redis, "crw_late", "crw_late_topic");
  auto took = std::chrono::steady_clock::now() - t;
  later.join();
  EXPECT_GE(took, std::chrono::milliseconds(900));
  CapiInbox ignored;
  if (c) {
    EXPECT_EQ(lnr_run(c, capi_inbox_receive, &ignored), TRUE) << lnr_last_error_message(c);
    lnr_delete_client(c);
  }
  // A Redis that stays down: the wait runs out, then the usual error.
  ASSERT_EQ(lnr_set_store_wait(1000), TRUE);
  redis.stop();
  t = std::chrono::steady_clock::now();
  EXPECT_EQ(lnr_new_client_redis("crw_down", "crw_down_topic", "127.0.0.1:0", redis.url().c_str()), nullptr);
  took = std::chrono::steady_clock::now() - t;
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::seconds(5));
  ASSERT_EQ(lnr_set_store_wait(0), TRUE);
}

TEST(Liveness, AKilledPeerLeavesTheDirectoryWithin10Seconds) {
  RedisServer redis(true);
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // the peer that dies: runs, says where it is, then waits to be killed
    close(ready[0]);
    lnr_hClient c = lnr_new_client_redis("cl_victim", "cl_jobs", "127.0.0.1:0", redis.url().c_str());
    CapiInbox ignored;
    if (!c || !lnr_run(c, capi_inbox_receive, &ignored)) _exit(1);
    std::string addr = std::string(lnr_published_addr(c)) + "\n";
    if (write(ready[1], addr.data(), addr.size()) != ssize_t(addr.size())) _exit(1);
    for (;;) pause();
  }
  close(ready[1]);
  char buf[128] = {0};
  ssize_t n = read(ready[0], buf, sizeof buf - 1);
  close(ready[0]);
  ASSERT_GT(n, 1);
  std::string addr(buf, size_t(n) - 1);
  ASSERT_EQ(redis.cli({"HGET", "lnr_topic:cl_jobs:addr", addr}), "cl_victim");

  Events events;
  lnr_hClient watcher = client(redis, "cl_watcher", "cl_watcher_topic");
  ASSERT_EQ(lnr_set_status_cb(watcher, on_status, &events), TRUE);
  CapiInbox ignored;
  ASSERT_EQ(lnr_run(watcher, capi_inbox_receive, &ignored), TRUE);
  ASSERT_EQ(lnr_refresh_address_topic(watcher, "cl_jobs"), TRUE);  // it uses the topic: it sweeps it

  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  auto killed = std::chrono::steady_clock::now();
  EXPECT_TRUE(wait_for([&] { return redis.cli({"HGET", "lnr_topic:cl_jobs:addr", addr}).empty(); },
                       std::chrono::seconds(12)));
  EXPECT_LT(std::chrono::steady_clock::now() - killed, std::chrono::seconds(10));
  EXPECT_TRUE(wait_for([&] { return events.count(LNR_PEER_DISCONNECTED) >= 1; }, std::chrono::seconds(3)));
  EXPECT_EQ(lnr_refresh_address_topic(watcher, "cl_jobs"), FALSE);
  EXPECT_EQ(lnr_last_error_code(watcher), LNR_ERR_NO_ADDR);
  lnr_delete_client(watcher);
}

// A sender's messages wait in Redis for the one peer of a topic, which stopped; a replica starts:
// with hand-over (the default) it gets them, and the stopped peer's queue empties once it
// acknowledged them. With hand-over off, a second sender's messages keep waiting for their peer.
TEST(Handover, MessagesWaitingForAStoppedPeerGoToAReplicaUnlessTurnedOff) {
  RedisServer redis(true);
  CapiInbox first_in, replica_in, ignored;
  lnr_hClient first = client(redis, "ho_first", "ho_jobs");
  lnr_hClient sender = client(redis, "ho_sender", "ho_sender_topic");
  lnr_hClient affine = client(redis, "ho_affine", "ho_affine_topic");
  EXPECT_EQ(lnr_handover(sender), 1);
  EXPECT_EQ(lnr_set_handover(affine, FALSE), TRUE);
  EXPECT_EQ(lnr_handover(affine), 0);
  ASSERT_EQ(lnr_run(first, capi_inbox_receive, &first_in), TRUE);
  ASSERT_EQ(lnr_run(sender, capi_inbox_receive, &ignored), TRUE);
  ASSERT_EQ(lnr_run(affine, capi_inbox_receive, &ignored), TRUE);
  EXPECT_EQ(lnr_set_handover(affine, TRUE), FALSE);
  EXPECT_EQ(lnr_last_error_code(affine), LNR_ERR_ALREADY_RUNNING);
  ASSERT_EQ(send(sender, "ho_jobs", "warm"), TRUE);
  ASSERT_EQ(send(affine, "ho_jobs", "warm"), TRUE);
  ASSERT_TRUE(wait_for([&] { return first_in.size() == 2; }, std::chrono::seconds(5)));
  ASSERT_EQ(lnr_stop(first), TRUE);
  ASSERT_EQ(lnr_refresh_address_topic(sender, "ho_jobs"), FALSE);
  ASSERT_EQ(lnr_refresh_address_topic(affine, "ho_jobs"), FALSE);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(send(sender, "ho_jobs", "job " + std::to_string(i)), TRUE) << lnr_last_error_message(sender);
    ASSERT_EQ(send(affine, "ho_jobs", "kept " + std::to_string(i)), TRUE) << lnr_last_error_message(affine);
  }
  ASSERT_TRUE(wait_for([&] { return lnr_pending_count(sender) == 5 && lnr_pending_count(affine) == 5; },
                       std::chrono::seconds(5)));

  lnr_hClient replica = client(redis, "ho_replica", "ho_jobs");
  ASSERT_EQ(lnr_run(replica, capi_inbox_receive, &replica_in), TRUE);
  auto jobs = [&] {
    size_t n = 0;
    for (const auto& m : replica_in.snapshot()) n += m.rfind("job ", 0) == 0;
    return n;
  };
  EXPECT_TRUE(wait_for([&] { return jobs() >= 5; }, std::chrono::seconds(15)));
  EXPECT_TRUE(wait_for([&] { return lnr_pending_count(sender) == 0; }, std::chrono::seconds(5)));
  for (const auto& m : replica_in.snapshot()) EXPECT_NE(m.rfind("kept ", 0), 0u) << m;
  EXPECT_EQ(lnr_pending_count(affine), 5);
  for (lnr_hClient c : {replica, affine, sender, first}) lnr_delete_client(c);
}
