#include "core/client.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <thread>
#include <utility>

#include "core/log.hpp"
#include "core/per_thread.hpp"

namespace liner {

namespace {
constexpr char kInternalTopicName[] = "__#internal_channel";
// Compared with every topic a send names: lengths first.
constexpr std::string_view kInternalTopicView(kInternalTopicName, sizeof kInternalTopicName - 1);
}  // namespace

const char* const kInternalTopic = kInternalTopicName;

namespace {

constexpr auto kStopDrain = std::chrono::milliseconds(2000);
// An at-least-once send to a topic nobody serves goes to the offline queue of the peers that
// served it. How long "nobody" read from the directory is trusted before the next such send
// reads it again: without it every send paid a directory round trip (~40 us). A peer that comes
// back is seen sooner through its directory event, and nothing is lost meanwhile: its queue
// is delivered when it reconnects.
constexpr auto kUnservedFor = std::chrono::milliseconds(200);
// Bytes that may wait for one peer's channel or one topic's look-up (WaitingSends), in send-queue
// byte caps. They wait uncompressed (the sender compresses as it queues), and an open channel
// makes room as it writes; with one cap, a burst to a peer whose channel is being opened was
// refused where the open channel took it. The send-queue count cap applies as it is.
constexpr size_t kWaitingQueueCaps = 4;

// Pings `store` until it answers or `wait_ms` passed (0: once), pausing 100 ms between tries,
// doubling up to 1 s. Any failure is worth another try: a store that is starting refuses
// connections, or answers LOADING while it reads its data.
Status wait_for_store(Store& store, size_t wait_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  auto pause = std::chrono::milliseconds(100);
  for (;;) {
    Status s = store.ping();
    auto now = std::chrono::steady_clock::now();
    if (s || now >= deadline) return s;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, std::chrono::milliseconds(1000));
  }
}

// Bumped whenever any client's route cache changes (or a client goes away). A thread's
// remembered route for send_to is used only while this has not moved.
std::atomic<uint64_t> g_route_epoch{1};

void routes_changed() { g_route_epoch.fetch_add(1, std::memory_order_release); }

// The last single-address route a thread's send_to used: a stream of sends to one topic skips
// the route lock, two map look-ups and the copy of the address.
struct RememberedRoute {
  const void* client = nullptr;
  uint64_t epoch = 0;
  std::string topic;
  int32_t topic_key = 0;
  std::vector<TopicAddress> targets;  // exactly one
  Sender::Channel* channel = nullptr; // the sender's channel to it, once enqueue found it
  std::vector<TopicAddress> picked;   // pick_targets' output, reused (keeps its capacity)
};

// A send_all that queued some copies and was refused others (a full queue: BUSY), kept for the
// thread that made it. Calling send_all again with the same client, topic, delivery mode and
// bytes completes it: only the addresses without their copy get one, so the retry a caller
// makes after BUSY delivers no duplicates. Any other send_all from the thread forgets it.
struct UnfinishedSendAll {
  const void* client = nullptr;
  std::string topic;
  std::string data;
  bool at_least_once = false;
  std::set<std::string> queued;  // addresses that have their copy

  bool is_retry_of(const void* c, const std::string& t, const Payload& m, bool alo) const {
    return client == c && topic == t && at_least_once == alo && data.size() == m.size &&
           std::memcmp(data.data(), m.data, m.size) == 0;
  }
  void forget() {
    client = nullptr;
    std::string().swap(data);  // a big message is not kept for nothing
    queued.clear();
  }
};

Status not_running(const char* action) {
  return Status(Err::not_running, std::string("you can't ") + action +
                                      " because the client is not running (call run first)");
}

}  // namespace

Client::Client(ClientOptions options, std::unique_ptr<Store> store)
    : opt_(std::move(options)), api_store_(std::move(store)), handover_on_(opt_.handover) {}

Client::~Client() {
  stop();
  routes_changed();  // another client may be allocated where this one was
}

Status Client::create(const ClientOptions& o, std::unique_ptr<Client>* out) {
  if (o.unique_name.empty()) return Status(Err::invalid_arg, "unique_name empty");
  if (o.topic.empty()) return Status(Err::invalid_arg, "topic empty");
  if (o.localhost.empty()) return Status(Err::invalid_arg, "localhost empty");
  if (o.store_url.empty()) return Status(Err::invalid_arg, "store_path empty");
  if (o.topic == kInternalTopic)
    return Status(Err::internal_topic, std::string("topic ") + kInternalTopic + " is reserved");
  std::string host;
  int port = 0;
  Status s = split_host_port(o.localhost, &host, &port);
  if (!s) return s;
  if (o.store_wait_ms > int64_t(kMaxStoreWaitMs))
    return Status(Err::invalid_arg, "store wait " + std::to_string(o.store_wait_ms) + " ms is over the most, " +
                                        std::to_string(kMaxStoreWaitMs) + " ms");
  std::unique_ptr<Store> store;
  s = open_store(o.store_url, &store);
  if (!s) return s;
  std::unique_ptr<Client> client(new Client(o, std::move(store)));
  s = wait_for_store(*client->api_store_, client->store_wait_ms());
  if (!s) return s;
  *out = std::move(client);
  return Status();
}

size_t Client::store_wait_ms() const {
  return opt_.store_wait_ms >= 0 ? size_t(opt_.store_wait_ms) : limits().store_wait_ms.load();
}

bool Client::in_callback() const { return callback_owner() == this; }

std::shared_lock<std::shared_mutex> Client::lock_shared_state() const {
  // Free unless run or stop is under way: then the thread matters. Inside the receive
  // callback run/stop may be waiting for this very thread: never block there.
  std::shared_lock<std::shared_mutex> lock(life_mu_, std::try_to_lock);
  if (!lock.owns_lock() && !in_callback()) lock.lock();
  return lock;
}

std::string Client::bound_address() const {
  auto lock = lock_shared_state();
  return lock.owns_lock() ? bound_ : std::string();
}

Status Client::check_topic(const std::string& topic, const char* action) const {
  if (topic.empty()) return Status(Err::invalid_arg, "topic name empty");
  if (topic == opt_.topic)
    return Status(Err::self_topic, std::string("you can't ") + action + " on your own topic");
  if (std::string_view(topic) == kInternalTopicView)
    return Status(Err::internal_topic, std::string("topic ") + kInternalTopic + " is reserved");
  return Status();
}

// ---- lifecycle -----------------------------------------------------------------------------

Status Client::run(ReceiveFn receive, BatchDoneFn batch_done) {
  if (in_callback()) return Status(Err::invalid_arg, "run cannot be called from the receive callback");
  std::unique_lock<std::shared_mutex> life(life_mu_);
  if (running_) {
    log_line("client " + opt_.unique_name + " already is running");
    return Status();
  }
  if (!receive) return Status(Err::invalid_arg, "receive callback is NULL");
  if (size_t wait = store_wait_ms()) {
    // On a store of its own, with no lock held: other calls neither wait for this one nor
    // share its connection, and a store that stays down fails run() below as without a wait.
    life.unlock();
    std::unique_ptr<Store> probe;
    Status s = open_store(opt_.store_url, &probe);
    if (s) s = wait_for_store(*probe, wait);
    if (!s) return s;
    life.lock();
    if (running_) return Status();
  }

  std::unique_ptr<Store> delivery_store, sender_store, feed_store, waiting_store;
  for (auto* s : {&delivery_store, &sender_store, &feed_store, &refresh_store_, &waiting_store}) {
    Status st = open_store(opt_.store_url, s);
    if (!st) return st;
  }
  // An outage is reported once per side (StatusSink); the API's and the directory's stores
  // report theirs through calls' errors and the log.
  delivery_store->on_health([this](bool up, const std::string&) { status_.store_state(StatusKind::listener_store_error, up); });
  sender_store->on_health([this](bool up, const std::string&) { status_.store_state(StatusKind::sender_store_error, up); });
  waiting_store->on_health([this](bool up, const std::string&) { status_.store_state(StatusKind::sender_store_error, up); });
  // The user's callbacks run marked as such (in_callback()), so that they cannot stop or
  // re-run the client from inside: Delivery marks each batch it delivers.
  size_t max_message = effective(opt_.max_message_size, limits().max_message_size);
  delivery_.reset(new Delivery(std::move(delivery_store), std::move(receive), std::move(batch_done),
                               opt_.max_receive_queue_bytes, max_message, &status_, this));
  listener_.reset(new Listener(delivery_.get(),
                               uint32_t(std::min<size_t>(max_message + kBodyHeaderSize, UINT32_MAX))));

  // Bind first: a failed bind must leave nothing registered (liner_broker 1.3.1 left the
  // unresolved address in the directory).
  Status s = listener_->bind(opt_.localhost, &bound_);
  if (!s) {
    s.code = Err::bind;
    teardown();
    return s;
  }
  published_ = bound_;
  if (!advertise_.empty()) {
    // Port 0 in the advertised address stands for the port we were given.
    published_ = advertise_;
    if (published_.size() > 2 && published_.compare(published_.size() - 2, 2, ":0") == 0)
      published_ = published_.substr(0, published_.size() - 1) + bound_.substr(bound_.rfind(':') + 1);
  }
  std::set<std::string> subs;
  {
    std::lock_guard<std::mutex> api(api_mu_);
    int32_t own_key = 0;
    s = api_store_->topic_key(opt_.topic, &own_key);
    if (s) {
      delivery_->set_topic(own_key, opt_.topic);
      std::lock_guard<std::mutex> lock(route_mu_);
      subs = subscriptions_;
      listen_keys_.clear();
      listen_keys_[opt_.topic] = own_key;
    }
    for (auto it = subs.begin(); s && it != subs.end(); ++it) {
      int32_t key = 0;
      s = api_store_->topic_key(*it, &key);
      if (s) listen_as(*it, key);
    }
    if (s) s = api_store_->register_address(opt_.topic, published_, opt_.unique_name, DirectoryEvent::join);
    for (auto it = subs.begin(); s && it != subs.end(); ++it)
      s = api_store_->register_address(*it, published_, opt_.unique_name, DirectoryEvent::subscribe);
    bool complete = false;  // the first lease, at once: a peer that dies in its first second goes too
    if (s) s = api_store_->renew_registration(registration(), &complete);
  }
  if (!s) {
    unregister_all();
    teardown();
    return s;
  }

  SenderOptions so;
  so.unique_name = opt_.unique_name;
  so.source_topic = opt_.topic;
  so.max_queue_bytes = opt_.max_send_queue_bytes;
  so.max_queue_messages = opt_.max_send_queue_messages;
  so.compress_threshold = opt_.compress_threshold;
  so.status = &status_;
  sender_.reset(new Sender(so, std::move(sender_store)));
  waiting_.reset(new WaitingSends(
      std::move(waiting_store),
      [this](Store& store, const WaitingSends::Key& k, const WaitingSends::Message& m) { return resolve_waiting(store, k, m); },
      [this](const WaitingSends::Key& k, const WaitingSends::Message& m) { return flush_waiting(k, m); },
      [this](const WaitingSends::Key& k, size_t n, const std::string& why) { report_dropped(k, n, why); },
      [this](const WaitingSends::Key& k) { refusal_ended(k); }));
  watch_.reset(new DirectoryWatch(
      std::move(feed_store), [this](const DirectoryEvent& e) { on_directory_event(e); },
      [this] {
        keep_registered();
        refresh_routes();
        if (handover_ && running_) handover_->pass(*refresh_store_);
      }));
  if (handover_on_)
    handover_.reset(new Handover(*sender_, [this](const std::string& topic, std::vector<TopicAddress>* addrs,
                                                  int32_t* key) { return cached_route(topic, addrs, key); }));
  s = delivery_->start();
  if (s) s = listener_->start();
  if (s) s = sender_->start();
  if (s) s = waiting_->start();
  if (s) s = watch_->start();
  if (!s) {
    unregister_all();
    teardown();
    return s;
  }
  running_ = true;
  restore_channels();
  return Status();
}

Status Client::stop() {
  if (in_callback()) return Status(Err::invalid_arg, "a client cannot be stopped from its own receive callback");
  std::unique_lock<std::shared_mutex> life(life_mu_);
  if (!running_) return Status();
  running_ = false;
  unregister_all();  // first, so that senders stop routing here while we drain
  teardown();
  return Status();
}

void Client::unregister_all() {
  std::set<std::string> subs;
  {
    std::lock_guard<std::mutex> lock(route_mu_);
    subs = subscriptions_;
  }
  std::lock_guard<std::mutex> api(api_mu_);
  if (published_.empty()) return;
  Status s = api_store_->unregister_address(opt_.topic, published_, DirectoryEvent::leave);
  for (const auto& t : subs) {
    Status st = api_store_->unregister_address(t, published_, DirectoryEvent::leave);
    if (s) s = st;
  }
  if (!s) log_line("could not remove " + published_ + " from the directory: " + s.message);
}

// Stops threads in the order that loses nothing: no more directory updates; send what is
// queued; stop reading; deliver what was read and write the acks; only then close the
// incoming connections, so senders see the close after the acks are in the store.
void Client::teardown() {
  if (watch_) watch_->stop();
  // What waits for the store goes to the sender's queues first (if the store answers in time),
  // and is sent with them.
  if (waiting_) waiting_->stop(std::chrono::steady_clock::now() + kStopDrain);
  if (sender_) sender_->stop(kStopDrain);
  if (listener_) listener_->stop();
  if (delivery_) delivery_->stop();
  if (listener_) listener_->close_connections();
  past_ = stats_locked();
  if (sender_)
    for (auto& c : sender_->channels()) last_channels_[c.listener_unique] = c;
  published_.clear();
  watch_.reset();
  handover_.reset();
  waiting_.reset();
  sender_.reset();
  listener_.reset();
  delivery_.reset();
  refresh_store_.reset();
  std::lock_guard<std::mutex> lock(route_mu_);
  routes_.clear();
  routes_changed();
}

void Client::restore_channels() {
  // Peers this client had sent to before (lnr_sender:{U}:{S}:listener): reconnect now, so that
  // messages waiting in their offline queues go out without a new send.
  std::vector<RememberedListener> listeners;
  std::lock_guard<std::mutex> api(api_mu_);
  Status s = api_store_->listeners_of_sender(opt_.unique_name, opt_.topic, &listeners);
  if (!s) {
    log_line("cannot restore channels: " + s.message);
    return;
  }
  for (const auto& l : listeners) {
    std::vector<TopicAddress> addrs;
    if (!api_store_->addresses_of_topic(l.topic, &addrs)) continue;
    bool listed = false;
    for (const auto& a : addrs)
      if (a.addr == l.addr) {
        listed = true;
        Status st = sender_->open_channel(*api_store_, a.addr, a.unique_name, l.topic);
        if (!st) log_line("cannot restore channel to " + l.addr + ": " + st.message);
      }
    // A listener that left while this sender was down, with messages still stored for it: its
    // channel (and its topic's route) let the hand-over move them to the topic's other peers.
    if (!listed && handover_ && !l.unique_name.empty() && !addrs.empty() &&
        stores_for(*api_store_, l.unique_name)) {
      Status st = cache_route(*api_store_, l.topic, addrs);
      if (st) st = sender_->open_channel(*api_store_, l.addr, l.unique_name, l.topic);
      if (!st) log_line("cannot restore channel to " + l.addr + ": " + st.message);
    }
  }
}

bool Client::stores_for(Store& store, const std::string& listener_unique) {
  int32_t ck = 0;
  bool found = false;
  uint64_t queued = 0;
  return store.connection_key(opt_.unique_name, opt_.topic, listener_unique, false, &ck, &found) && found &&
         store.queue_length(ck, &queued) && queued > 0;
}

// ---- directory -----------------------------------------------------------------------------

void Client::store_route(const std::string& topic, std::vector<TopicAddress> addrs) {
  std::lock_guard<std::mutex> lock(route_mu_);
  Route& r = routes_[topic];
  // The directory watch re-reads every watched topic each second: only a real change may
  // send every thread's remembered route back to the slow path.
  if (r.addrs != addrs) {
    r.addrs = std::move(addrs);  // empty is remembered too: see kUnservedFor
    routes_changed();
  }
  r.read_at = std::chrono::steady_clock::now();
}

// Reads a topic's directory and key from the store into the cache (first send to a topic).
Status Client::load_route(Store& store, const std::string& topic) {
  std::vector<TopicAddress> addrs;
  Status s = store.addresses_of_topic(topic, &addrs);
  return s ? cache_route(store, topic, std::move(addrs)) : s;
}

Status Client::cache_route(Store& store, const std::string& topic, std::vector<TopicAddress> addrs) {
  int32_t key = 0;
  bool key_known = false;
  {
    std::lock_guard<std::mutex> lock(route_mu_);
    auto it = topic_keys_.find(topic);
    if (it != topic_keys_.end()) {
      key = it->second;
      key_known = true;
    }
  }
  Status s;
  if (!key_known) s = store.topic_key(topic, &key);
  if (!s) return s;
  std::lock_guard<std::mutex> lock(route_mu_);
  topic_keys_[topic] = key;
  watched_.insert(topic);
  Route& r = routes_[topic];
  r.addrs = std::move(addrs);
  r.read_at = std::chrono::steady_clock::now();
  routes_changed();
  return Status();
}

// Chooses where one message goes: every address (send_all) or the next reachable one in
// round-robin order (send_to). With nobody in the directory, at-least-once messages still go to
// peers this client already talked to on that topic (they went offline gracefully).
Status Client::pick_targets(const std::string& topic, bool at_least_once, bool all,
                            std::vector<TopicAddress>* targets, int32_t* topic_key, bool* single, bool* look_up) {
  *single = false;
  *look_up = false;
  // The cache first; on a miss (unknown topic, or nobody known to serve it) ask the store once,
  // as liner_broker does.
  for (int attempt = 0; attempt < 2; ++attempt) {
    {
      std::lock_guard<std::mutex> lock(route_mu_);
      auto key = topic_keys_.find(topic);
      auto it = routes_.find(topic);
      if (key != topic_keys_.end() && it != routes_.end() && it->second.addrs.empty() &&
          at_least_once && std::chrono::steady_clock::now() - it->second.read_at < kUnservedFor &&
          offline_targets(topic, all, targets)) {
        *topic_key = key->second;  // nobody serves it, as read a moment ago
        return Status();
      }
      if (key != topic_keys_.end() && it != routes_.end() && !it->second.addrs.empty()) {
        *topic_key = key->second;
        Route& r = it->second;
        if (all) {
          *targets = r.addrs;
          return Status();
        }
        size_t n = r.addrs.size(), pick = r.next % n;
        *single = n == 1;
        for (size_t i = 0; n > 1 && i < n; ++i) {  // one address: nothing to choose from
          size_t j = (r.next + i) % n;
          if (sender_->reachable(r.addrs[j].addr)) {
            pick = j;
            break;
          }
        }
        r.next = pick + 1;
        targets->resize(1);  // assigned, not rebuilt: the element keeps its capacity
        (*targets)[0] = r.addrs[pick];
        return Status();
      }
      if (key != topic_keys_.end()) *topic_key = key->second;
      if (attempt == 1) break;
      if (opt_.lookup_off_thread) {
        // Not in the cache: waiting_ looks it up. In the cache with nobody serving it (read by
        // a send or a refresh): the directory thread keeps that current, so it is the answer.
        bool unserved = it != routes_.end() && it->second.addrs.empty();
        if (it == routes_.end() || (key == topic_keys_.end() && !(unserved && sender_->channel_addresses(topic).empty()))) {
          *look_up = true;
          return Status();
        }
        break;
      }
    }
    std::lock_guard<std::mutex> api(api_mu_);
    Status s = load_route(*api_store_, topic);
    if (!s) return s;
  }
  if (at_least_once) {
    if (offline_targets(topic, all, targets)) return Status();
    if (opt_.lookup_off_thread) return Status(Err::no_addr, "not found addr for topic " + topic);
    // Nobody in the directory and no channel of this run: the listeners this sender remembers
    // from an earlier run (compat spec §6.1 rule 3), so that their messages wait in the store.
    Status s;
    {
      std::lock_guard<std::mutex> api(api_mu_);
      s = open_remembered_channels(*api_store_, topic);
    }
    if (!s) return s;
    if (offline_targets(topic, all, targets)) return Status();
  }
  return Status(Err::no_addr, "not found addr for topic " + topic);
}

Status Client::open_remembered_channels(Store& store, const std::string& topic) {
  std::vector<RememberedListener> listeners;
  Status s = store.listeners_of_sender(opt_.unique_name, opt_.topic, &listeners);
  if (!s) return s;
  // Only this topic's, and only those whose name this sender wrote (a liner_broker 1.3.1
  // sender's entry has no channel to find).
  listeners.erase(std::remove_if(listeners.begin(), listeners.end(),
                                 [&](const RememberedListener& l) { return l.topic != topic || l.unique_name.empty(); }),
                  listeners.end());
  if (listeners.empty()) return Status();  // the usual NO_ADDRESS: one round trip, not two
  std::vector<std::string> unsubscribed;
  s = store.unsubscribed_from_topic(topic, &unsubscribed);
  for (size_t i = 0; s && i < listeners.size(); ++i) {
    const RememberedListener& l = listeners[i];
    if (std::find(unsubscribed.begin(), unsubscribed.end(), l.addr) != unsubscribed.end()) continue;
    s = sender_->open_channel(store, l.addr, l.unique_name, topic);
  }
  return s;
}

void Client::forget_unsubscribed(const std::string& topic, const std::vector<std::string>& addrs) {
  for (const auto& addr : addrs) sender_->forget_topic(topic, addr);
  if (!addrs.empty()) routes_changed();  // a thread's remembered route may still name one of them
}

bool Client::offline_targets(const std::string& topic, bool all, std::vector<TopicAddress>* targets) {
  targets->clear();
  for (const auto& addr : sender_->channel_addresses(topic)) targets->push_back({addr, ""});
  if (!all && targets->size() > 1) targets->resize(1);
  return !targets->empty();
}

void Client::follow_moved_listener(const DirectoryEvent& e) {
  // A listener we have a channel to came back on another address: move the channel there, so
  // what waits in its offline queue goes out without a new send.
  if (sender_->has_channel(e.addr)) return;
  std::vector<TopicAddress> addrs;
  if (!refresh_store_->addresses_of_topic(e.topic, &addrs)) return;
  for (const auto& a : addrs) {
    if (a.addr != e.addr) continue;
    // No channel in this run; but if this sender has one in the store (an earlier run sent to
    // that listener), its offline queue may hold messages for it.
    if (sender_->address_of(a.unique_name).empty() && !stores_for(*refresh_store_, a.unique_name)) continue;
    Status s = sender_->open_channel(*refresh_store_, a.addr, a.unique_name, e.topic);
    if (!s) log_line("cannot follow " + a.unique_name + " to " + a.addr + ": " + s.message);
  }
}

void Client::on_directory_event(const DirectoryEvent& e) {
  if (!running_) return;
  if (e.kind == DirectoryEvent::refused) {
    // A listener dropped one of our messages for good: say which, once, to our owner.
    for (const auto& c : sender_->channels()) {
      if (c.connection_key != e.connection_key) continue;
      std::string what = "message " + std::to_string(e.number) + " refused by " + c.listener_unique +
                         " and dropped: " + e.reason;
      log_line(what);
      status_.emit(StatusKind::send_error, c.topic, c.addr, what);
    }
    return;
  }
  if (e.addr == published_) return;  // our own announcements
  bool cached, interesting;
  {
    std::lock_guard<std::mutex> lock(route_mu_);
    cached = watched_.count(e.topic) != 0;
    interesting = cached || subscriptions_.count(e.topic) != 0 || e.topic == opt_.topic;
  }
  // Refresh the route before the sender forgets the topic, so that no send can still pick the
  // address after an unsubscribe (the sender also refuses to re-learn a forgotten topic).
  std::vector<TopicAddress> addrs;
  if (cached && refresh_store_->addresses_of_topic(e.topic, &addrs)) store_route(e.topic, addrs);
  if (e.kind == DirectoryEvent::unsubscribe) forget_unsubscribed(e.topic, {e.addr});
  if (e.kind == DirectoryEvent::join || e.kind == DirectoryEvent::subscribe) {
    follow_moved_listener(e);
    sender_->peer_announced(e.addr, e.topic);
  }
  // Only topics this client sends to, refreshed, subscribed to or owns (as liner_broker 1.4).
  if (interesting) {
    static const StatusKind kinds[] = {StatusKind::peer_connected, StatusKind::peer_subscribed,
                                       StatusKind::peer_disconnected, StatusKind::peer_unsubscribed};
    status_.emit(kinds[e.kind], e.topic, e.addr, "directory change");
  }
}

void Client::listen_as(const std::string& topic, int32_t key) {
  delivery_->set_topic(key, topic);
  std::lock_guard<std::mutex> lock(route_mu_);
  listen_keys_[topic] = key;
}

Registration Client::registration() const {
  Registration r;
  r.addr = published_;
  r.unique_name = opt_.unique_name;
  r.source_topic = opt_.topic;
  // A peer that crashed, or lost Redis for longer, is removed by the next sweep of a peer that
  // uses the topic (each sweeps once a second): about lease_ms after its last renewal.
  r.lease_ms = int(limits().lease_ms.load());
  {
    std::lock_guard<std::mutex> lock(route_mu_);
    for (const auto& k : listen_keys_) {
      bool own = k.first == opt_.topic;
      if (own || subscriptions_.count(k.first))
        r.entries.push_back({k.first, k.second, own ? DirectoryEvent::join : DirectoryEvent::subscribe});
    }
    r.sent_topic_keys.assign(topic_keys_.begin(), topic_keys_.end());
  }
  if (sender_)  // none yet in run(), before the first renewal
    for (const auto& c : sender_->channels()) r.channels.push_back({c.listener_unique, c.connection_key, c.addr, c.topic});
  for (const auto& e : r.entries) r.highest_key = std::max(r.highest_key, e.topic_key);
  for (const auto& t : r.sent_topic_keys) r.highest_key = std::max(r.highest_key, t.second);
  for (const auto& c : r.channels) r.highest_key = std::max(r.highest_key, c.key);
  return r;
}

void Client::keep_registered() {
  if (!running_) return;
  bool complete = true;
  if (!refresh_store_->renew_registration(registration(), &complete) || complete) return;
  // Under api_mu_, as subscribe/unsubscribe/stop change the directory: the registration is
  // rebuilt there, so an entry just removed on purpose is never put back.
  std::lock_guard<std::mutex> api(api_mu_);
  if (!running_) return;
  size_t restored = 0;
  Status s = refresh_store_->restore_registration(registration(), &restored);
  if (!s) log_line("could not register " + published_ + " again: " + s.message);
  else if (restored) log_line("registered " + published_ + " again: the directory had lost it");
}

void Client::refresh_routes() {
  if (!running_) return;
  // Every topic this client uses is swept of peers whose lease lapsed as it is read: those it
  // sends to (their routes are refreshed from the same reply), its own and its subscriptions.
  std::set<std::string> watched, topics;
  {
    std::lock_guard<std::mutex> lock(route_mu_);
    watched = watched_;
    topics = watched_;
    for (const auto& k : listen_keys_) topics.insert(k.first);
  }
  for (const auto& t : topics) {
    std::vector<TopicAddress> addrs;
    if (refresh_store_->sweep_lapsed(t, &addrs) && watched.count(t)) store_route(t, std::move(addrs));
  }
}

bool Client::cached_route(const std::string& topic, std::vector<TopicAddress>* addrs, int32_t* key) const {
  std::lock_guard<std::mutex> lock(route_mu_);
  auto route = routes_.find(topic);
  auto k = topic_keys_.find(topic);
  if (route == routes_.end() || k == topic_keys_.end()) return false;
  *addrs = route->second.addrs;
  *key = k->second;
  return true;
}

Status Client::refresh_address_topic(const std::string& topic) {
  if (topic.empty()) return Status(Err::invalid_arg, "topic name empty");
  auto life = lock_shared_state();
  std::vector<TopicAddress> addrs;
  std::vector<std::string> unsubscribed;
  {
    std::lock_guard<std::mutex> api(api_mu_);
    Status s = api_store_->addresses_of_topic(topic, &addrs);
    if (s) s = api_store_->unsubscribed_from_topic(topic, &unsubscribed);
    if (!s) return s;
  }
  {
    std::lock_guard<std::mutex> lock(route_mu_);
    watched_.insert(topic);
  }
  // Peers that unsubscribed stop being waited for as soon as this returns, whether or not
  // their notification arrived yet (compat spec §6.1).
  forget_unsubscribed(topic, unsubscribed);
  bool found = !addrs.empty();
  store_route(topic, std::move(addrs));
  return found ? Status() : Status(Err::no_addr, "not found addr for topic " + topic);
}

// ---- sending -------------------------------------------------------------------------------

// Flattened: send() is inlined with a count of 1, so its batch loops fold away.
[[gnu::flatten]] Status Client::send_to(const std::string& topic, const void* data, size_t size, bool at_least_once) {
  Payload message{data, size};
  return send(topic, &message, 1, at_least_once, false, nullptr);
}

[[gnu::flatten]] Status Client::send_all(const std::string& topic, const void* data, size_t size, bool at_least_once) {
  Payload message{data, size};
  return send(topic, &message, 1, at_least_once, true, nullptr);
}

Status Client::send_to_many(const std::string& topic, const Payload* messages, size_t count, bool at_least_once,
                            size_t* queued) {
  *queued = 0;
  if (count == 0) return Status();
  if (!messages) return Status(Err::invalid_arg, "null pointer argument: messages");
  return send(topic, messages, count, at_least_once, false, queued);
}

// Flattened (helpers inlined into it): it runs for every message, see liner_capi.cpp's send().
[[gnu::flatten]] Status Client::send(const std::string& topic, const Payload* messages, size_t count,
                                     bool at_least_once, bool all, size_t* queued) {
  const char* action = all ? "send_all" : count > 1 ? "send_to_many" : "send_to";
  Status s = check_topic(topic, action);
  if (!s) return s;
  // Every message is checked before any is queued: a bad one refuses the whole batch.
  size_t max_message = effective(opt_.max_message_size, limits().max_message_size);
  for (size_t i = 0; i < count; ++i) {
    const Payload& m = messages[i];
    if (m.size > 0 && m.data && m.size <= max_message) continue;
    std::string which = count > 1 ? "message " + std::to_string(i) + ": " : std::string();
    if (m.size == 0) return Status(Err::invalid_arg, which + "data_size empty");
    if (!m.data) return Status(Err::invalid_arg, which + "null pointer argument");
    return Status(Err::invalid_arg, which + "message of " + std::to_string(m.size) +
                                        " bytes exceeds the maximum message size of " +
                                        std::to_string(max_message));
  }
  auto life = lock_shared_state();
  if (!life.owns_lock() || !running_) return not_running(action);
  // Reused per thread: after the first sends its strings keep their capacity, so the hot path
  // allocates nothing here.
  RememberedRoute& remembered = PerThread<RememberedRoute>::get();  // one TLS look-up
  std::vector<TopicAddress>& picked = remembered.picked;
  const std::vector<TopicAddress>* targets = &picked;
  Sender::Channel** channel_hint = nullptr;
  int32_t topic_key = 0;
  // Read before the route lock: a change made after this read leaves the remembered route
  // stale for the next send.
  uint64_t epoch = g_route_epoch.load(std::memory_order_acquire);
  if (!all && remembered.client == this && remembered.epoch == epoch && remembered.topic == topic) {
    targets = &remembered.targets;
    topic_key = remembered.topic_key;
    channel_hint = &remembered.channel;
  } else {
    bool single = false, look_up = false;
    s = pick_targets(topic, at_least_once, all, &picked, &topic_key, &single, &look_up);
    // Nobody known to serve it while its look-up may still be under way (the route read, the
    // listeners this sender remembers not yet): if so, that look-up decides, not this send.
    if (!s && s.code == Err::no_addr && opt_.lookup_off_thread && waiting_->active())
      return send_waiting(topic, messages, count, at_least_once, all, nullptr, 0, queued, &s);
    if (!s) return s;
    if (look_up) return send_waiting(topic, messages, count, at_least_once, all, nullptr, 0, queued);
    if (!all && single) {
      remembered.client = this;
      remembered.epoch = epoch;
      remembered.topic = topic;
      remembered.topic_key = topic_key;
      remembered.targets = picked;
      remembered.channel = nullptr;
    }
  }

  if (waiting_->active()) return send_waiting(topic, messages, count, at_least_once, all, targets, topic_key, queued);
  if (all) return send_to_every(*targets, topic, topic_key, messages[0], at_least_once);
  // send_to and send_to_many have exactly one target (pick_targets); send_all went above.
  size_t done = 0;
  Status st = enqueue_opening((*targets)[0], topic, topic_key, messages, count, at_least_once,
                              hands_over(at_least_once, false), channel_hint, &done);
  if (queued) *queued = done;
  if (st.ok()) return Status();  // built in place: no Status moved on success
  return st;
}

Status Client::enqueue_opening(const TopicAddress& t, const std::string& topic, int32_t topic_key,
                               const Payload* messages, size_t count, bool at_least_once, bool handover,
                               Sender::Channel** hint, size_t* done, Opening opening) {
  // The channel almost always exists: try the one-lock enqueue first (unless messages wait
  // for that channel: then this one waits behind them). One named result, returned once: no
  // Status is moved on the way out (the send path).
  Status st = opening == Opening::wait_locked && waiting_->has_locked({WaitingSends::KeyKind::channel, t.addr})
                  ? Status(Err::no_addr, std::string())
                  : sender_->enqueue(t.addr, topic, topic_key, messages, count, at_least_once, handover, hint, done);
  if (!st && st.code == Err::no_addr && !t.unique_name.empty())
    st = enqueue_waiting(t, topic, topic_key, messages, count, at_least_once, handover, hint, done, opening);
  return st;
}

Status Client::enqueue_waiting(const TopicAddress& t, const std::string& topic, int32_t topic_key,
                               const Payload* messages, size_t count, bool at_least_once, bool handover,
                               Sender::Channel** hint, size_t* done, Opening opening) {
  if (opening == Opening::never) return Status(Err::store, "no channel to " + t.addr + " yet");
  // No channel to that peer yet (or messages wait for it): it is opened off this thread (store
  // round trips: the connection key, the ack counter), and the messages wait for it.
  Status st;
  WaitingSends::Key key{WaitingSends::KeyKind::channel, t.addr};
  StatusDeferral defer;  // events (busy) go out after the lock: a handler may send
  std::unique_lock<std::mutex> lock;
  if (opening == Opening::wait) {
    lock = waiting_->lock();
    if (!waiting_->has_locked(key)) {
      // Opened meanwhile, with nothing left waiting for it: queue now.
      st = sender_->enqueue(t.addr, topic, topic_key, messages, count, at_least_once, handover, hint, done);
      if (st.code != Err::no_addr) return st;
    }
  }
  size_t added = 0;
  st = wait_for(key, topic, topic_key, t.unique_name, messages, count, at_least_once, false, handover, &added);
  if (done) *done = added;
  return st;
}

Status Client::send_waiting(const std::string& topic, const Payload* messages, size_t count, bool at_least_once,
                            bool all, const std::vector<TopicAddress>* targets, int32_t topic_key, size_t* queued,
                            const Status* unless_looked_up) {
  StatusDeferral defer;  // events (busy) go out after the lock: a handler may send
  auto lock = waiting_->lock();
  WaitingSends::Key route{WaitingSends::KeyKind::route, topic};
  bool looking_up = waiting_->has_locked(route);
  if (unless_looked_up && !looking_up) return *unless_looked_up;
  if (!targets || looking_up) {
    size_t added = 0;
    Status s = wait_for(route, topic, 0, std::string(), messages, count, at_least_once, all,
                        hands_over(at_least_once, all), &added);
    if (queued) *queued = added;
    return s;
  }
  if (all) return send_to_every(*targets, topic, topic_key, messages[0], at_least_once, Opening::wait_locked);
  size_t done = 0;
  Status st = enqueue_opening((*targets)[0], topic, topic_key, messages, count, at_least_once,
                              hands_over(at_least_once, false), nullptr, &done, Opening::wait_locked);
  if (queued) *queued = done;
  return st;
}

Status Client::wait_for(const WaitingSends::Key& key, const std::string& topic, int32_t topic_key,
                        const std::string& unique_name, const Payload* messages, size_t count, bool at_least_once,
                        bool all, bool handover, size_t* added) {
  *added = 0;
  size_t max_messages = effective(opt_.max_send_queue_messages, limits().max_send_queue);
  size_t max_bytes = kWaitingQueueCaps * effective(opt_.max_send_queue_bytes, limits().max_send_queue_bytes);
  for (; *added < count; ++*added) {
    WaitingSends::Message m;
    m.topic = topic;
    m.topic_key = topic_key;
    m.unique_name = unique_name;
    m.data.assign(static_cast<const char*>(messages[*added].data), messages[*added].size);
    m.at_least_once = at_least_once;
    m.all = all;
    m.handover = handover;
    m.follows = *added > 0;
    bool first_refusal = false;
    Status s = waiting_->add_locked(key, std::move(m), max_messages ? max_messages : SIZE_MAX, max_bytes,
                                    &first_refusal);
    if (s) continue;
    // Reported as a full send queue is, once per episode (refusal_ended() goes on with it).
    bool route = key.kind == WaitingSends::KeyKind::route;
    if (first_refusal) status_.emit(StatusKind::busy, topic, route ? std::string() : key.name, s.message);
    return s;
  }
  return Status();
}

Status Client::resolve_waiting(Store& store, const WaitingSends::Key& key, const WaitingSends::Message& first) {
  if (key.kind == WaitingSends::KeyKind::channel)
    return sender_->open_channel(store, key.name, first.unique_name, first.topic);
  Status s = load_route(store, key.name);
  if (!s) return s;
  std::vector<TopicAddress> addrs;
  {
    std::lock_guard<std::mutex> lock(route_mu_);
    addrs = routes_[key.name].addrs;
  }
  // The channels to all its peers, so that flushing never waits for one (whichever round-robin
  // picks). Nobody serves it: the listeners this sender remembers from an earlier run get its
  // at-least-once messages, as on the caller's thread (pick_targets).
  for (size_t i = 0; s && i < addrs.size(); ++i)
    if (!addrs[i].unique_name.empty()) s = sender_->open_channel(store, addrs[i].addr, addrs[i].unique_name, key.name);
  if (s && addrs.empty() && first.at_least_once) s = open_remembered_channels(store, key.name);
  return s;
}

Status Client::flush_waiting(const WaitingSends::Key& key, const WaitingSends::Message& m) {
  Payload p{m.data.data(), m.data.size()};
  // A channel that went away again (the peer moved) is Err::store from Opening::never: it is
  // opened again while the message waits.
  if (key.kind == WaitingSends::KeyKind::channel)
    return enqueue_opening({key.name, m.unique_name}, m.topic, m.topic_key, &p, 1, m.at_least_once, m.handover,
                           nullptr, nullptr, Opening::never);
  // The rest of a send_to_many batch goes where its first message went: a batch is never split
  // across replicas (waiting_'s thread only).
  std::vector<TopicAddress>& targets = flush_targets_;
  int32_t& topic_key = flush_topic_key_;
  if (!m.follows || targets.empty() || flush_topic_ != m.topic) {
    targets.clear();
    flush_topic_ = m.topic;
    bool single = false, look_up = false;
    Status s = pick_targets(m.topic, m.at_least_once, m.all, &targets, &topic_key, &single, &look_up);
    if (!s) return s;  // nobody serves the topic: the message is dropped and reported
    if (look_up) return Status(Err::store, "the route of " + m.topic + " is not read yet");
  }
  if (m.all) return send_to_every(targets, m.topic, topic_key, p, m.at_least_once, Opening::never);
  return enqueue_opening(targets[0], m.topic, topic_key, &p, 1, m.at_least_once, m.handover, nullptr, nullptr,
                         Opening::never);
}

void Client::refusal_ended(const WaitingSends::Key& key) {
  // A peer's messages are in its channel's queue now: the channel's episode goes on, and its
  // writable event ends it when the queue has room. A route's end here.
  if (key.kind == WaitingSends::KeyKind::channel) sender_->continue_busy(key.name);
  else status_.emit(StatusKind::writable, key.name, std::string(), "send queue has room again");
}

void Client::report_dropped(const WaitingSends::Key& key, size_t count, const std::string& why) {
  bool route = key.kind == WaitingSends::KeyKind::route;
  std::string what = std::to_string(count) + (count == 1 ? " message" : " messages") + " to " +
                     (route ? "topic " : "") + key.name + " dropped: " + why;
  log_line(what);
  status_.emit(StatusKind::send_error, route ? key.name : std::string(), route ? std::string() : key.name, what);
}

Status Client::send_to_every(const std::vector<TopicAddress>& targets, const std::string& topic, int32_t topic_key,
                             const Payload& message, bool at_least_once, Opening opening) {
  UnfinishedSendAll& unfinished = PerThread<UnfinishedSendAll>::get();
  bool retry = unfinished.client && unfinished.is_retry_of(this, topic, message, at_least_once);
  if (!retry && unfinished.client) unfinished.forget();
  Status result;
  for (size_t i = 0; i < targets.size(); ++i) {
    const TopicAddress& t = targets[i];
    if (retry && unfinished.queued.count(t.addr)) continue;  // has its copy from the refused call
    Status st = enqueue_opening(t, topic, topic_key, &message, 1, at_least_once, hands_over(at_least_once, true),
                                nullptr, nullptr, opening);
    if (st) {
      if (!result.ok()) unfinished.queued.insert(t.addr);  // after a refusal: remembered as it goes
      continue;
    }
    if (result.ok()) {
      // The first refusal: remember the call, and the copies queued before it.
      result = std::move(st);
      if (!retry) {
        unfinished.client = this;
        unfinished.topic = topic;
        unfinished.data.assign(static_cast<const char*>(message.data), message.size);
        unfinished.at_least_once = at_least_once;
      }
      for (size_t j = 0; j < i; ++j) unfinished.queued.insert(targets[j].addr);
    }
  }
  if (result.ok() && unfinished.client) unfinished.forget();  // a retry that completed
  return result;
}

// ---- subscriptions -------------------------------------------------------------------------

Status Client::subscribe(const std::string& topic) {
  Status s = check_topic(topic, "subscribe");
  if (!s) return s;
  auto life = lock_shared_state();
  if (!life.owns_lock()) return not_running("subscribe");
  {
    std::lock_guard<std::mutex> lock(route_mu_);
    subscriptions_.insert(topic);
  }
  if (!running_) return Status();  // registered by run(), once the address is bound
  int32_t key = 0;
  {
    std::lock_guard<std::mutex> api(api_mu_);
    s = api_store_->topic_key(topic, &key);
    if (s) listen_as(topic, key);
    if (s) s = api_store_->register_address(topic, published_, opt_.unique_name, DirectoryEvent::subscribe);
  }
  if (!s) {
    std::lock_guard<std::mutex> lock(route_mu_);
    subscriptions_.erase(topic);
  }
  return s;
}

Status Client::unsubscribe(const std::string& topic) {
  Status s = check_topic(topic, "unsubscribe");
  if (!s) return s;
  auto life = lock_shared_state();
  if (!life.owns_lock()) return not_running("unsubscribe");
  {
    std::lock_guard<std::mutex> lock(route_mu_);
    subscriptions_.erase(topic);
  }
  if (!running_) return Status();
  std::lock_guard<std::mutex> api(api_mu_);
  s = api_store_->unregister_address(topic, published_, DirectoryEvent::unsubscribe);
  int32_t key = 0;
  {
    std::lock_guard<std::mutex> lock(route_mu_);
    auto it = listen_keys_.find(topic);
    if (it != listen_keys_.end()) key = it->second;
    listen_keys_.erase(topic);
  }
  if (s && key == 0) s = api_store_->topic_key(topic, &key);
  if (s) delivery_->remove_topic(key);
  return s;
}

// ---- store maintenance ---------------------------------------------------------------------

Status Client::clear_stored_messages() {
  auto life = lock_shared_state();
  if (!life.owns_lock() || running_)
    return Status(Err::clear_while_running,
                  "you can't clear_stored_messages because client already is running");
  std::lock_guard<std::mutex> api(api_mu_);
  // Every channel this sender ever opened, found by key name: the listener may have left the
  // directory, and its queue must go all the same (liner_broker 1.3.1 left it behind). No key
  // is allocated just to delete under it.
  std::vector<std::pair<std::string, int32_t>> channels;
  Status s = api_store_->connection_keys_of_sender(opt_.unique_name, opt_.topic, &channels);
  for (size_t i = 0; s && i < channels.size(); ++i) s = api_store_->clear_channel(channels[i].second);
  if (!s) return s;
  return api_store_->delete_listeners_of_sender(opt_.unique_name, opt_.topic);
}

Status Client::clear_addresses_of_topic() {
  auto life = lock_shared_state();
  if (!life.owns_lock() || running_)
    return Status(Err::clear_while_running,
                  "you can't clear_addresses_of_topic because client already is running");
  std::lock_guard<std::mutex> api(api_mu_);
  return api_store_->delete_topic_addresses(opt_.topic);
}

// ---- introspection -------------------------------------------------------------------------

std::string Client::published_address() const {
  auto lock = lock_shared_state();
  return lock.owns_lock() ? published_ : std::string();
}

Status Client::set_advertise_address(const std::string& addr) {
  if (in_callback()) return Status(Err::already_running, "the advertise address can only be set before run");
  std::unique_lock<std::shared_mutex> life(life_mu_);
  if (running_) return Status(Err::already_running, "the advertise address can only be set before run");
  if (!addr.empty()) {
    // Peers connect to it as given: it must be a literal ip:port, not a name.
    sockaddr_storage sa{};
    socklen_t len = 0;
    Status s = resolve_address(addr, &sa, &len);
    if (s && format_address(reinterpret_cast<sockaddr*>(&sa)) != addr)
      s = Status(Err::invalid_arg, "advertise address '" + addr + "' must be a literal ip:port");
    if (!s) return Status(Err::invalid_arg, s.message);
  }
  advertise_ = addr;
  return Status();
}

Status Client::set_handover(bool on) {
  if (in_callback()) return Status(Err::already_running, "hand-over can only be set before run");
  std::unique_lock<std::shared_mutex> life(life_mu_);
  if (running_) return Status(Err::already_running, "hand-over can only be set before run");
  handover_on_ = on;
  return Status();
}

bool Client::handover() const {
  auto lock = lock_shared_state();
  return handover_on_;
}

std::string Client::advertise_address() const {
  auto lock = lock_shared_state();
  return lock.owns_lock() ? advertise_ : std::string();
}

Status Client::list_addresses(const std::string& topic, std::vector<TopicAddress>* out) {
  if (topic.empty()) return Status(Err::invalid_arg, "topic name empty");
  {
    std::lock_guard<std::mutex> api(api_mu_);
    Status s = api_store_->addresses_of_topic(topic, out);
    if (!s) return s;
  }
  {
    std::lock_guard<std::mutex> lock(route_mu_);
    watched_.insert(topic);
  }
  store_route(topic, *out);
  return Status();
}

Status Client::pending_by_peer(std::vector<PendingQueue>* out) {
  auto life = lock_shared_state();
  // Channels of this run (or of the last one), by listener name.
  std::map<std::string, ChannelInfo> running = last_channels_;
  if (life.owns_lock() && running_)
    for (auto& c : sender_->channels()) running[c.listener_unique] = c;
  std::lock_guard<std::mutex> api(api_mu_);
  // Channels are found by key name, so queues of listeners that left the directory, and of a
  // sender that is not running, are counted too.
  std::vector<std::pair<std::string, int32_t>> channels;
  Status s = api_store_->connection_keys_of_sender(opt_.unique_name, opt_.topic, &channels);
  std::vector<RememberedListener> listeners;
  if (s) s = api_store_->listeners_of_sender(opt_.unique_name, opt_.topic, &listeners);
  if (!s) return s;
  for (const auto& [unique, ck] : channels) {
    PendingQueue q{"", "", unique, 0};
    s = api_store_->queue_length(ck, &q.count);
    if (!s) return s;
    auto it = running.find(unique);
    if (it != running.end()) {
      q.addr = it->second.addr;
      q.topic = it->second.topic;
    } else {
      // The address this sender last used for that listener, if the directory still says so.
      for (const auto& l : listeners) {
        std::vector<TopicAddress> rows;
        if (!api_store_->addresses_of_topic(l.topic, &rows)) continue;
        for (const auto& r : rows)
          if (r.addr == l.addr && r.unique_name == unique) q.addr = l.addr, q.topic = l.topic;
      }
    }
    out->push_back(q);
  }
  return Status();
}

ClientStats Client::stats() const {
  auto life = lock_shared_state();
  return stats_locked();
}

ClientStats Client::stats_locked() const {
  ClientStats out = past_;
  if (sender_) {
    SenderStats s = sender_->stats();
    out.messages_sent += s.sent;
    out.bytes_sent += s.bytes_sent;
    out.persisted += s.persisted;
    out.reloaded += s.reloaded;
    out.dropped += s.dropped;
    out.reconnects += s.reconnects;
    out.send_queue_messages = s.queued_messages;
    out.send_queue_bytes = s.queued_bytes;
  }
  if (waiting_) {  // waiting for the store to open their channel or read their route
    out.dropped += waiting_->dropped();
    out.send_queue_messages += waiting_->waiting_messages();
    out.send_queue_bytes += waiting_->waiting_bytes();
  }
  if (delivery_) {
    DeliveryStats d = delivery_->stats();
    out.messages_delivered += d.delivered;
    out.bytes_delivered += d.bytes_delivered;
    out.duplicates += d.duplicates;
    out.receive_queue_bytes = d.queued_bytes;
  }
  return out;
}

}  // namespace liner
