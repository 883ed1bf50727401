// Sends: check, pick the route, queue on the peer's channel; or wait (WaitingSends) while a
// route is looked up or a channel opened off the caller's thread.
#include "core/client.hpp"

#include <cstring>
#include <set>

#include "core/per_thread.hpp"
#include "core/client_internal.hpp"

namespace liner {

namespace {

// Bytes that may wait for one peer's channel or one topic's look-up (WaitingSends), in send-queue
// byte caps. They wait uncompressed (the sender compresses as it queues), and an open channel
// makes room as it writes; with one cap, a burst to a peer whose channel is being opened was
// refused where the open channel took it. The send-queue count cap applies as it is.
constexpr size_t kWaitingQueueCaps = 4;

// The last single-address route a thread's send_to used: a stream of sends to one topic skips
// the route lock, two map look-ups and the copy of the address.
struct RememberedRoute {
  const void* client = nullptr;
  uint64_t epoch = 0;
  std::string topic;
  int32_t topic_key = 0;
  std::vector<TopicAddress> targets;  // exactly one
  Sender::ChannelRef channel;          // the sender's channel to it, once enqueue found it
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

}  // namespace

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
  Sender::ChannelRef* channel = nullptr;
  int32_t topic_key = 0;
  // Read before the route lock: a change made after this read leaves the remembered route
  // stale for the next send.
  uint64_t epoch = RouteTable::epoch();
  if (!all && remembered.client == this && remembered.epoch == epoch && remembered.topic == topic) {
    targets = &remembered.targets;
    topic_key = remembered.topic_key;
    channel = &remembered.channel;
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
      remembered.channel.reset();
    }
  }

  if (waiting_->active()) return send_waiting(topic, messages, count, at_least_once, all, targets, topic_key, queued);
  if (all) return send_to_every(*targets, topic, topic_key, messages[0], at_least_once);
  // send_to and send_to_many have exactly one target (pick_targets); send_all went above.
  size_t done = 0;
  Status st = enqueue_opening((*targets)[0], topic, topic_key, messages, count, at_least_once,
                              hands_over(at_least_once, false), channel, &done);
  if (queued) *queued = done;
  if (st.ok()) return Status();  // built in place: no Status moved on success
  return st;
}

Status Client::enqueue_opening(const TopicAddress& t, const std::string& topic, int32_t topic_key,
                               const Payload* messages, size_t count, bool at_least_once, bool handover,
                               Sender::ChannelRef* channel, size_t* done, Opening opening) {
  // The channel almost always exists: try the one-lock enqueue first (unless messages wait
  // for that channel: then this one waits behind them).
  if (opening == Opening::wait_locked && waiting_->has_locked({WaitingSends::KeyKind::channel, t.addr}))
    return enqueue_waiting(t, topic, topic_key, messages, count, at_least_once, handover, channel, done, opening);
  Sender::Enqueued e = sender_->enqueue(t.addr, topic, topic_key, messages, count, at_least_once, handover, channel);
  if (done) *done = e.queued;
  if (e.status.ok() && !e.no_channel) return Status();  // built in place: the send path moves no Status
  if (!e.no_channel) return std::move(e.status);
  // A liner_broker 1.3.1 entry names no listener: there is no channel to open.
  if (t.unique_name.empty()) return Status(Err::no_addr, "no channel to " + t.addr);
  return enqueue_waiting(t, topic, topic_key, messages, count, at_least_once, handover, channel, done, opening);
}

Status Client::enqueue_waiting(const TopicAddress& t, const std::string& topic, int32_t topic_key,
                               const Payload* messages, size_t count, bool at_least_once, bool handover,
                               Sender::ChannelRef* channel, size_t* done, Opening opening) {
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
      Sender::Enqueued e = sender_->enqueue(t.addr, topic, topic_key, messages, count, at_least_once, handover, channel);
      if (done) *done = e.queued;
      if (!e.no_channel) return std::move(e.status);
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
  int32_t topic_key = 0;
  routes_.cached(key.name, &addrs, &topic_key);
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

}  // namespace liner
