#include "core/route_table.hpp"

namespace liner {

namespace {

// An at-least-once send to a topic nobody serves goes to the offline queue of the peers that
// served it. How long "nobody" read from the directory is trusted before the next such send
// reads it again: without it every send paid a directory round trip. A peer that comes
// back is seen sooner through its directory event, and nothing is lost meanwhile: its queue
// is delivered when it reconnects.
constexpr auto kUnservedFor = std::chrono::milliseconds(200);

}  // namespace

std::atomic<uint64_t> RouteTable::epoch_{1};

RouteTable::Lookup RouteTable::pick(const std::string& topic, Pick how, std::vector<TopicAddress>* targets) {
  Lookup found;
  std::lock_guard<std::mutex> lock(mu_);
  auto key = keys_.find(topic);
  if (key != keys_.end()) {
    found.key = true;
    found.topic_key = key->second;
  }
  auto it = routes_.find(topic);
  if (it == routes_.end()) return found;
  Route& r = it->second;
  found.route = true;
  found.addresses = r.addrs.size();
  if (r.addrs.empty()) {
    found.unserved_lately = std::chrono::steady_clock::now() - r.read_at < kUnservedFor;
    return found;
  }
  if (!found.key) return found;
  size_t n = r.addrs.size(), first = r.next % n;
  switch (how) {
    case Pick::all:
      *targets = r.addrs;
      break;
    case Pick::next:
      r.next = first + 1;
      targets->resize(1);  // assigned, not rebuilt: the element keeps its capacity
      (*targets)[0] = r.addrs[first];
      break;
    case Pick::candidates:
      targets->clear();
      for (size_t i = 0; i < n; ++i) targets->push_back(r.addrs[(first + i) % n]);
      break;
  }
  return found;
}

void RouteTable::settle(const std::string& topic, const std::string& addr) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = routes_.find(topic);
  if (it == routes_.end()) return;
  Route& r = it->second;
  for (size_t i = 0; i < r.addrs.size(); ++i)
    if (r.addrs[i].addr == addr) r.next = i + 1;
}

void RouteTable::store(const std::string& topic, std::vector<TopicAddress> addrs) {
  std::lock_guard<std::mutex> lock(mu_);
  Route& r = routes_[topic];
  // The directory watch re-reads every watched topic each second: only a real change may
  // send every thread's remembered route back to the slow path.
  if (r.addrs != addrs) {
    r.addrs = std::move(addrs);  // empty is remembered too: see kUnservedFor
    changed();
  }
  r.read_at = std::chrono::steady_clock::now();
}

void RouteTable::cache(const std::string& topic, int32_t key, std::vector<TopicAddress> addrs) {
  std::lock_guard<std::mutex> lock(mu_);
  keys_[topic] = key;
  watched_.insert(topic);
  Route& r = routes_[topic];
  r.addrs = std::move(addrs);
  r.read_at = std::chrono::steady_clock::now();
  changed();
}

bool RouteTable::key_of(const std::string& topic, int32_t* key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = keys_.find(topic);
  if (it == keys_.end()) return false;
  *key = it->second;
  return true;
}

bool RouteTable::cached(const std::string& topic, std::vector<TopicAddress>* addrs, int32_t* key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto route = routes_.find(topic);
  auto k = keys_.find(topic);
  if (route == routes_.end() || k == keys_.end()) return false;
  *addrs = route->second.addrs;
  *key = k->second;
  return true;
}

std::vector<std::pair<std::string, int32_t>> RouteTable::keys() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {keys_.begin(), keys_.end()};
}

void RouteTable::watch(const std::string& topic) {
  std::lock_guard<std::mutex> lock(mu_);
  watched_.insert(topic);
}

bool RouteTable::watches(const std::string& topic) const {
  std::lock_guard<std::mutex> lock(mu_);
  return watched_.count(topic) != 0;
}

std::set<std::string> RouteTable::watched() const {
  std::lock_guard<std::mutex> lock(mu_);
  return watched_;
}

void RouteTable::clear_addresses() {
  std::lock_guard<std::mutex> lock(mu_);
  routes_.clear();
  changed();
}

}  // namespace liner
