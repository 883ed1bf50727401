// Route semantics of liner_broker 1.4.1 (compat spec §6.1) through the C API: a peer that
// unsubscribed is not waited for once lnr_refresh_address_topic returned; a peer that stopped
// is, also by a sender that restarted since.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "liner.h"
#include "capi_inbox.hpp"
#include "test_support.hpp"

using testing_support::CapiInbox;
using testing_support::capi_inbox_receive;
using testing_support::free_port;
using testing_support::redis;
using testing_support::wait_for;

namespace {

lnr_hClient client(const char* name, const char* topic, const std::string& addr = "127.0.0.1:0") {
  lnr_hClient c = lnr_new_client_redis(name, topic, addr.c_str(), redis().url().c_str());
  EXPECT_NE(c, nullptr) << lnr_last_create_error();
  return c;
}

BOOL send(lnr_hClient c, const char* topic, const std::string& data, BOOL at_least_once = TRUE) {
  return lnr_send_to(c, topic, data.data(), data.size(), at_least_once);
}

}  // namespace

TEST(RouteSemantics, AfterUnsubscribeAndRefreshAnAtLeastOnceSendFailsAtOnce) {
  redis().cli({"FLUSHALL"});
  CapiInbox inbox, ignored;
  lnr_hClient consumer = client("crs_consumer", "crs_consumer_topic");
  lnr_hClient producer = client("crs_producer", "crs_producer_topic");
  ASSERT_EQ(lnr_run(consumer, capi_inbox_receive, &inbox), TRUE);
  ASSERT_EQ(lnr_run(producer, capi_inbox_receive, &ignored), TRUE);
  ASSERT_EQ(lnr_subscribe(consumer, "crs_news"), TRUE);
  ASSERT_EQ(send(producer, "crs_news", "before"), TRUE);
  ASSERT_TRUE(wait_for([&] { return inbox.snapshot().size() == 1; }, std::chrono::seconds(5)));
  long long pending = lnr_pending_count(producer);
  ASSERT_EQ(lnr_unsubscribe(consumer, "crs_news"), TRUE);
  EXPECT_EQ(lnr_refresh_address_topic(producer, "crs_news"), FALSE);
  EXPECT_EQ(lnr_last_error_code(producer), LNR_ERR_NO_ADDR);
  EXPECT_EQ(send(producer, "crs_news", "after"), FALSE);
  EXPECT_EQ(lnr_last_error_code(producer), LNR_ERR_NO_ADDR);
  EXPECT_EQ(lnr_pending_count(producer), pending);
  lnr_delete_client(producer);
  lnr_delete_client(consumer);
}

TEST(RouteSemantics, ARestartedSenderKeepsMessagesForAStoppedListener) {
  redis().cli({"FLUSHALL"});
  const std::string addr = "127.0.0.1:" + std::to_string(free_port());
  CapiInbox first, second, ignored;
  lnr_hClient b = client("crs_b", "crs_b_topic", addr);
  lnr_hClient a = client("crs_a", "crs_a_topic");
  ASSERT_EQ(lnr_run(b, capi_inbox_receive, &first), TRUE);
  ASSERT_EQ(lnr_run(a, capi_inbox_receive, &ignored), TRUE);
  ASSERT_EQ(send(a, "crs_b_topic", "1"), TRUE);
  ASSERT_TRUE(wait_for([&] { return first.snapshot().size() == 1; }, std::chrono::seconds(5)));
  lnr_delete_client(b);
  ASSERT_EQ(send(a, "crs_b_topic", "2"), TRUE) << lnr_last_error_message(a);
  lnr_delete_client(a);

  a = client("crs_a", "crs_a_topic");  // the same sender, started again
  ASSERT_EQ(lnr_run(a, capi_inbox_receive, &ignored), TRUE);
  EXPECT_EQ(send(a, "crs_b_topic", "3"), TRUE) << lnr_last_error_message(a);
  EXPECT_EQ(send(a, "crs_b_topic", "4"), TRUE) << lnr_last_error_message(a);
  EXPECT_EQ(send(a, "crs_b_topic", "best effort", FALSE), FALSE);
  EXPECT_EQ(lnr_last_error_code(a), LNR_ERR_NO_ADDR);

  b = client("crs_b", "crs_b_topic", addr);
  ASSERT_EQ(lnr_run(b, capi_inbox_receive, &second), TRUE);
  EXPECT_TRUE(wait_for([&] { return second.snapshot().size() >= 3; }, std::chrono::seconds(15)));
  EXPECT_EQ(second.snapshot(), (std::vector<std::string>{"2", "3", "4"}));
  lnr_delete_client(b);
  lnr_delete_client(a);
}
