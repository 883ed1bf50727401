// One liner peer: a source topic it listens on, subscriptions, a listener, a sender and the
// directory watch, over one store. This is what the C API's handle points to. Its files:
// client.cpp (life), client_routes.cpp, client_send.cpp, client_topics.cpp,
// client_introspection.cpp.
//
// Locks: api_mu_ serialises store round trips made on behalf of API calls (one store
// connection); topics_mu_ guards the topics it listens on and is never held across a store
// round trip; life_mu_ serialises run/stop. The hot send path takes the route table's lock
// (route_table.hpp) and the sender's, one after the other, never both.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "core/client_stats.hpp"
#include "core/delivery.hpp"
#include "core/directory_watch.hpp"
#include "core/handover.hpp"
#include "core/limits.hpp"
#include "core/listener.hpp"
#include "core/route_table.hpp"
#include "core/sender.hpp"
#include "core/status.hpp"
#include "core/status_event.hpp"
#include "core/store.hpp"
#include "core/waiting_sends.hpp"

namespace liner {

struct ClientOptions {
  std::string unique_name;
  std::string topic;
  std::string localhost;
  std::string store_url;
  // Limits; 0 = the process-wide value of limits.hpp.
  size_t max_message_size = 0;
  size_t compress_threshold = 0;
  size_t max_send_queue_bytes = 0;
  size_t max_send_queue_messages = 0;
  size_t max_receive_queue_bytes = 0;  // read, not yet delivered; 0: Delivery's (1 MiB, also the most)
  // How long create() and run() keep trying a store that does not answer, in ms, at most
  // kMaxStoreWaitMs; 0: fail at once; < 0: the process-wide value (limits().store_wait_ms).
  int64_t store_wait_ms = -1;
  // A send to a topic the route cache does not know returns at once, and the message waits
  // while another thread looks the topic up (WaitingSends). Off (C, Python): the first send
  // to a topic reads the directory on the caller's thread and fails NO_ADDRESS at once, as
  // liner_broker does. The Node addon turns it on: its JS thread never waits on the store.
  bool lookup_off_thread = false;
  // At-least-once messages of send_to that wait for a peer that left their topic go to the
  // topic's other peers (handover.hpp). Off: they wait for that peer (peer affinity).
  bool handover = true;
};

// One offline queue of this sender.
struct PendingQueue {
  std::string addr;
  std::string topic;
  std::string unique_name;
  uint64_t count = 0;
};

// Topic reserved by liner_broker >= 1.3.2 for its control messages.
extern const char* const kInternalTopic;

class Client {
 public:
  // Validates the options and checks that the store answers.
  static Status create(const ClientOptions& options, std::unique_ptr<Client>* out);
  ~Client();

  // `batch_done` (optional) follows the receive calls of each delivered batch.
  Status run(ReceiveFn receive, BatchDoneFn batch_done = nullptr);
  Status stop();
  bool running() const { return running_.load(); }

  Status send_to(const std::string& topic, const void* data, size_t size, bool at_least_once);
  Status send_all(const std::string& topic, const void* data, size_t size, bool at_least_once);
  // Queues `count` messages, in order, to ONE peer serving `topic` (round-robin picks it once
  // per call), under one route look-up and one queue lock. Every message is checked first: a bad
  // one refuses them all. Stops at the first that finds the peer's queue full (Err::busy);
  // *queued counts those queued, which is 0 after any other error.
  Status send_to_many(const std::string& topic, const Payload* messages, size_t count, bool at_least_once,
                      size_t* queued);
  Status subscribe(const std::string& topic);
  Status unsubscribe(const std::string& topic);
  Status refresh_address_topic(const std::string& topic);
  Status clear_stored_messages();
  Status clear_addresses_of_topic();

  const std::string& unique_name() const { return opt_.unique_name; }
  const std::string& topic() const { return opt_.topic; }
  // Address the listener was last bound to ("" before the first run; kept after stop).
  std::string bound_address() const;
  // Address registered in the directory while running ("" when stopped).
  std::string published_address() const;
  // Address to register instead of the bound one (e.g. bound to 0.0.0.0). Before run only;
  // "" clears. Port 0 stands for the bound port.
  Status set_advertise_address(const std::string& addr);
  std::string advertise_address() const;
  // Hand-over (ClientOptions::handover) on or off. Before run only: what a run stored is
  // marked (or not) by that run's setting.
  Status set_handover(bool on);
  bool handover() const;

  void set_status_handler(StatusHandler handler) { status_.set(std::move(handler)); }
  Status list_addresses(const std::string& topic, std::vector<TopicAddress>* out);
  Status pending_by_peer(std::vector<PendingQueue>* out);
  ClientStats stats() const;
  // True on this client's delivery thread while it runs the receive callback.
  bool in_callback() const;

 private:
  explicit Client(ClientOptions options, std::unique_ptr<Store> store);
  Status check_topic(const std::string& topic, const char* action) const;
  size_t store_wait_ms() const;
  // send_to, send_all (count 1) and send_to_many. *queued (may be null) as send_to_many's.
  Status send(const std::string& topic, const Payload* messages, size_t count, bool at_least_once, bool all,
              size_t* queued);
  // How a send meets a channel that is not open: the caller never opens one (store round trips)
  // itself. `wait`: the messages wait in waiting_ while it opens the channel. `wait_locked`: the
  // same, and the caller holds waiting_->lock(), so the messages also wait behind any already
  // waiting for that channel. `never`: waiting_'s own flush, which has opened it (Err::store
  // when the channel is not there: open it again).
  enum class Opening { wait, wait_locked, never };
  // Whether a send's messages may be handed to another peer of their topic (Sender::enqueue's
  // `handover`): at-least-once messages of send_to while hand-over is on; a send_all copy never.
  bool hands_over(bool at_least_once, bool all) const { return at_least_once && !all && handover_on_; }
  // Queues `messages` on the sender's channel to `t`, or, when there is none, has one opened
  // as `opening` says. `handover` and `channel` as Sender::enqueue's; *done (may be null)
  // counts the messages queued or waiting.
  Status enqueue_opening(const TopicAddress& t, const std::string& topic, int32_t topic_key,
                         const Payload* messages, size_t count, bool at_least_once, bool handover,
                         Sender::ChannelRef* channel, size_t* done, Opening opening = Opening::wait);
  // enqueue_opening()'s half for a channel that is not open (out of line: the send path stays
  // as small as it was).
  [[gnu::noinline]] Status enqueue_waiting(const TopicAddress& t, const std::string& topic, int32_t topic_key,
                                           const Payload* messages, size_t count, bool at_least_once,
                                           bool handover, Sender::ChannelRef* channel, size_t* done,
                                           Opening opening);
  // send()'s path while messages wait in waiting_ (or must start to): under its lock, so that
  // a send never overtakes an earlier one waiting for the same route or channel.
  // targets null: the route is not known; the messages wait for its look-up (started here if
  // none is under way), or, with `unless_looked_up`, only if one is: else that is the result.
  // Out of line: send() is flattened, and this path (locks, copies, events) is not its hot one.
  [[gnu::noinline]] Status send_waiting(const std::string& topic, const Payload* messages, size_t count,
                                        bool at_least_once, bool all, const std::vector<TopicAddress>* targets,
                                        int32_t topic_key, size_t* queued, const Status* unless_looked_up = nullptr);
  // Under waiting_->lock(): `count` messages wait for `key`.
  Status wait_for(const WaitingSends::Key& key, const std::string& topic, int32_t topic_key,
                  const std::string& unique_name, const Payload* messages, size_t count, bool at_least_once,
                  bool all, bool handover, size_t* added);
  // WaitingSends' Resolve, Flush and Dropped (see there).
  Status resolve_waiting(Store& store, const WaitingSends::Key& key, const WaitingSends::Message& first);
  Status flush_waiting(const WaitingSends::Key& key, const WaitingSends::Message& m);
  void report_dropped(const WaitingSends::Key& key, size_t count, const std::string& why);
  void refusal_ended(const WaitingSends::Key& key);
  // send_all's half of send(): one copy per target; after a partial refusal, a retry with the
  // same message sends only the copies that were refused (UnfinishedSendAll in client.cpp).
  Status send_to_every(const std::vector<TopicAddress>& targets, const std::string& topic, int32_t topic_key,
                       const Payload& message, bool at_least_once, Opening opening = Opening::wait);
  // Reads `topic`'s route and key into the cache. `store` is the API's (under api_mu_) or
  // waiting_'s (its thread).
  Status load_route(Store& store, const std::string& topic);
  // load_route() with the directory already read: `addrs`.
  Status cache_route(Store& store, const std::string& topic, std::vector<TopicAddress> addrs);
  // *single: the route has exactly one address (send_to may remember it). *look_up: the route
  // is not in the cache and opt_.lookup_off_thread: nothing was picked, the message must wait.
  Status pick_targets(const std::string& topic, bool at_least_once, bool all,
                      std::vector<TopicAddress>* targets, int32_t* topic_key, bool* single, bool* look_up);
  // Out of `candidates` (round-robin's order), the first peer the sender can reach, or the
  // first when none is; it alone is left, and round-robin goes on after it.
  void choose_reachable(const std::string& topic, std::vector<TopicAddress>* candidates);
  // Peers that served `topic` (their channels queue offline); false when there are none.
  bool offline_targets(const std::string& topic, bool all, std::vector<TopicAddress>* targets);
  // Opens channels to the listeners of `topic` this sender remembers in the store (an earlier
  // run sent to them), except those that unsubscribed from it.
  Status open_remembered_channels(Store& store, const std::string& topic);
  // Peers at `addrs` left `topic` by unsubscribing: no longer an offline route for it.
  void forget_unsubscribed(const std::string& topic, const std::vector<std::string>& addrs);
  void follow_moved_listener(const DirectoryEvent& e);
  void restore_channels();
  // This sender's offline queue for that listener holds messages (on `store`'s thread).
  bool stores_for(Store& store, const std::string& listener_unique);
  // Registers `topic` as one this client listens on, under `key` (delivery and registration).
  void listen_as(const std::string& topic, int32_t key);
  // What this running client keeps in the store (Registration, store.hpp).
  Registration registration() const;
  // Directory thread, every tick: puts back what the store lost of this client's registration
  // (a Redis restarted empty, keys deleted), within one tick of the store answering again.
  void keep_registered();
  void on_directory_event(const DirectoryEvent& e);
  void refresh_routes();
  void unregister_all();
  void teardown();
  std::shared_lock<std::shared_mutex> lock_shared_state() const;
  ClientStats stats_locked() const;

  const ClientOptions opt_;
  std::unique_ptr<Store> api_store_;
  std::mutex api_mu_;

  RouteTable routes_;  // topics sent to, refreshed or listed: kept current, their peers reported
  mutable std::mutex topics_mu_;
  std::map<std::string, int32_t> listen_keys_;  // its source topic and subscriptions, while running
  std::set<std::string> subscriptions_;

  // run/stop hold it exclusively; every other call holds it shared, so that a call never
  // sees the client half started or half stopped.
  mutable std::shared_mutex life_mu_;
  std::atomic<bool> running_{false};
  std::string bound_;
  std::string advertise_;
  bool handover_on_;  // written only while stopped, under life_mu_ (set_handover); sends read it under it
  std::string published_;
  StatusSink status_{this};
  ClientStats past_;
  std::map<std::string, ChannelInfo> last_channels_;  // by listener name, as of the last stop  // counters of earlier runs (sender and listener are per run)
  std::unique_ptr<Store> refresh_store_;  // directory-watch thread only
  std::unique_ptr<Delivery> delivery_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Sender> sender_;
  std::unique_ptr<DirectoryWatch> watch_;
  std::unique_ptr<WaitingSends> waiting_;  // while running
  std::unique_ptr<Handover> handover_;     // while running with handover_on_; directory thread
  std::vector<TopicAddress> flush_targets_;  // waiting_'s thread: where the batch being flushed goes
  int32_t flush_topic_key_ = 0;
  std::string flush_topic_;
};

}  // namespace liner
