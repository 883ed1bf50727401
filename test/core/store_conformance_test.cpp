// What every store promises (store.hpp), checked the same way on each kind of store: the
// directory, keys, channel metadata, the offline queue, leases, the change feed, the reads for
// tools, and failing fast when the store is gone. Stores are opened by URL only (open_store), so
// a new store joins by adding its kind to kKinds. Record names and encodings of one store are
// checked in its own test (redis_store_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "core/frame.hpp"
#include "core/store.hpp"
#include "test_support.hpp"

namespace liner {
// Failure messages show rows, not bytes.
void PrintTo(const TopicAddress& a, std::ostream* os) { *os << "{" << a.addr << ", " << a.unique_name << "}"; }
}  // namespace liner

using namespace liner;
using testing_support::numbered_frame;
using Clock = std::chrono::steady_clock;

namespace {

::testing::AssertionResult succeeded(const Status& s) {
  if (s) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "store error " << int(s.code) << ": " << s.message;
}
#define ASSERT_OK(call) ASSERT_TRUE(succeeded(call))
#define EXPECT_OK(call) EXPECT_TRUE(succeeded(call))

// A kind of store: how to get an empty one for a test, and one that cannot work.
struct StoreKind {
  const char* name;  // in test names: --gtest_filter='*redis*' runs one kind
  std::string (*fresh_url)(const std::string& temp_dir);
  const char* failing_url;
};

const StoreKind kKinds[] = {
    {"redis",
     [](const std::string&) -> std::string {
       testing_support::redis().flush();
       return testing_support::redis().url();
     },
     // Port 1 needs root to listen on: nothing answers there.
     "redis://127.0.0.1:1/0"},
    // A new file in the test's own directory, removed with it; a file cannot be made in a
    // directory that does not exist.
    {"sqlite", [](const std::string& dir) -> std::string { return "sqlite:" + dir + "/store.db"; },
     "sqlite:/nonexistent-dir/x.db"},
    // A new database on the server of LINER_TEST_POSTGRES_URL (test_support.hpp); port 1 needs
    // root to listen on: nothing answers there.
    {"postgres", [](const std::string&) { return testing_support::fresh_postgres_database(); },
     "postgres://postgres@127.0.0.1:1/postgres"},
};

std::unique_ptr<Store> open(const std::string& url) {
  std::unique_ptr<Store> store;
  Status s = open_store(url, &store);
  EXPECT_TRUE(succeeded(s)) << url;
  return s ? std::move(store) : nullptr;
}

template <class T>
std::vector<T> sorted(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<TopicAddress> sorted(std::vector<TopicAddress> v) {
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.addr < b.addr; });
  return v;
}

std::vector<std::tuple<std::string, std::string, std::string, int32_t>> names_of(const std::vector<ChannelName>& v) {
  std::vector<std::tuple<std::string, std::string, std::string, int32_t>> out;
  for (const auto& c : v) out.emplace_back(c.sender_unique, c.sender_topic, c.listener_unique, c.key);
  return sorted(out);
}

// Frames numbered `numbers`, whose payloads hold NUL bytes: a store that keeps C strings
// cuts them.
std::vector<std::string> frames(const std::vector<uint64_t>& numbers) {
  std::vector<std::string> out;
  for (uint64_t n : numbers) out.push_back(numbered_frame(n, std::string("a\0b\0", 4) + std::to_string(n)));
  return out;
}

std::vector<const std::string*> refs(const std::vector<std::string>& frames) {
  std::vector<const std::string*> out;
  for (const auto& f : frames) out.push_back(&f);
  return out;
}

// Peer P at 127.0.0.1:7000, subscribed to `topics`, the first its source topic.
Registration registration(const std::vector<std::string>& topics) {
  Registration r;
  r.addr = "127.0.0.1:7000";
  r.unique_name = "P";
  r.source_topic = topics.empty() ? std::string() : topics[0];
  for (const auto& t : topics) r.entries.push_back({t, 0, DirectoryEvent::subscribe});
  return r;
}

using Where = std::pair<std::string, std::string>;  // an event's topic and address
Where where(const DirectoryEvent& e) { return {e.topic, e.addr}; }

// How long a change may take to reach another instance, or a lease of 1 ms to lapse.
constexpr auto kEventWait = std::chrono::seconds(3);

class StoreConformance : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/liner-store-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    url_ = GetParam().fresh_url(dir_);
    ASSERT_FALSE(url_.empty()) << "no store for this test (the failure above says why)";
    store = open(url_);
    ASSERT_NE(store, nullptr);
  }
  void TearDown() override {
    store.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Another instance on the same store, as another thread or peer has.
  std::unique_ptr<Store> another() const { return open(url_); }

  // A second instance listening to the change feed from now on; it keeps what it heard until
  // a test asks for it.
  class Feed {
   public:
    explicit Feed(std::unique_ptr<Store> store) : store_(std::move(store)) {
      EXPECT_OK(store_->wait_directory_events(0, &heard_));
    }
    // Takes the first event of `kind` heard within kEventWait, polled 100 ms at a time.
    bool take(DirectoryEvent::Kind kind, DirectoryEvent* seen) {
      auto end = Clock::now() + kEventWait;
      for (;;) {
        auto it = std::find_if(heard_.begin(), heard_.end(), [&](const auto& e) { return e.kind == kind; });
        if (it != heard_.end()) {
          *seen = *it;
          heard_.erase(it);
          return true;
        }
        if (Clock::now() >= end || !store_->wait_directory_events(100, &heard_)) return false;
      }
    }
    // The topic and address of the first event of `kind` heard in time.
    Where where_of(DirectoryEvent::Kind kind) {
      DirectoryEvent e;
      return take(kind, &e) ? where(e) : Where("(nothing heard)", "");
    }

   private:
    std::unique_ptr<Store> store_;
    std::vector<DirectoryEvent> heard_;
  };
  Feed feed() const { return Feed(another()); }

  std::vector<TopicAddress> directory(const std::string& topic) const {
    std::vector<TopicAddress> out;
    EXPECT_OK(store->addresses_of_topic(topic, &out));
    return sorted(out);
  }

  std::vector<std::string> queue(int32_t ck) const {
    std::vector<std::string> out;
    for (auto& f : read(ck)) out.push_back(std::move(f.frame));
    return out;
  }
  std::vector<QueuedFrame> read(int32_t ck, uint64_t after = 0, uint64_t count = 100000) const {
    std::vector<QueuedFrame> out;
    EXPECT_OK(store->read_messages_after(ck, after, count, &out));
    return out;
  }
  // The places of a channel's frames, oldest first.
  std::vector<uint64_t> places(int32_t ck) const {
    std::vector<uint64_t> out;
    for (const auto& f : read(ck)) out.push_back(f.place);
    return out;
  }

  // Pushes frames numbered `numbers` to channel `ck`'s queue; returns them.
  std::vector<std::string> queued(int32_t ck, const std::vector<uint64_t>& numbers, const NumberRanges& marks = {}) {
    auto made = frames(numbers);
    EXPECT_OK(store->push_messages(ck, refs(made), marks));
    return made;
  }

  // Drops channel `ck`'s frames through place `through`; whether the queue is empty after.
  bool drop(int32_t ck, uint64_t through) {
    bool empty = false;
    EXPECT_OK(store->drop_messages_through(ck, through, &empty));
    return empty;
  }

  // Peer P (registration()) registered on `topics`; with a lease, renewed once with it.
  Registration registered(const std::vector<std::string>& topics, int lease_ms = 0) {
    auto r = registration(topics);
    r.lease_ms = lease_ms;
    for (const auto& e : r.entries) EXPECT_OK(store->register_address(e.topic, r.addr, r.unique_name, e.why));
    if (lease_ms > 0) complete(r);
    return r;
  }

  // What one renewal of `r` says.
  bool complete(const Registration& r) {
    bool done = false;
    EXPECT_OK(store->renew_registration(r, &done));
    return done;
  }

  // Sweeps `topic` until `size` entries are left (leases lapse by the store's clock), for at
  // most kEventWait; returns what is left.
  std::vector<TopicAddress> swept_to(const std::string& topic, size_t size) {
    std::vector<TopicAddress> left;
    testing_support::wait_for([&] { return store->sweep_lapsed(topic, &left) && left.size() == size; }, kEventWait);
    return sorted(left);
  }

  int32_t key_of_channel(const std::string& u, const std::string& s, const std::string& l) const {
    int32_t ck = 0;
    bool found = false;
    EXPECT_OK(store->connection_key(u, s, l, true, &ck, &found));
    EXPECT_TRUE(found);
    return ck;
  }

  int32_t key_of_topic(const std::string& topic) const {
    int32_t key = 0;
    EXPECT_OK(store->topic_key(topic, &key));
    return key;
  }

  std::unique_ptr<Store> store;

 private:
  std::string dir_;
  std::string url_;
};

std::string name_of(const ::testing::TestParamInfo<StoreKind>& info) { return info.param.name; }
void PrintTo(const StoreKind& kind, std::ostream* os) { *os << kind.name; }

}  // namespace

// ---- Directory -----------------------------------------------------------------------------------

// The interface promises no order: rows are compared as a set.
TEST_P(StoreConformance, RegisteredAddressesAreListedWithTheirUniqueNamesPerTopic) {
  ASSERT_OK(store->register_address("t", "127.0.0.1:1001", "u2", DirectoryEvent::subscribe));
  ASSERT_OK(store->register_address("t", "127.0.0.1:1000", "u1", DirectoryEvent::join));
  ASSERT_OK(store->register_address("other", "127.0.0.1:1002", "u3", DirectoryEvent::join));
  EXPECT_EQ(directory("t"), (std::vector<TopicAddress>{{"127.0.0.1:1000", "u1"}, {"127.0.0.1:1001", "u2"}}));
  EXPECT_EQ(directory("nobody"), std::vector<TopicAddress>{});
}

TEST_P(StoreConformance, AnUnregisteredAddressLeavesItsTopicOnly) {
  ASSERT_OK(store->register_address("t", "127.0.0.1:1000", "u1", DirectoryEvent::join));
  ASSERT_OK(store->register_address("t", "127.0.0.1:1001", "u2", DirectoryEvent::join));
  ASSERT_OK(store->register_address("other", "127.0.0.1:1000", "u1", DirectoryEvent::subscribe));
  ASSERT_OK(store->unregister_address("t", "127.0.0.1:1000", DirectoryEvent::leave));
  EXPECT_EQ(directory("t"), (std::vector<TopicAddress>{{"127.0.0.1:1001", "u2"}}));
  EXPECT_EQ(directory("other"), (std::vector<TopicAddress>{{"127.0.0.1:1000", "u1"}}));
}

// Leaving a topic by unsubscribing is remembered (senders stop keeping messages for that peer);
// leaving by stopping is not (its messages keep waiting); registering the address again clears it.
TEST_P(StoreConformance, AnUnsubscribeIsMarkedUntilTheAddressRegistersAgain) {
  ASSERT_OK(store->register_address("t", "127.0.0.1:1000", "u1", DirectoryEvent::subscribe));
  ASSERT_OK(store->register_address("t", "127.0.0.1:1001", "u2", DirectoryEvent::subscribe));
  ASSERT_OK(store->unregister_address("t", "127.0.0.1:1000", DirectoryEvent::unsubscribe));
  ASSERT_OK(store->unregister_address("t", "127.0.0.1:1001", DirectoryEvent::leave));
  std::vector<std::string> gone;
  ASSERT_OK(store->unsubscribed_from_topic("t", &gone));
  EXPECT_EQ(gone, std::vector<std::string>{"127.0.0.1:1000"});
  ASSERT_OK(store->unsubscribed_from_topic("other", &gone));
  EXPECT_TRUE(gone.empty());
  ASSERT_OK(store->register_address("t", "127.0.0.1:1000", "u3", DirectoryEvent::join));
  ASSERT_OK(store->unsubscribed_from_topic("t", &gone));
  EXPECT_TRUE(gone.empty());
}

TEST_P(StoreConformance, DeletingATopicsAddressesEmptiesThatDirectoryOnly) {
  ASSERT_OK(store->register_address("t", "127.0.0.1:1000", "u1", DirectoryEvent::join));
  ASSERT_OK(store->register_address("t", "127.0.0.1:1001", "u2", DirectoryEvent::join));
  ASSERT_OK(store->register_address("other", "127.0.0.1:1000", "u1", DirectoryEvent::join));
  ASSERT_OK(store->delete_topic_addresses("t"));
  EXPECT_TRUE(directory("t").empty());
  EXPECT_EQ(directory("other").size(), 1u);
}

// ---- Keys ----------------------------------------------------------------------------------------

TEST_P(StoreConformance, ANameKeepsTheKeyItWasGivenAndNamesDoNotShareKeys) {
  int32_t a = key_of_topic("a"), b = key_of_topic("b");
  EXPECT_NE(a, b);
  EXPECT_EQ(key_of_topic("a"), a);
  int32_t l1 = key_of_channel("U", "S", "L1"), l2 = key_of_channel("U", "S", "L2");
  int32_t other_topic = key_of_channel("U", "S2", "L1"), other_sender = key_of_channel("V", "S", "L1");
  EXPECT_EQ(std::set<int32_t>({a, b, l1, l2, other_topic, other_sender}).size(), 6u);
  EXPECT_EQ(key_of_channel("U", "S", "L1"), l1);
}

// One counter for both kinds of key (liner_broker 1.3.1's lnr_unique_key): a topic key and a
// connection key never coincide, and each new key is above every earlier one.
TEST_P(StoreConformance, TopicAndConnectionKeysComeFromOneRisingCounter) {
  int32_t first = key_of_topic("a");
  int32_t second = key_of_channel("U", "S", "L");
  int32_t third = key_of_topic("b");
  EXPECT_GT(first, 0);
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
}

TEST_P(StoreConformance, AConnectionKeyThatIsNotAllocatedIsNotFound) {
  int32_t ck = -1;
  bool found = true;
  ASSERT_OK(store->connection_key("U", "S", "L", false, &ck, &found));
  EXPECT_FALSE(found);
  // Asking made no channel.
  std::vector<ChannelName> channels;
  ASSERT_OK(store->list_channels("", &channels));
  EXPECT_TRUE(channels.empty());
  int32_t allocated = key_of_channel("U", "S", "L");
  ASSERT_OK(store->connection_key("U", "S", "L", false, &ck, &found));
  EXPECT_TRUE(found);
  EXPECT_EQ(ck, allocated);
}

// Peers that meet a name at the same moment must agree on its key, or their frames would go
// to different channels.
TEST_P(StoreConformance, StoresRacingOnOneNameAgreeOnItsKey) {
  constexpr int kThreads = 8;
  std::vector<int32_t> topic(kThreads), channel(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      auto s = another();
      bool found = false;
      EXPECT_OK(s->topic_key("raced", &topic[i]));
      EXPECT_OK(s->connection_key("U", "S", "raced", true, &channel[i], &found));
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(topic[i], topic[0]);
    EXPECT_EQ(channel[i], channel[0]);
  }
  EXPECT_NE(topic[0], channel[0]);
}

// ---- Channel metadata ----------------------------------------------------------------------------

TEST_P(StoreConformance, ASendersTopicIsReadBackPerChannel) {
  ASSERT_OK(store->set_sender_topic(5, "topic_client1"));
  std::string from;
  bool found = false;
  ASSERT_OK(store->sender_topic(5, &from, &found));
  EXPECT_TRUE(found);
  EXPECT_EQ(from, "topic_client1");
  ASSERT_OK(store->sender_topic(6, &from, &found));
  EXPECT_FALSE(found);
}

// A listener reads without creating, so frames with made-up keys leave nothing behind.
TEST_P(StoreConformance, AListenersReadOfAMissingAckCounterLeavesNothingBehind) {
  AckCounter c;
  c.number = 99;
  ASSERT_OK(store->read_ack(5, false, &c));
  EXPECT_EQ(c.number, 0u);
  EXPECT_FALSE(c.existed);
  ASSERT_OK(store->read_ack(5, false, &c));
  EXPECT_FALSE(c.existed);
}

TEST_P(StoreConformance, ASendersReadCreatesTheAckCounterAtZero) {
  AckCounter c;
  ASSERT_OK(store->read_ack(5, true, &c));
  EXPECT_EQ(c.number, 0u);
  ASSERT_OK(store->read_ack(5, false, &c));
  EXPECT_TRUE(c.existed);
  EXPECT_FALSE(c.unreadable);
  EXPECT_EQ(c.number, 0u);
}

TEST_P(StoreConformance, TheAckCounterHoldsEveryU64) {
  for (uint64_t n : {uint64_t(1), uint64_t(0x8000'0000'0000'0000ull), UINT64_MAX}) {
    ASSERT_OK(store->set_last_mess_number(5, n));
    AckCounter c;
    ASSERT_OK(store->read_ack(5, true, &c));
    EXPECT_EQ(c.number, n);
    EXPECT_TRUE(c.existed);
    EXPECT_FALSE(c.unreadable);
  }
}

TEST_P(StoreConformance, ASenderRemembersItsListenersWithTheirUniqueNames) {
  ASSERT_OK(store->save_listener_for_sender("U", "S", "127.0.0.1:5", "T", "L"));
  ASSERT_OK(store->save_listener_for_sender("U", "S", "127.0.0.1:6", "T2", "L2"));
  ASSERT_OK(store->save_listener_for_sender("U", "other", "127.0.0.1:7", "T3", "L3"));
  std::vector<RememberedListener> listeners;
  ASSERT_OK(store->listeners_of_sender("U", "S", &listeners));
  std::vector<std::tuple<std::string, std::string, std::string>> got;
  for (const auto& l : listeners) got.emplace_back(l.addr, l.topic, l.unique_name);
  EXPECT_EQ(sorted(got), (decltype(got){{"127.0.0.1:5", "T", "L"}, {"127.0.0.1:6", "T2", "L2"}}));
}

TEST_P(StoreConformance, DeletingASendersListenersForgetsThoseOfThatSourceTopic) {
  ASSERT_OK(store->save_listener_for_sender("U", "S", "127.0.0.1:5", "T", "L"));
  ASSERT_OK(store->save_listener_for_sender("U", "other", "127.0.0.1:7", "T3", "L3"));
  ASSERT_OK(store->delete_listeners_of_sender("U", "S"));
  std::vector<RememberedListener> listeners;
  ASSERT_OK(store->listeners_of_sender("U", "S", &listeners));
  EXPECT_TRUE(listeners.empty());
  ASSERT_OK(store->listeners_of_sender("U", "other", &listeners));
  EXPECT_EQ(listeners.size(), 1u);
}

// Found by name, so also channels whose listener left the directory.
TEST_P(StoreConformance, ASendersConnectionKeysAreThoseOfItsSourceTopic) {
  int32_t l1 = key_of_channel("U", "S", "L1"), l2 = key_of_channel("U", "S", "L2");
  key_of_channel("U", "S2", "L3");
  key_of_channel("V", "S", "L4");
  std::vector<std::pair<std::string, int32_t>> keys;
  ASSERT_OK(store->connection_keys_of_sender("U", "S", &keys));
  EXPECT_EQ(sorted(keys), (std::vector<std::pair<std::string, int32_t>>{{"L1", l1}, {"L2", l2}}));
}

// ---- Offline queue -------------------------------------------------------------------------------

// More frames than one batch of a store's writes, pushed in two calls: whole, in order.
TEST_P(StoreConformance, TheOfflineQueueKeepsWholeFramesInOrder) {
  std::vector<uint64_t> numbers;
  for (uint64_t n = 1; n <= 3000; ++n) numbers.push_back(n);
  auto all = frames(numbers);
  auto pushed = refs(all);
  ASSERT_OK(store->push_messages(9, {pushed.begin(), pushed.begin() + 1000}, {}));
  ASSERT_OK(store->push_messages(9, {pushed.begin() + 1000, pushed.end()}, {}));
  uint64_t len = 0;
  ASSERT_OK(store->queue_length(9, &len));
  EXPECT_EQ(len, 3000u);
  auto head = read(9, 0, 999);
  ASSERT_EQ(head.size(), 999u);
  auto got = read(9, head.back().place, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].frame, all[999]);
  EXPECT_EQ(got[2].frame, all[1001]);
  auto p = places(9);
  EXPECT_TRUE(std::adjacent_find(p.begin(), p.end(), std::greater_equal<uint64_t>()) == p.end())
      << "places ascend along the queue";
  std::string last;
  bool found = false;
  ASSERT_OK(store->last_stored_message(9, &last, &found));
  EXPECT_TRUE(found);
  EXPECT_EQ(last, all.back());
  EXPECT_EQ(queue(9), all);
}

TEST_P(StoreConformance, AnEmptyQueueHasNoFramesAndNoLastOne) {
  uint64_t len = 7;
  ASSERT_OK(store->queue_length(9, &len));
  EXPECT_EQ(len, 0u);
  EXPECT_TRUE(queue(9).empty());
  std::string last;
  bool found = true;
  ASSERT_OK(store->last_stored_message(9, &last, &found));
  EXPECT_FALSE(found);
}

TEST_P(StoreConformance, ReadingPastTheQueuesEndGivesWhatIsThere) {
  auto all = queued(9, {1, 2, 3});
  auto p = places(9);
  auto got = read(9, p[1], 10);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].frame, all[2]);
  EXPECT_TRUE(read(9, p[2], 10).empty());
}

TEST_P(StoreConformance, QueuesOfChannelsAreSeparate) {
  auto a = queued(1, {1}), b = queued(2, {2});
  EXPECT_EQ(queue(1), a);
  EXPECT_EQ(queue(2), b);
}

// Numbers straddle a byte boundary and the top bit of a byte, where a text, signed or
// locale-collated comparison would go wrong.
const std::vector<uint64_t> kTrickyNumbers = {1, 2, 0x80, 255, 256, 257, 0x1'0000'0000ull, 0x8000'0000'0000'0001ull};

TEST_P(StoreConformance, DroppingThroughAPlaceRemovesTheHeadUpToIt) {
  auto all = queued(3, kTrickyNumbers);
  auto p = places(3);
  EXPECT_FALSE(drop(3, p[4]));
  EXPECT_EQ(queue(3), (std::vector<std::string>{all.begin() + 5, all.end()}));
  EXPECT_FALSE(drop(3, p[6]));
  EXPECT_EQ(queue(3), std::vector<std::string>{all.back()});
  EXPECT_TRUE(drop(3, p[7]));
  EXPECT_TRUE(queue(3).empty());
  EXPECT_TRUE(drop(4, 1));  // an empty queue
}

// A store's rows keep their queue order past nine and ninety-nine of them, whatever sorts them
// (PostgreSQL once sorted the head by the row id as text: "10" before "2").
TEST_P(StoreConformance, DroppingFindsTheHeadInQueueOrderPastNineAndNinetyNineFrames) {
  std::vector<uint64_t> numbers;
  for (uint64_t n = 1; n <= 120; ++n) numbers.push_back(n);
  auto all = queued(3, numbers);
  auto p = places(3);
  drop(3, p[10]);
  EXPECT_EQ(read(3, 0, 1)[0].frame, all[11]);
  drop(3, p[110]);
  EXPECT_EQ(queue(3), (std::vector<std::string>{all.begin() + 111, all.end()}));
}

// A retry, or a reply that came too late, removes nothing pushed since.
TEST_P(StoreConformance, ADropRunTwiceRemovesOnce) {
  auto all = queued(3, {1, 2, 3});
  auto p = places(3);
  drop(3, p[1]);
  auto more = queued(3, {4, 5});
  drop(3, p[1]);
  EXPECT_EQ(queue(3), (std::vector<std::string>{all[2], more[0], more[1]}));
}

// Reads go on after the last place read, whatever left the queue meanwhile (handed to another
// replica), before it or the frame read last itself, seen by this connection or another.
TEST_P(StoreConformance, ReadsResumeAfterTheirPlaceWhateverWasRemoved) {
  std::vector<uint64_t> numbers;
  for (uint64_t n = 1; n <= 40; ++n) numbers.push_back(n);
  auto all = queued(3, numbers);
  auto first = read(3, 0, 10);
  ASSERT_EQ(first.size(), 10u);
  ASSERT_OK(store->remove_messages(3, {all[0], all[4], all[9]}, nullptr));
  auto next = read(3, first.back().place, 5);
  ASSERT_EQ(next.size(), 5u);
  EXPECT_EQ(next[0].frame, all[10]);
  auto other = another();
  ASSERT_OK(other->remove_messages(3, {all[12], all[14], all[15], all[20]}, nullptr));
  auto rest = read(3, next.back().place, 100);
  std::vector<std::string> frames;
  for (auto& f : rest) frames.push_back(f.frame);
  std::vector<std::string> want{all.begin() + 16, all.end()};
  want.erase(want.begin() + 4);  // all[20]
  EXPECT_EQ(frames, want);
  // Dropping through a place read keeps what came after it.
  drop(3, next.back().place);
  EXPECT_EQ(queue(3), want);
}

// An element that is not a frame (a hand edit, a bug) is read in its turn and goes with the
// frames around it (Redis: with those before it; SQL stores: by its row): it never blocks the
// queue.
TEST_P(StoreConformance, AnElementThatIsNotAFrameIsReadAndDroppedInItsTurn) {
  std::vector<std::string> items = {"x", frames({1})[0], std::string("not\0a frame", 11), frames({2})[0]};
  ASSERT_OK(store->push_messages(3, refs(items), {}));
  auto got = read(3);
  ASSERT_EQ(got.size(), 4u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].frame, items[i]);
  EXPECT_FALSE(drop(3, got[1].place));
  auto left = queue(3);
  ASSERT_FALSE(left.empty());
  EXPECT_LE(left.size(), 2u);
  EXPECT_EQ(left.back(), items[3]);
  EXPECT_TRUE(drop(3, got[3].place));
}

TEST_P(StoreConformance, RemovedFramesLeaveWhereverTheyAreByTheirBytes) {
  auto all = queued(5, {1, 2, 3, 4, 5, 6});
  uint64_t removed = 0;
  // From the middle, the tail and nowhere (a frame removed before): the rest keeps its order.
  ASSERT_OK(store->remove_messages(5, {all[1], all[5], frames({9})[0]}, &removed));
  EXPECT_EQ(removed, 2u);
  EXPECT_EQ(queue(5), (std::vector<std::string>{all[0], all[2], all[3], all[4]}));
}

TEST_P(StoreConformance, HandoverMarksAreKeptBesideTheQueue) {
  auto first = queued(5, {1, 2, 3}, {{1, 2}});
  auto second = queued(5, {4, 5, 6}, {{4, 4}, {6, 6}});
  queued(5, {});
  NumberRanges marks;
  ASSERT_OK(store->handover_marks(5, &marks));
  EXPECT_EQ(marks, (NumberRanges{{1, 2}, {4, 4}, {6, 6}}));
  ASSERT_OK(store->handover_marks(6, &marks));
  EXPECT_TRUE(marks.empty());
  uint64_t removed = 0;
  ASSERT_OK(store->remove_messages(5, {first[1], second[2]}, &removed));
  ASSERT_OK(store->handover_marks(5, &marks));
  EXPECT_EQ(marks.size(), 3u);  // the queue still holds frames: the marks stay
}

// The marks describe the queue's frames: they go with its last one, whichever way it goes.
TEST_P(StoreConformance, HandoverMarksGoWithTheQueuesLastFrame) {
  auto all = frames({1, 2});
  const std::vector<std::function<Status()>> emptyings = {
      [&] { return store->remove_messages(5, all, nullptr); },
      [&] { return store->drop_messages_through(5, places(5).back(), nullptr); },
      [&] { return store->clear_channel(5); },
  };
  for (size_t i = 0; i < emptyings.size(); ++i) {
    ASSERT_OK(store->push_messages(5, refs(all), {{1, 2}}));
    ASSERT_OK(emptyings[i]());
    NumberRanges marks;
    ASSERT_OK(store->handover_marks(5, &marks));
    EXPECT_TRUE(marks.empty()) << "way " << i;
    EXPECT_TRUE(queue(5).empty()) << "way " << i;
  }
}

TEST_P(StoreConformance, ClearingAChannelDropsItsQueueAndAckCounter) {
  queued(5, {1, 2});
  ASSERT_OK(store->set_last_mess_number(5, 1));
  ASSERT_OK(store->set_sender_topic(5, "S"));
  ASSERT_OK(store->clear_channel(5));
  EXPECT_TRUE(queue(5).empty());
  AckCounter c;
  ASSERT_OK(store->read_ack(5, false, &c));
  EXPECT_FALSE(c.existed);
}

// ---- Leases and putting a registration back ------------------------------------------------------

TEST_P(StoreConformance, ARegistrationIsCompleteWhenEveryEntryAndKeyIsThere) {
  auto r = registered({"S", "T"});
  r.highest_key = key_of_topic("S");
  EXPECT_TRUE(complete(r));
}

TEST_P(StoreConformance, ARegistrationIsIncompleteWhenAnEntryIsMissingOrAnothers) {
  auto r = registered({"S"});
  r.entries = registration({"S", "T"}).entries;
  r.highest_key = key_of_topic("S");
  EXPECT_FALSE(complete(r));
  ASSERT_OK(store->register_address("T", r.addr, "someone else", DirectoryEvent::join));
  EXPECT_FALSE(complete(r));
}

TEST_P(StoreConformance, ARegistrationIsIncompleteWhileTheKeyCounterIsBelowItsHighestKey) {
  auto r = registered({"S"});
  r.highest_key = key_of_topic("S") + 5;
  EXPECT_FALSE(complete(r));
}

TEST_P(StoreConformance, SweepingRemovesLapsedEntriesAndNeverThoseWithoutALease) {
  ASSERT_OK(store->register_address("S", "127.0.0.1:9", "broker", DirectoryEvent::join));  // no lease
  registered({"S"}, 1);
  EXPECT_EQ(swept_to("S", 1), (std::vector<TopicAddress>{{"127.0.0.1:9", "broker"}}));
  EXPECT_EQ(directory("S"), (std::vector<TopicAddress>{{"127.0.0.1:9", "broker"}}));
}

TEST_P(StoreConformance, SweepingKeepsEntriesWhoseLeaseRuns) {
  auto r = registered({"S"}, 60000);
  std::vector<TopicAddress> left;
  ASSERT_OK(store->sweep_lapsed("S", &left));
  EXPECT_EQ(left, (std::vector<TopicAddress>{{r.addr, r.unique_name}}));
}

// A peer that crashed and starts again at the same address registers before its first renewal:
// the lease that lapsed was its predecessor's, and until it renews, its entry has none.
TEST_P(StoreConformance, AnAddressRegisteredAgainIsNotSweptForItsPredecessorsLapsedLease) {
  auto r = registered({"S", "probe"}, 1);
  // Both leases were given at once: once "probe"'s has lapsed, so has "S"'s (nobody swept it).
  ASSERT_TRUE(swept_to("probe", 0).empty());
  ASSERT_OK(store->register_address("S", r.addr, "P again", DirectoryEvent::join));
  std::vector<TopicAddress> left;
  ASSERT_OK(store->sweep_lapsed("S", &left));
  EXPECT_EQ(left, (std::vector<TopicAddress>{{r.addr, "P again"}}));
}

TEST_P(StoreConformance, RestoringRegistersOnlyTheMissingEntries) {
  auto r = registered({"S"});
  r.entries = registration({"S", "T"}).entries;
  size_t restored = 0;
  ASSERT_OK(store->restore_registration(r, &restored));
  EXPECT_EQ(restored, 1u);
  EXPECT_EQ(directory("T"), (std::vector<TopicAddress>{{r.addr, r.unique_name}}));
  ASSERT_OK(store->restore_registration(r, &restored));
  EXPECT_EQ(restored, 0u);
}

TEST_P(StoreConformance, RestoringSetsKeysOnlyWhereAbsent) {
  auto r = registration({"S", "T"});
  int32_t kept = key_of_topic("S");
  r.entries[0].topic_key = kept + 40;
  r.entries[1].topic_key = kept + 41;
  r.sent_topic_keys = {{"D", kept + 42}};
  r.highest_key = kept + 42;
  ASSERT_OK(store->restore_registration(r, nullptr));
  EXPECT_EQ(key_of_topic("S"), kept);
  EXPECT_EQ(key_of_topic("T"), kept + 41);
  EXPECT_EQ(key_of_topic("D"), kept + 42);
}

TEST_P(StoreConformance, RestoringPutsBackTheChannelsOfTheSender) {
  auto r = registration({"S"});
  r.channels = {{"L", 13, "127.0.0.1:8000", "D"}};
  r.highest_key = 13;
  ASSERT_OK(store->restore_registration(r, nullptr));
  int32_t ck = 0;
  bool found = false;
  ASSERT_OK(store->connection_key("P", "S", "L", false, &ck, &found));
  EXPECT_TRUE(found);
  EXPECT_EQ(ck, 13);
  std::string from;
  ASSERT_OK(store->sender_topic(13, &from, &found));
  EXPECT_EQ(from, "S");
  std::vector<RememberedListener> listeners;
  ASSERT_OK(store->listeners_of_sender("P", "S", &listeners));
  ASSERT_EQ(listeners.size(), 1u);
  EXPECT_EQ(listeners[0].addr, "127.0.0.1:8000");
  EXPECT_EQ(listeners[0].topic, "D");
  EXPECT_EQ(listeners[0].unique_name, "L");
}

// Keys in use must not be handed out again; a counter already higher stays.
TEST_P(StoreConformance, RestoringRaisesTheKeyCounterAndNeverLowersIt) {
  auto r = registration({});
  r.highest_key = 50;
  ASSERT_OK(store->restore_registration(r, nullptr));
  int32_t next = key_of_topic("new");
  EXPECT_GT(next, 50);
  r.highest_key = 1;
  ASSERT_OK(store->restore_registration(r, nullptr));
  EXPECT_GT(key_of_topic("newer"), next);
}

// ---- The change feed: another instance hears of changes -----------------------------------------

TEST_P(StoreConformance, TheFeedAnnouncesAJoinAndASubscribe) {
  auto f = feed();
  ASSERT_OK(store->register_address("t", "127.0.0.1:1000", "u1", DirectoryEvent::join));
  ASSERT_OK(store->register_address("s", "127.0.0.1:1001", "u2", DirectoryEvent::subscribe));
  EXPECT_EQ(f.where_of(DirectoryEvent::join), Where("t", "127.0.0.1:1000"));
  EXPECT_EQ(f.where_of(DirectoryEvent::subscribe), Where("s", "127.0.0.1:1001"));
}

TEST_P(StoreConformance, TheFeedAnnouncesALeaveAndAnUnsubscribe) {
  ASSERT_OK(store->register_address("t", "127.0.0.1:1000", "u1", DirectoryEvent::join));
  ASSERT_OK(store->register_address("s", "127.0.0.1:1001", "u2", DirectoryEvent::subscribe));
  auto f = feed();
  ASSERT_OK(store->unregister_address("t", "127.0.0.1:1000", DirectoryEvent::leave));
  ASSERT_OK(store->unregister_address("s", "127.0.0.1:1001", DirectoryEvent::unsubscribe));
  EXPECT_EQ(f.where_of(DirectoryEvent::leave), Where("t", "127.0.0.1:1000"));
  EXPECT_EQ(f.where_of(DirectoryEvent::unsubscribe), Where("s", "127.0.0.1:1001"));
}

TEST_P(StoreConformance, TheFeedAnnouncesARefusalWithItsNumberAndReason) {
  auto f = feed();
  ASSERT_OK(store->report_refused(12, 0x1'0000'0001ull, "too big: 2000000 bytes"));
  DirectoryEvent e;
  ASSERT_TRUE(f.take(DirectoryEvent::refused, &e));
  EXPECT_EQ(e.connection_key, 12);
  EXPECT_EQ(e.number, 0x1'0000'0001ull);
  EXPECT_EQ(e.reason, "too big: 2000000 bytes");
}

TEST_P(StoreConformance, TheFeedAnnouncesALapsedEntryAsALeave) {
  auto r = registered({"S"}, 1);
  auto f = feed();
  ASSERT_TRUE(swept_to("S", 0).empty());
  EXPECT_EQ(f.where_of(DirectoryEvent::leave), Where("S", r.addr));
}

TEST_P(StoreConformance, TheFeedAnnouncesARestoredEntryAsWhatItWas) {
  auto r = registration({"S"});
  auto f = feed();
  ASSERT_OK(store->restore_registration(r, nullptr));
  EXPECT_EQ(f.where_of(DirectoryEvent::subscribe), Where("S", r.addr));
}

// ---- Reads for tools -----------------------------------------------------------------------------

TEST_P(StoreConformance, ListedTopicsAreThoseWithADirectoryOrAKeySortedOnce) {
  ASSERT_OK(store->register_address("c", "127.0.0.1:1000", "u1", DirectoryEvent::join));
  key_of_topic("c");
  key_of_topic("b");
  ASSERT_OK(store->register_address("a", "127.0.0.1:1000", "u1", DirectoryEvent::join));
  std::vector<std::string> topics;
  ASSERT_OK(store->list_topics(&topics));
  EXPECT_EQ(topics, (std::vector<std::string>{"a", "b", "c"}));
}

TEST_P(StoreConformance, ReadTopicsGivesEachKeyAndDirectoryInOrderAndAllocatesNothing) {
  int32_t key = key_of_topic("c");
  ASSERT_OK(store->register_address("c", "127.0.0.1:1000", "u1", DirectoryEvent::join));
  ASSERT_OK(store->register_address("a", "127.0.0.1:1001", "u2", DirectoryEvent::join));
  std::vector<TopicState> states;
  ASSERT_OK(store->read_topics({"c", "missing", "a"}, &states));
  ASSERT_EQ(states.size(), 3u);
  EXPECT_TRUE(states[0].has_key);
  EXPECT_EQ(states[0].key, key);
  EXPECT_EQ(states[0].addresses, (std::vector<TopicAddress>{{"127.0.0.1:1000", "u1"}}));
  EXPECT_FALSE(states[1].has_key);
  EXPECT_TRUE(states[1].addresses.empty());
  EXPECT_FALSE(states[2].has_key);
  EXPECT_EQ(states[2].addresses, (std::vector<TopicAddress>{{"127.0.0.1:1001", "u2"}}));
  std::vector<std::string> topics;
  ASSERT_OK(store->list_topics(&topics));
  EXPECT_EQ(topics, (std::vector<std::string>{"a", "c"}));
}

TEST_P(StoreConformance, ListedChannelsAreThoseWithAKeyOfOneSenderOrAll) {
  int32_t a = key_of_channel("U", "S", "L1"), b = key_of_channel("U", "S2", "L2");
  int32_t c = key_of_channel("V", "S", "L1");
  std::vector<ChannelName> channels;
  ASSERT_OK(store->list_channels("U", &channels));
  EXPECT_EQ(names_of(channels), names_of({{"U", "S", "L1", a}, {"U", "S2", "L2", b}}));
  ASSERT_OK(store->list_channels("", &channels));
  EXPECT_EQ(names_of(channels), names_of({{"U", "S", "L1", a}, {"U", "S2", "L2", b}, {"V", "S", "L1", c}}));
}

TEST_P(StoreConformance, ReadChannelsGivesEachChannelsStateInOrder) {
  auto all = queued(7, {4, 5});
  ASSERT_OK(store->set_sender_topic(7, "S"));
  ASSERT_OK(store->set_last_mess_number(7, 3));
  std::vector<ChannelState> states;
  ASSERT_OK(store->read_channels({8, 7}, true, &states));
  ASSERT_EQ(states.size(), 2u);
  EXPECT_FALSE(states[0].has_sender_topic);
  EXPECT_FALSE(states[0].ack.existed);
  EXPECT_EQ(states[0].queue_length, 0u);
  EXPECT_TRUE(states[0].head.empty());
  EXPECT_TRUE(states[1].has_sender_topic);
  EXPECT_EQ(states[1].sender_topic, "S");
  EXPECT_TRUE(states[1].ack.existed);
  EXPECT_EQ(states[1].ack.number, 3u);
  EXPECT_EQ(states[1].queue_length, 2u);
  EXPECT_EQ(states[1].head, all[0]);
  ASSERT_OK(store->read_channels({7}, false, &states));
  ASSERT_EQ(states.size(), 1u);
  EXPECT_TRUE(states[0].head.empty());
}

TEST_P(StoreConformance, ASendersSourceTopicsComeFromItsChannelsAndListenerMaps) {
  key_of_channel("U", "S2", "L");
  ASSERT_OK(store->save_listener_for_sender("U", "S1", "127.0.0.1:5", "T", "L"));
  key_of_channel("V", "S3", "L");
  std::vector<std::string> topics;
  ASSERT_OK(store->source_topics_of_sender("U", &topics));
  EXPECT_EQ(topics, (std::vector<std::string>{"S1", "S2"}));
}

TEST_P(StoreConformance, QueuedChannelsAreThoseWithAnOfflineQueueSorted) {
  queued(7, {1});
  queued(3, {2});
  ASSERT_OK(store->set_last_mess_number(5, 1));
  std::vector<int32_t> keys;
  ASSERT_OK(store->queued_channels(&keys));
  EXPECT_EQ(keys, (std::vector<int32_t>{3, 7}));
}

TEST_P(StoreConformance, AForgottenChannelLeavesNoRecord) {
  int32_t ck = key_of_channel("U", "S", "L");
  queued(ck, {1}, {{1, 1}});
  ASSERT_OK(store->set_sender_topic(ck, "S"));
  ASSERT_OK(store->set_last_mess_number(ck, 1));
  ASSERT_OK(store->report_refused(ck, 1, "too big"));
  ASSERT_OK(store->forget_channel({"U", "S", "L", ck}));
  std::vector<ChannelName> channels;
  ASSERT_OK(store->list_channels("", &channels));
  EXPECT_TRUE(channels.empty());
  std::vector<ChannelState> states;
  ASSERT_OK(store->read_channels({ck}, true, &states));
  EXPECT_FALSE(states.at(0).has_sender_topic);
  EXPECT_FALSE(states.at(0).ack.existed);
  EXPECT_EQ(states.at(0).queue_length, 0u);
  NumberRanges marks;
  ASSERT_OK(store->handover_marks(ck, &marks));
  EXPECT_TRUE(marks.empty());
}

TEST_P(StoreConformance, ADeletedTopicKeyIsAllocatedAnew) {
  int32_t old_key = key_of_topic("t");
  ASSERT_OK(store->delete_topic_key("t"));
  std::vector<TopicState> states;
  ASSERT_OK(store->read_topics({"t"}, &states));
  EXPECT_FALSE(states.at(0).has_key);
  EXPECT_NE(key_of_topic("t"), old_key);
}

// ---- A store that cannot work --------------------------------------------------------------------

using Call = std::pair<const char*, std::function<Status(Store&)>>;

// Every operation, with arguments that would succeed on a working store.
std::vector<Call> every_call() {
  static const std::string frame = numbered_frame(1);
  static const Registration r = registration({"S"});
  static int32_t key;
  static bool found;
  static uint64_t n;
  static std::string text;
  static AckCounter ack;
  static NumberRanges marks;
  static size_t restored;
  static std::vector<TopicAddress> addrs;
  static std::vector<std::string> strings;
  static std::vector<QueuedFrame> queued;
  static std::vector<RememberedListener> listeners;
  static std::vector<std::pair<std::string, int32_t>> pairs;
  static std::vector<TopicState> topics;
  static std::vector<ChannelName> names;
  static std::vector<ChannelState> channels;
  static std::vector<int32_t> keys;
  static std::vector<DirectoryEvent> events;
  return {
      {"ping", [](Store& s) { return s.ping(); }},
      {"register_address", [](Store& s) { return s.register_address("t", "a:1", "u", DirectoryEvent::join); }},
      {"unregister_address", [](Store& s) { return s.unregister_address("t", "a:1", DirectoryEvent::leave); }},
      {"addresses_of_topic", [](Store& s) { return s.addresses_of_topic("t", &addrs); }},
      {"unsubscribed_from_topic", [](Store& s) { return s.unsubscribed_from_topic("t", &strings); }},
      {"delete_topic_addresses", [](Store& s) { return s.delete_topic_addresses("t"); }},
      {"renew_registration", [](Store& s) { return s.renew_registration(r, &found); }},
      {"sweep_lapsed", [](Store& s) { return s.sweep_lapsed("t", &addrs); }},
      {"restore_registration", [](Store& s) { return s.restore_registration(r, &restored); }},
      {"topic_key", [](Store& s) { return s.topic_key("t", &key); }},
      {"connection_key", [](Store& s) { return s.connection_key("U", "S", "L", true, &key, &found); }},
      {"set_sender_topic", [](Store& s) { return s.set_sender_topic(1, "S"); }},
      {"sender_topic", [](Store& s) { return s.sender_topic(1, &text, &found); }},
      {"read_ack", [](Store& s) { return s.read_ack(1, true, &ack); }},
      {"set_last_mess_number", [](Store& s) { return s.set_last_mess_number(1, 1); }},
      {"save_listener_for_sender", [](Store& s) { return s.save_listener_for_sender("U", "S", "a:1", "T", "L"); }},
      {"listeners_of_sender", [](Store& s) { return s.listeners_of_sender("U", "S", &listeners); }},
      {"connection_keys_of_sender", [](Store& s) { return s.connection_keys_of_sender("U", "S", &pairs); }},
      {"delete_listeners_of_sender", [](Store& s) { return s.delete_listeners_of_sender("U", "S"); }},
      {"push_messages", [](Store& s) { return s.push_messages(1, {&frame}, {{1, 1}}); }},
      {"handover_marks", [](Store& s) { return s.handover_marks(1, &marks); }},
      {"remove_messages", [](Store& s) { return s.remove_messages(1, {frame}, &n); }},
      {"queue_length", [](Store& s) { return s.queue_length(1, &n); }},
      {"read_messages_after", [](Store& s) { return s.read_messages_after(1, 0, 10, &queued); }},
      {"drop_messages_through", [](Store& s) { return s.drop_messages_through(1, 1, &found); }},
      {"last_stored_message", [](Store& s) { return s.last_stored_message(1, &text, &found); }},
      {"clear_channel", [](Store& s) { return s.clear_channel(1); }},
      {"report_refused", [](Store& s) { return s.report_refused(1, 1, "too big"); }},
      {"list_topics", [](Store& s) { return s.list_topics(&strings); }},
      {"read_topics", [](Store& s) { return s.read_topics({"t"}, &topics); }},
      {"list_channels", [](Store& s) { return s.list_channels("", &names); }},
      {"read_channels", [](Store& s) { return s.read_channels({1}, true, &channels); }},
      {"source_topics_of_sender", [](Store& s) { return s.source_topics_of_sender("U", &strings); }},
      {"queued_channels", [](Store& s) { return s.queued_channels(&keys); }},
      {"forget_channel", [](Store& s) { return s.forget_channel({"U", "S", "L", 1}); }},
      {"delete_topic_key", [](Store& s) { return s.delete_topic_key("t"); }},
      {"wait_directory_events", [](Store& s) { return s.wait_directory_events(100, &events); }},
  };
}

// A peer must report an outage and go on, never hang on it: each call fails by itself, soon.
TEST_P(StoreConformance, EveryCallOnAStoreThatCannotWorkFailsSoonWithAStoreError) {
  auto failing = open(GetParam().failing_url);
  ASSERT_NE(failing, nullptr);
  for (const auto& call : every_call()) {
    auto start = Clock::now();
    Status s = call.second(*failing);
    EXPECT_EQ(s.code, Err::store) << call.first << ": " << s.message;
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(3)) << call.first;
  }
}

TEST_P(StoreConformance, AStoreThatCannotWorkReportsItselfDown) {
  auto failing = open(GetParam().failing_url);
  ASSERT_NE(failing, nullptr);
  std::vector<std::pair<bool, std::string>> reports;
  failing->on_health([&](bool up, const std::string& why) { reports.emplace_back(up, why); });
  int32_t key = 0;
  EXPECT_FALSE(failing->topic_key("t", &key));
  ASSERT_FALSE(reports.empty());
  EXPECT_FALSE(reports.back().first);
  EXPECT_FALSE(reports.back().second.empty());
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreConformance, ::testing::ValuesIn(kKinds), name_of);
