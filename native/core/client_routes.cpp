// The route cache: which addresses serve a topic (read from the directory, kept current by its
// events and the directory watch), the topic keys, round-robin picks, and the offline routes
// to peers that served a topic nobody serves now.
#include "core/client.hpp"

#include <algorithm>
#include "core/client_internal.hpp"

namespace liner {

// ---- directory -----------------------------------------------------------------------------

// Reads a topic's directory and key from the store into the cache (first send to a topic).
Status Client::load_route(Store& store, const std::string& topic) {
  std::vector<TopicAddress> addrs;
  Status s = store.addresses_of_topic(topic, &addrs);
  return s ? cache_route(store, topic, std::move(addrs)) : s;
}

Status Client::cache_route(Store& store, const std::string& topic, std::vector<TopicAddress> addrs) {
  int32_t key = 0;
  if (!routes_.key_of(topic, &key)) {
    Status s = store.topic_key(topic, &key);
    if (!s) return s;
  }
  routes_.cache(topic, key, std::move(addrs));
  return Status();
}

// Chooses where one message goes: every address (send_all) or the next reachable one in
// round-robin order (send_to). With nobody in the directory, at-least-once messages still go to
// peers this client already talked to on that topic (they went offline gracefully).
Status Client::pick_targets(const std::string& topic, bool at_least_once, bool all,
                            std::vector<TopicAddress>* targets, int32_t* topic_key, bool* single, bool* look_up) {
  *single = false;
  *look_up = false;
  // Reachability matters only when some peer is unreachable: then round-robin's candidates
  // come back, and the first reachable one is chosen here, outside the table's lock.
  RouteTable::Pick how = all                             ? RouteTable::Pick::all
                         : sender_->unreachable_peers() ? RouteTable::Pick::candidates
                                                        : RouteTable::Pick::next;
  // The cache first; on a miss (unknown topic, or nobody known to serve it) ask the store once,
  // as liner_broker does.
  for (int attempt = 0; attempt < 2; ++attempt) {
    RouteTable::Lookup found = routes_.pick(topic, how, targets);
    if (found.key) *topic_key = found.topic_key;
    if (found.served()) {
      *single = !all && found.addresses == 1;
      if (how == RouteTable::Pick::candidates) choose_reachable(topic, targets);
      return Status();
    }
    if (found.route && found.key && found.unserved_lately && at_least_once && offline_targets(topic, all, targets))
      return Status();  // nobody serves it, as read a moment ago
    if (attempt == 1) break;
    if (opt_.lookup_off_thread) {
      // Not in the cache: waiting_ looks it up. In the cache with nobody serving it (read by
      // a send or a refresh): the directory thread keeps that current, so it is the answer.
      if (!found.route || (!found.key && !(found.addresses == 0 && sender_->channel_addresses(topic).empty()))) {
        *look_up = true;
        return Status();
      }
      break;
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

void Client::choose_reachable(const std::string& topic, std::vector<TopicAddress>* candidates) {
  size_t pick = 0;  // none reachable: round-robin's own pick
  for (size_t i = 0; i < candidates->size(); ++i) {
    if (sender_->reachable((*candidates)[i].addr)) {
      pick = i;
      break;
    }
  }
  routes_.settle(topic, (*candidates)[pick].addr);
  if (pick) (*candidates)[0] = std::move((*candidates)[pick]);
  candidates->resize(1);
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
  if (!addrs.empty()) RouteTable::changed();  // a thread's remembered route may still name one of them
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
  bool cached = routes_.watches(e.topic), interesting = cached || e.topic == opt_.topic;
  if (!interesting) {
    std::lock_guard<std::mutex> lock(topics_mu_);
    interesting = subscriptions_.count(e.topic) != 0;
  }
  // Refresh the route before the sender forgets the topic, so that no send can still pick the
  // address after an unsubscribe (the sender also refuses to re-learn a forgotten topic).
  std::vector<TopicAddress> addrs;
  if (cached && refresh_store_->addresses_of_topic(e.topic, &addrs)) routes_.store(e.topic, addrs);
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
  std::set<std::string> watched = routes_.watched(), topics = watched;
  {
    std::lock_guard<std::mutex> lock(topics_mu_);
    for (const auto& k : listen_keys_) topics.insert(k.first);
  }
  for (const auto& t : topics) {
    std::vector<TopicAddress> addrs;
    if (refresh_store_->sweep_lapsed(t, &addrs) && watched.count(t)) routes_.store(t, std::move(addrs));
  }
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
  routes_.watch(topic);
  // Peers that unsubscribed stop being waited for as soon as this returns, whether or not
  // their notification arrived yet (compat spec §6.1).
  forget_unsubscribed(topic, unsubscribed);
  bool found = !addrs.empty();
  routes_.store(topic, std::move(addrs));
  return found ? Status() : Status(Err::no_addr, "not found addr for topic " + topic);
}

Status Client::list_addresses(const std::string& topic, std::vector<TopicAddress>* out) {
  if (topic.empty()) return Status(Err::invalid_arg, "topic name empty");
  {
    std::lock_guard<std::mutex> api(api_mu_);
    Status s = api_store_->addresses_of_topic(topic, out);
    if (!s) return s;
  }
  routes_.watch(topic);
  routes_.store(topic, *out);
  return Status();
}

}  // namespace liner
