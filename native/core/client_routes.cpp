// The route cache: which addresses serve a topic (read from the directory, kept current by its
// events and the directory watch), the topic keys, round-robin picks, and the offline routes
// to peers that served a topic nobody serves now.
#include "core/client.hpp"

#include <algorithm>
#include "core/client_internal.hpp"

namespace liner {

namespace {

// An at-least-once send to a topic nobody serves goes to the offline queue of the peers that
// served it. How long "nobody" read from the directory is trusted before the next such send
// reads it again: without it every send paid a directory round trip. A peer that comes
// back is seen sooner through its directory event, and nothing is lost meanwhile: its queue
// is delivered when it reconnects.
constexpr auto kUnservedFor = std::chrono::milliseconds(200);

}  // namespace

std::atomic<uint64_t> g_route_epoch{1};

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

}  // namespace liner
