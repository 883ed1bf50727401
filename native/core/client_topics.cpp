// Subscriptions (topics a client listens on besides its own) and clearing what a client left
// in the store.
#include "core/client.hpp"


#include "core/client_internal.hpp"
#include "core/names.hpp"

namespace liner {

// ---- subscriptions -------------------------------------------------------------------------

Status Client::subscribe(const std::string& topic) {
  Status s = check_topic(topic, "subscribe");
  if (s) s = check_name("topic", topic);
  if (!s) return s;
  auto life = lock_shared_state();
  if (!life.owns_lock()) return not_running("subscribe");
  {
    std::lock_guard<std::mutex> lock(topics_mu_);
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
    std::lock_guard<std::mutex> lock(topics_mu_);
    subscriptions_.erase(topic);
  }
  return s;
}

Status Client::unsubscribe(const std::string& topic) {
  Status s = check_topic(topic, "unsubscribe");
  if (s) s = check_name("topic", topic);
  if (!s) return s;
  auto life = lock_shared_state();
  if (!life.owns_lock()) return not_running("unsubscribe");
  {
    std::lock_guard<std::mutex> lock(topics_mu_);
    subscriptions_.erase(topic);
  }
  if (!running_) return Status();
  std::lock_guard<std::mutex> api(api_mu_);
  s = api_store_->unregister_address(topic, published_, DirectoryEvent::unsubscribe);
  int32_t key = 0;
  {
    std::lock_guard<std::mutex> lock(topics_mu_);
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

}  // namespace liner
