#include "core/handover.hpp"

#include <algorithm>
#include <set>

#include "core/compress.hpp"
#include "core/frame.hpp"
#include "core/limits.hpp"
#include "core/log.hpp"

namespace liner {
namespace {

constexpr uint64_t kChunk = 1024;
constexpr uint64_t kPassFrames = 8 * kChunk;  // read of one queue per pass, at most
// A handed copy not acknowledged by then (its taker left or stalled too) is handed again.
constexpr auto kRetakeAfter = std::chrono::seconds(30);

bool marked(const NumberRanges& sorted, uint64_t number) {
  auto it = std::upper_bound(sorted.begin(), sorted.end(), std::make_pair(number, UINT64_MAX));
  return it != sorted.begin() && std::prev(it)->second >= number;
}

}  // namespace

void Handover::pass(Store& store) {
  std::set<int32_t> gone;
  for (const ChannelInfo& channel : sender_.channels()) {
    for (const std::string& topic : channel.topics) {
      std::vector<TopicAddress> addrs;
      int32_t key = 0;
      if (!route_(topic, &addrs, &key) || addrs.empty()) continue;  // nobody to take them
      bool present = std::any_of(addrs.begin(), addrs.end(), [&](const TopicAddress& a) {
        return a.addr == channel.addr || (!channel.listener_unique.empty() && a.unique_name == channel.listener_unique);
      });
      if (present) continue;
      gone.insert(channel.connection_key);
      Departed& departed = departed_[channel.connection_key];
      if (!departed.released) {
        sender_.release_peer(channel.addr);
        departed.released = true;
      }
      hand_over(store, channel, topic, key, addrs, departed);
    }
  }
  // A peer that came back is released again if it leaves again.
  for (auto& kv : departed_)
    if (!gone.count(kv.first)) kv.second.released = false;
  remove_acknowledged(store);
  for (auto it = departed_.begin(); it != departed_.end();)
    it = !it->second.released && it->second.handed.empty() ? departed_.erase(it) : std::next(it);
}

void Handover::hand_over(Store& store, const ChannelInfo& channel, const std::string& topic, int32_t topic_key,
                         const std::vector<TopicAddress>& takers, Departed& departed) {
  NumberRanges marks;
  if (!store.handover_marks(channel.connection_key, &marks) || marks.empty()) return;
  std::sort(marks.begin(), marks.end());
  Sweep& sweep = departed.sweeps[topic_key];
  if (sweep.done && sweep.marks == marks) return;  // nothing new since it found nothing to hand
  if (sweep.after == 0) sweep = Sweep{0, marks, false, false};
  size_t before = departed.handed.size();
  for (uint64_t read = 0; read < kPassFrames;) {
    std::vector<QueuedFrame> frames;
    if (!store.read_messages_after(channel.connection_key, sweep.after, kChunk, &frames)) break;
    bool more = true;
    for (size_t i = 0; more && i < frames.size(); ++i) {
      uint64_t number = stored_frame_number(frames[i].frame);
      if (number == 0 || departed.handed.count(number) || !marked(marks, number)) continue;
      more = hand_one(store, frames[i].frame, number, topic, topic_key, takers, departed);
    }
    if (!more) break;  // the takers are full: this chunk again next pass (handed ones are skipped)
    if (!frames.empty()) sweep.after = frames.back().place;
    read += frames.size();
    if (frames.size() < kChunk) {  // the end
      sweep.done = !sweep.handed && departed.handed.size() == before && sweep.marks == marks;
      sweep.after = 0;
      break;
    }
  }
  size_t handed = departed.handed.size() - before;
  sweep.handed = sweep.handed || handed > 0;
  if (handed)
    log_line("handed " + std::to_string(handed) + " message(s) waiting for " + channel.addr + ", which left " +
             topic + ", to its other peers");
}

bool Handover::hand_one(Store& store, const std::string& frame, uint64_t number, const std::string& topic,
                        int32_t topic_key, const std::vector<TopicAddress>& takers, Departed& departed) {
  FrameHeader h;
  const uint8_t* data = nullptr;
  std::string error, plain;
  // Another topic's frame stays (its own departure, if any, moves it); so does one that cannot
  // be read back: its peer decides, as without hand-over.
  if (!decode_stored_frame(frame, &h, &data, &error) || h.topic_key != topic_key || h.data_len == 0) return true;
  Payload message{data, h.data_len};
  if (h.flags & kFlagCompress) {
    if (!zstd_decompress(data, h.data_len, limits().max_message_size, plain, &error)) return true;
    message = {plain.data(), plain.size()};
  }
  for (size_t tried = 0; tried < takers.size(); ++tried) {
    const TopicAddress& taker = takers[departed.next++ % takers.size()];
    if (!sender_.has_channel(taker.addr)) {
      if (taker.unique_name.empty()) continue;  // a liner_broker 1.3.1 entry: no channel to open
      if (!sender_.open_channel(store, taker.addr, taker.unique_name, topic)) return false;
    }
    Handed handed;
    Status s = sender_.enqueue_handed_over(taker.addr, topic, topic_key, message, &handed.taker, &handed.covered_by);
    if (!s) continue;  // full (BUSY) or gone: another taker, or the next pass
    handed.frame = frame;
    handed.at = Clock::now();
    departed.handed.emplace(number, std::move(handed));
    return true;
  }
  return false;
}

void Handover::remove_acknowledged(Store& store) {
  std::map<int32_t, uint64_t> acks;  // by taker, read once per pass
  auto now = Clock::now();
  for (auto& kv : departed_) {
    std::vector<std::string> covered;
    std::vector<uint64_t> numbers;
    for (auto it = kv.second.handed.begin(); it != kv.second.handed.end();) {
      const Handed& h = it->second;
      auto ack = acks.find(h.taker);
      if (ack == acks.end()) {
        AckCounter counter;
        if (!store.read_ack(h.taker, false, &counter)) return;
        ack = acks.emplace(h.taker, counter.number).first;
      }
      if (ack->second >= h.covered_by) {
        covered.push_back(h.frame);
        numbers.push_back(it->first);
      } else if (now - h.at > kRetakeAfter) {
        it = kv.second.handed.erase(it);  // still in the departed peer's queue: handed again
        kv.second.sweeps.clear();
        continue;
      }
      ++it;
    }
    if (covered.empty() || !store.remove_messages(kv.first, covered, nullptr)) continue;
    for (uint64_t n : numbers) kv.second.handed.erase(n);
  }
}

}  // namespace liner
