// The sender's life and what other units ask of it: start and stop, opening a channel to a
// peer (its connection key, ack and numbering from the store), and the read-only views
// (stats, channels, reachability). The rest of the class lives in sender_*.cpp, one concept
// each; sender_channel.hpp says which thread owns which part of a channel.
#include "core/sender.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>

#include "core/counter.hpp"
#include "core/frame.hpp"
#include "core/offline_queue.hpp"
#include "core/sender_channel.hpp"
#include "core/thread.hpp"

namespace liner {
using namespace sender_tuning;

namespace {

using std::chrono::milliseconds;

// One job per channel at most (post_store), so this bounds nothing a real mesh reaches; it
// keeps the worker's queue bounded all the same.
constexpr size_t kStoreJobsMax = 65536;
// How far a resumed channel's numbering jumps (open_channel says why).
constexpr uint64_t kResumeGap = uint64_t(1) << 24;

}  // namespace

Sender::Sender(SenderOptions options, std::unique_ptr<Store> store)
    : opt_(std::move(options)),
      store_(new StoreWorker(std::move(store), kStoreJobsMax, [this] { waker_.wake(); })) {}

Sender::~Sender() {
  if (thread_.joinable()) stop(milliseconds(0));
  for (auto& kv : channels_) close_socket(kv.second.get());
  if (epfd_ >= 0) ::close(epfd_);
}

Status Sender::start() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0 || waker_.fd() < 0) return Status(Err::startup, "sender: epoll/eventfd failed");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, waker_.fd(), &ev);
  stopping_ = false;
  Status s = store_->start("lnr-sstore");
  if (!s) return s;
  return start_thread(&thread_, "lnr-sender", [this] { loop(); });
}

void Sender::stop(milliseconds drain) {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<AdaptiveMutex> lock(mu_);
    stop_deadline_ms_ = drain.count();
  }
  stopping_ = true;
  waker_.wake();
  thread_.join();
}

Status Sender::open_channel(Store& store, const std::string& addr, const std::string& listener_unique,
                            const std::string& topic) {
  {
    std::lock_guard<AdaptiveMutex> lock(mu_);
    auto it = by_addr_.find(addr);
    if (it != by_addr_.end()) {
      it->second->topics.insert(topic);
      return Status();
    }
  }
  int32_t ck = 0;
  bool found = false, found_existing = false;
  Status s = store.connection_key(opt_.unique_name, opt_.source_topic, listener_unique, false, &ck, &found);
  found_existing = s && found;
  if (s && !found)
    s = store.connection_key(opt_.unique_name, opt_.source_topic, listener_unique, true, &ck, &found);
  uint64_t acked = 0;
  std::string last_frame;
  bool has_stored = false;
  AckCounter counter;
  if (s) s = store.read_ack(ck, true, &counter);
  if (s && counter.unreadable) report_unreadable_ack(ck, addr);
  acked = counter.number;
  bool counter_existed = counter.existed;
  if (s) s = store.last_stored_message(ck, &last_frame, &has_stored);
  if (s) s = store.save_listener_for_sender(opt_.unique_name, opt_.source_topic, addr, topic, listener_unique);
  if (s) s = store.set_sender_topic(ck, opt_.source_topic);
  if (!s) return s;
  uint64_t last = acked;
  if (has_stored) {
    FrameHeader h;
    const uint8_t* data = nullptr;
    std::string err;
    if (decode_stored_frame(last_frame, &h, &data, &err)) last = std::max(last, h.number_mess);
  }
  // Resuming a channel whose key and counter existed (clear_stored_messages deletes the
  // counter: a cleared channel starts over from 1): an earlier incarnation of this sender may have died
  // (even before any ack was written) with frames past the ack that the listener has yet to
  // deliver, and a listener drops any number it has already seen. Skipping ahead by more than
  // can be in flight (queue caps, socket and delivery buffers) means a restarted sender never
  // reuses one. Listeners only need numbers to grow, so the gap is harmless; u64 leaves room
  // for 2^40 restarts.
  if (found_existing && (counter_existed || has_stored)) last += kResumeGap;

  bool wake = false;
  {
    std::lock_guard<AdaptiveMutex> lock(mu_);
    if (by_addr_.count(addr)) {  // another thread won the race
      by_addr_[addr]->topics.insert(topic);
      return Status();
    }
    auto it = channels_.find(ck);
    Channel* ch;
    if (it != channels_.end()) {
      // Same listener identity on a new address: the peer moved. Keep numbering and queue.
      ch = it->second.get();
      by_addr_.erase(ch->addr);
      ch->addr = addr;
      ch->readdress = true;
      mark_unreachable_locked(ch, false);  // a new address deserves a fresh try
    } else {
      auto fresh = std::make_unique<Channel>();
      ch = fresh.get();
      ch->ck = ck;
      ch->listener_unique = listener_unique;
      ch->first_topic = topic;
      ch->addr = addr;
      ch->last_number = last;
      ch->acked = acked;
      ch->last_written = acked;
      ch->offline = OfflineQueue(ck);
      if (!has_stored) ch->offline.open_empty();
      ch->queue.may_have_backlog = has_stored;
      channels_[ck] = std::move(fresh);
    }
    ch->topics.insert(topic);
    by_addr_[addr] = ch;
    // A known channel is the sender thread's (readdress tells it); a new one may have a backlog.
    if (ch->readdress || (it == channels_.end() && has_stored)) {
      mark_dirty_locked(ch);
      wake = true;
    }
  }
  if (wake) waker_.wake();
  return Status();
}

std::string Sender::address_of(const std::string& listener_unique) const {
  std::lock_guard<AdaptiveMutex> lock(mu_);
  for (auto& kv : channels_)
    if (kv.second->listener_unique == listener_unique) return kv.second->addr;
  return std::string();
}

void Sender::continue_busy(const std::string& addr) {
  std::lock_guard<AdaptiveMutex> lock(mu_);
  auto it = by_addr_.find(addr);
  if (it != by_addr_.end()) it->second->busy_reported = true;
  waker_.wake();  // its loop announces the room, if there is some already
}

bool Sender::has_channel(const std::string& addr) const {
  std::lock_guard<AdaptiveMutex> lock(mu_);
  return by_addr_.count(addr) != 0;
}

void Sender::release_peer(const std::string& addr) {
  {
    std::lock_guard<AdaptiveMutex> lock(mu_);
    auto it = by_addr_.find(addr);
    if (it == by_addr_.end()) return;
    Channel* ch = it->second;
    ch->release = true;
    mark_dirty_locked(ch);
  }
  waker_.wake();
}

void Sender::emit(StatusKind kind, const Channel* ch, const std::string& message) const {
  if (!opt_.status) return;
  std::string topic, addr;
  {
    std::lock_guard<AdaptiveMutex> lock(mu_);
    topic = ch->first_topic;
    addr = ch->addr;
  }
  opt_.status->emit(kind, topic, addr, message);
}

std::vector<ChannelInfo> Sender::channels() const {
  std::lock_guard<AdaptiveMutex> lock(mu_);
  std::vector<ChannelInfo> out;
  for (auto& kv : channels_) {
    const Channel* ch = kv.second.get();
    out.push_back({ch->addr, ch->first_topic, std::vector<std::string>(ch->topics.begin(), ch->topics.end()),
                   ch->listener_unique, ch->ck, ch->connected, uint64_t(ch->held_count.get())});
  }
  return out;
}

void Sender::mark_unreachable_locked(Channel* ch, bool unreachable) {
  if (ch->unreachable == unreachable) return;
  ch->unreachable = unreachable;
  unreachable_peers_.fetch_add(unreachable ? 1 : size_t(-1), std::memory_order_relaxed);
}

bool Sender::reachable(const std::string& addr) const {
  std::lock_guard<AdaptiveMutex> lock(mu_);
  auto it = by_addr_.find(addr);
  return it == by_addr_.end() || !it->second->unreachable;
}

std::vector<std::string> Sender::channel_addresses(const std::string& topic) const {
  std::lock_guard<AdaptiveMutex> lock(mu_);
  std::vector<std::string> out;
  for (auto& kv : by_addr_)
    if (kv.second->topics.count(topic)) out.push_back(kv.first);
  return out;
}

void Sender::forget_topic(const std::string& topic, const std::string& addr) {
  std::lock_guard<AdaptiveMutex> lock(mu_);
  auto it = by_addr_.find(addr);
  if (it == by_addr_.end()) return;
  it->second->topics.erase(topic);
  it->second->forgotten.insert(topic);
  it->second->last_topic.clear();
  it->second->last_topic_key = 0;
}

void Sender::peer_announced(const std::string& addr, const std::string& topic) {
  {
    std::lock_guard<AdaptiveMutex> lock(mu_);
    auto it = by_addr_.find(addr);
    if (it == by_addr_.end()) return;
    Channel* ch = it->second;
    ch->forgotten.erase(topic);  // it serves the topic again
    ch->announced = true;
    mark_dirty_locked(ch);
  }
  waker_.wake();
}

SenderStats Sender::stats() const {
  SenderStats out;
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    out = stats_;
  }
  std::lock_guard<AdaptiveMutex> lock(mu_);
  for (auto& kv : channels_) {
    out.queued_messages += kv.second->held_count.get();
    out.queued_bytes += kv.second->held_bytes.get();
  }
  return out;
}

}  // namespace liner
