// Hand-over: at-least-once messages of send_to that wait for a peer that left their topic (its
// lease lapsed, it stopped, it was scaled down) go to the topic's peers that remain.
//
// A channel's messages for topic T are handed over while its peer is not in T's directory (by
// address or by name: a peer that moved is not gone) and somebody else is. With nobody left they
// wait for that peer, as without hand-over. A peer that unsubscribed from T is not "gone": its
// channel no longer serves T (Sender::forget_topic), and what it already holds is its own.
//
// Invariants this unit keeps:
// - Only frames sent with send_to move: the sender marks them in the store as it stores them
//   (NumberRanges, Store::push_messages). A send_all copy, or any frame of a liner_broker
//   sender, is never marked, so it never moves.
// - A frame leaves the departed peer's queue only after the peer that took it acknowledged it
//   (its channel's ack counter reached the number it got): a sender that dies meanwhile leaves
//   it where it was, to be handed again by its next run or delivered to the peer if it returns.
//   So a handed message can arrive twice (at the departed peer and at its replica, or at two
//   replicas when the first to take it left too), never zero times.
// - What waits in RAM for a departed peer is first sent to its offline queue
//   (Sender::release_peer), so that both places are handed over the same way.
// - Bounded: a pass reads at most kPassFrames frames of a queue, going on where the last pass
//   stopped (a sweep of a long queue takes several passes), and a taker's send queue caps what
//   it takes (a BUSY ends the pass; the rest goes on the next one, a second later). A queue
//   swept to its end with nothing left to hand is not read again until its marks change (a
//   spill added some) or a handed copy must be handed again: what waits there for good (send_all
//   copies for a subscriber that left) costs one read of the marks a pass, not of the queue.
//
// Threads: the directory thread only (pass() on each tick, with its store).
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/sender.hpp"
#include "core/store.hpp"

namespace liner {

class Handover {
 public:
  // The directory of `topic` as the client's cache has it, and the topic's key; false when
  // the cache does not know the topic.
  using RouteFn = std::function<bool(const std::string& topic, std::vector<TopicAddress>* addrs, int32_t* key)>;

  Handover(Sender& sender, RouteFn route) : sender_(sender), route_(std::move(route)) {}

  // Hands over what waits for departed peers, and removes from their queues what the peers
  // that took it acknowledged. Store failures end the pass early; the next one goes on.
  void pass(Store& store);

 private:
  using Clock = std::chrono::steady_clock;
  // A frame of a departed peer's queue, now queued on another channel.
  struct Handed {
    int32_t taker = 0;        // the connection key of the channel that took it
    uint64_t covered_by = 0;  // its ack at or above this covers the handed copy
    std::string frame;        // as stored in the departed peer's queue
    Clock::time_point at;
  };
  // How far a sweep of a queue for one topic got.
  struct Sweep {
    uint64_t after = 0;  // the place (Store::read_messages_after) the next pass reads after (0: a sweep starts)
    NumberRanges marks;   // as the sweep started
    bool handed = false;  // it handed something
    bool done = false;    // it reached the end having handed nothing: read again on new marks
  };
  // A channel whose peer left one of its topics.
  struct Departed {
    bool released = false;             // its RAM was sent to its offline queue
    std::map<uint64_t, Handed> handed;  // by the frame's number in that queue
    std::map<int32_t, Sweep> sweeps;    // by topic key
    size_t next = 0;                    // round-robin over the takers
  };

  void hand_over(Store& store, const ChannelInfo& channel, const std::string& topic, int32_t topic_key,
                 const std::vector<TopicAddress>& takers, Departed& departed);
  // Queues one stored frame on a taker; false when it should not be tried again this pass.
  bool hand_one(Store& store, const std::string& frame, uint64_t number, const std::string& topic,
                int32_t topic_key, const std::vector<TopicAddress>& takers, Departed& departed);
  void remove_acknowledged(Store& store);

  Sender& sender_;
  RouteFn route_;
  std::map<int32_t, Departed> departed_;  // by the departed peer's connection key
};

}  // namespace liner
