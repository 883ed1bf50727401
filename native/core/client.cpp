// A client's life: creation (options checked, store reached), run (listener, delivery,
// sender, directory watch started and registered), stop and teardown in the order that loses
// nothing, and what it keeps registered. The rest of the class: client_routes.cpp (the route
// cache and the directory), client_send.cpp (sends), client_topics.cpp (subscriptions and
// clearing), client_introspection.cpp (settings and views).
#include "core/client.hpp"

#include <algorithm>
#include <string_view>
#include <thread>
#include <utility>

#include "core/log.hpp"
#include "core/client_internal.hpp"
#include "core/names.hpp"

namespace liner {

namespace {

constexpr char kInternalTopicName[] = "__#internal_channel";
// Compared with every topic a send names: lengths first.
constexpr std::string_view kInternalTopicView(kInternalTopicName, sizeof kInternalTopicName - 1);
constexpr auto kStopDrain = std::chrono::milliseconds(2000);

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

}  // namespace

const char* const kInternalTopic = kInternalTopicName;

Client::Client(ClientOptions options, std::unique_ptr<Store> store)
    : opt_(std::move(options)), api_store_(std::move(store)), handover_on_(opt_.handover) {}

Client::~Client() {
  stop();
  RouteTable::changed();  // another client may be allocated where this one was
}

Status Client::create(const ClientOptions& o, std::unique_ptr<Client>* out) {
  if (o.unique_name.empty()) return Status(Err::invalid_arg, "unique_name empty");
  if (o.topic.empty()) return Status(Err::invalid_arg, "topic empty");
  if (o.localhost.empty()) return Status(Err::invalid_arg, "localhost empty");
  // liner_broker 1.3.1's message (compat spec, lnr_new_client_redis), though the field is a URL.
  if (o.store_url.empty()) return Status(Err::invalid_arg, "store_path empty");
  Status s = check_name("name", o.unique_name);
  if (s) s = check_name("topic", o.topic);
  if (!s) return s;
  if (o.topic == kInternalTopic)
    return Status(Err::internal_topic, std::string("topic ") + kInternalTopic + " is reserved");
  std::string host;
  int port = 0;
  s = split_host_port(o.localhost, &host, &port);
  if (!s) return s;
  if (o.store_wait_ms >= 0) s = check_limit(LimitId::store_wait_ms, size_t(o.store_wait_ms));
  if (s) s = check_limit_option(LimitId::max_message_size, o.max_message_size);
  if (s) s = check_limit_option(LimitId::compress_threshold, o.compress_threshold);
  if (s) s = check_limit_option(LimitId::max_send_queue_bytes, o.max_send_queue_bytes);
  if (s) s = check_limit_option(LimitId::max_send_queue, o.max_send_queue_messages);
  if (!s) return s;
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
      std::lock_guard<std::mutex> lock(topics_mu_);
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
                                                  int32_t* key) { return routes_.cached(topic, addrs, key); }));
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
    std::lock_guard<std::mutex> lock(topics_mu_);
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
  routes_.clear_addresses();
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

void Client::listen_as(const std::string& topic, int32_t key) {
  delivery_->set_topic(key, topic);
  std::lock_guard<std::mutex> lock(topics_mu_);
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
    std::lock_guard<std::mutex> lock(topics_mu_);
    for (const auto& k : listen_keys_) {
      bool own = k.first == opt_.topic;
      if (own || subscriptions_.count(k.first))
        r.entries.push_back({k.first, k.second, own ? DirectoryEvent::join : DirectoryEvent::subscribe});
    }
  }
  r.sent_topic_keys = routes_.keys();
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

}  // namespace liner
