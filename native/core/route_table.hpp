// A client's route cache: the addresses that serve each topic it sends to (as last read from
// the directory, kept current by its events and the directory watch), the topics' keys, the
// topics it watches, and each topic's round-robin position.
//
// Invariants:
// - a topic's key, once known, never changes (the store allocates it once);
// - a topic's addresses are replaced whole, and every replacement that changes them, like
//   every clear(), moves epoch(): a thread that remembers a route (client_send.cpp) uses it
//   only while the epoch has not moved;
// - the table takes no other lock while it holds its own, so callers may hold theirs. Choosing
//   among a topic's peers by reachability (the sender's state) happens between two calls:
//   pick(..., Pick::candidates), then settle().
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/store.hpp"

namespace liner {

class RouteTable {
 public:
  // What pick() puts in *targets when the topic is served.
  enum class Pick {
    all,         // every address (send_all)
    next,        // the next address in round-robin order (send_to), and the position moves on
    candidates,  // every address in the order round-robin tries them; settle() moves on
  };
  // What the table knows of a topic.
  struct Lookup {
    bool route = false;  // its addresses were read (they may be none)
    bool key = false;    // its key is known (topic_key)
    int32_t topic_key = 0;
    size_t addresses = 0;
    // Served by nobody, as read less than kUnservedFor ago (see route_table.cpp).
    bool unserved_lately = false;
    bool served() const { return route && key && addresses > 0; }
  };

  // Looks `topic` up; when it is served(), fills *targets as `how` says.
  Lookup pick(const std::string& topic, Pick how, std::vector<TopicAddress>* targets);
  // After pick(Pick::candidates): the send went to `addr`; round-robin goes on after it.
  void settle(const std::string& topic, const std::string& addr);

  // The directory says `topic` is served by `addrs` (none: nobody, which is remembered too).
  void store(const std::string& topic, std::vector<TopicAddress> addrs);
  // The first read of `topic`: its addresses and key; the topic is watched from now on.
  void cache(const std::string& topic, int32_t key, std::vector<TopicAddress> addrs);
  bool key_of(const std::string& topic, int32_t* key) const;
  // The addresses and key of a topic read before; false when either is not known.
  bool cached(const std::string& topic, std::vector<TopicAddress>* addrs, int32_t* key) const;
  // Every topic key known (the keys this client sent with: kept in the store's registration).
  std::vector<std::pair<std::string, int32_t>> keys() const;

  // Topics kept current by the directory watch: sent to, refreshed or listed.
  void watch(const std::string& topic);
  bool watches(const std::string& topic) const;
  std::set<std::string> watched() const;

  // Forgets every topic's addresses (a client that stops); keys and watched topics stay.
  void clear_addresses();

  // Moves whenever any table changes a route (or a client goes away, since another may be
  // allocated where it was).
  static uint64_t epoch() { return epoch_.load(std::memory_order_acquire); }
  static void changed() { epoch_.fetch_add(1, std::memory_order_release); }

 private:
  struct Route {
    std::vector<TopicAddress> addrs;  // empty: nobody served the topic when it was last read
    size_t next = 0;                  // round-robin position
    std::chrono::steady_clock::time_point read_at{};  // when the directory said so
  };

  static std::atomic<uint64_t> epoch_;
  mutable std::mutex mu_;
  std::map<std::string, Route> routes_;
  std::map<std::string, int32_t> keys_;
  std::set<std::string> watched_;
};

}  // namespace liner
