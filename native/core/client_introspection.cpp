// A client's settings and views: advertised address, hand-over, pending queues, stats.
#include "core/client.hpp"


#include "core/client_internal.hpp"
#include "core/names.hpp"

namespace liner {

// ---- introspection -------------------------------------------------------------------------

std::string Client::published_address() const {
  auto lock = lock_shared_state();
  return lock.owns_lock() ? published_ : std::string();
}

Status Client::set_advertise_address(const std::string& addr) {
  if (in_callback()) return Status(Err::already_running, "the advertise address can only be set before run");
  std::unique_lock<std::shared_mutex> life(life_mu_);
  if (running_) return Status(Err::already_running, "the advertise address can only be set before run");
  Status s = check_advertise_address(addr);
  if (!s) return s;
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
