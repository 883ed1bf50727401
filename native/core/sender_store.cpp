// The sender's store work, run on its StoreWorker one job per channel at a time: reading the
// listener's ack, spilling unacknowledged frames to the offline queue, replaying that queue
// and popping what the ack covers. Jobs answer on the sender thread (post_store).
#include <algorithm>

#include "core/ack_window.hpp"
#include "core/frame.hpp"
#include "core/log.hpp"
#include "core/offline_queue.hpp"
#include "core/sender.hpp"
#include "core/sender_channel.hpp"

namespace liner {
using namespace sender_tuning;

namespace {

using std::chrono::milliseconds;

constexpr auto kAckPoll = milliseconds(1000);  // as liner_broker's sender
// A queue under pressure may be one stopped at its cap: the listener acks its pause that often.
constexpr auto kAckPollUnderPressure = kAckIdleFlushGap;
// One replay job reads this many chunks at most, and stops after this many bytes.
constexpr int kReadAheadChunks = 4;
constexpr size_t kReadAheadBytes = size_t(4) << 20;

}  // namespace

bool Sender::post_store(Channel* ch, StoreJob job) {
  if (ch->store_busy) return false;
  ch->store_busy = true;
  uint64_t gen = ch->view_gen;
  bool posted = store_->post([this, ch, gen, job = std::move(job)](Store& store) -> StoreWorker::Completion {
    StoreThen then = job(store);
    return [this, ch, gen, then = std::move(then)] {
      ch->store_busy = false;
      bool stale = gen != ch->view_gen;
      if (stale) ch->offline.forget();
      mirror_queue(ch);
      if (then) then(stale);
      store_step(ch);
    };
  });
  if (!posted) ch->store_busy = false;
  return posted;
}

void Sender::store_step(Channel* ch) {
  if (ch->store_busy) return;
  switch (ch->state) {
    case State::opening: {
      int32_t ck = ch->ck;
      bool posted = post_store(ch, [this, ch, ck](Store& store) -> StoreThen {
        AckCounter counter;
        Status s = store.read_ack(ck, true, &counter);
        if (s) s = ch->offline.open(store);
        return [=](bool stale) {
          if (stale || ch->state != State::opening) return;  // that connection is gone
          if (s) note_ack(ch, counter);
          if (!s && ch->offline.may_have_backlog()) {
            // Without the offline queue's content, newer numbers would overtake stored ones
            // and the listener would drop the stored ones as duplicates. Try again later.
            on_failure(ch, "store unavailable at connect: " + s.message);
            return;
          }
          if (s) ch->ack_poll_failed = false;
          opened(ch);
        };
      });
      if (!posted) on_failure(ch, "store unavailable at connect: its request queue is full");
      break;
    }
    case State::backoff:
      if (!ch->pending.empty()) spill(ch);
      break;
    case State::idle:
      if (!stopping_ && has_work(ch)) start_connect(ch);  // stopping: drain_and_close decides
      break;
    case State::connected:
      if (ch->queue.has_unread) ready_.push_back(ch);  // flush() reads on
      break;
    case State::connecting:
    case State::settling:
      break;
  }
}

void Sender::mirror_queue(Channel* ch) {
  ch->queue.may_have_backlog = ch->offline.may_have_backlog();
  ch->queue.has_unread = ch->offline.has_unread();
  ch->queue.has_unpopped = ch->offline.has_unpopped();
  ch->queue.read_count = ch->offline.read_count();
}

void Sender::spill(Channel* ch, bool force) {
  // One job at a time per channel: one in flight spills what is left when it answers
  // (store_step). After a refused spill, new messages wait in RAM a moment rather than
  // retrying a store that is down at every send.
  if (ch->store_busy || ch->pending.empty()) return;
  if (!force && Clock::now() - ch->spill_failed_at < kAckPollRetry) return;
  // At-least-once frames the listener has not acknowledged go to the offline queue, one
  // element each; best-effort ones are dropped.
  // Frames of send_to are marked as such in the store (NumberRanges), for a hand-over.
  auto keep = std::make_shared<std::vector<std::string>>();
  auto marked = std::make_shared<std::vector<bool>>();
  size_t dropped = 0, kept_cost = 0;
  for (const auto& seg : ch->pending) {
    for (size_t at = 0; at < seg.bytes.size();) {
      const char* f = seg.bytes.data() + at;
      size_t len = frame_size_at(f);
      if (!frame_is_at_least_once(f)) {
        ++dropped;
      } else if (frame_number_at(f) > ch->acked) {
        keep->emplace_back(f, len);
        marked->push_back(seg.handover);
        kept_cost += len + kPerMessageOverhead;
      }
      at += len;
    }
  }
  for (auto& seg : ch->pending) release(ch, seg);
  ch->pending.clear();
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.dropped += dropped;
  }
  if (keep->empty()) return;
  // Still held (against the queue caps) until the store has them.
  size_t kept_frames = keep->size();
  ch->released_bytes -= kept_cost;
  ch->released_count -= kept_frames;
  // Frames of `keep` numbered above `above` that the store did not take go back in front of the
  // queue (newer messages may have come after them), each with its mark (a segment per run of
  // them), to be written or spilled later. They stay held: their segments release them when
  // they go. The rest of `keep` is released now.
  auto put_back = [this, ch, keep, marked, kept_cost, kept_frames](uint64_t above, const std::string& why) {
    std::deque<Segment> kept;
    size_t cost = 0, frames = 0;
    for (size_t i = 0; i < keep->size(); ++i) {
      const std::string& f = (*keep)[i];
      if (frame_number_at(f.data()) <= above) continue;
      if (kept.empty() || kept.back().handover != (*marked)[i]) {
        kept.emplace_back();
        kept.back().at_least_once = true;
        kept.back().handover = (*marked)[i];
      }
      Segment& seg = kept.back();
      ++seg.frames;
      seg.last = frame_number_at(f.data());
      seg.cost += f.size() + kPerMessageOverhead;
      seg.bytes.append(f.data(), f.size());
      cost += f.size() + kPerMessageOverhead;
      ++frames;
    }
    ch->released_bytes += kept_cost - cost;
    ch->released_count += kept_frames - frames;
    if (kept.empty()) return;
    while (!kept.empty()) {
      ch->pending.push_front(std::move(kept.back()));
      kept.pop_back();
    }
    ch->spill_failed_at = Clock::now();
    log_line("cannot store messages for " + ch->addr + " offline: " + why);
    emit(StatusKind::sender_store_error, ch, why);
  };
  int32_t ck = ch->ck;
  uint64_t acked = ch->acked;
  bool posted = post_store(ch, [this, ch, ck, acked, keep, marked, kept_cost, kept_frames, put_back](Store& store) -> StoreThen {
    // Read the ack first: what the listener acknowledged meanwhile need not be stored.
    AckCounter counter;
    Status read = store.read_ack(ck, true, &counter);
    uint64_t now_acked = read ? std::max(acked, counter.number) : acked;
    std::vector<const std::string*> frames;
    NumberRanges handover;
    bool extends = false;  // the last frame stored was marked: a marked one extends its range
    for (size_t i = 0; i < keep->size(); ++i) {
      const std::string& f = (*keep)[i];
      uint64_t number = frame_number_at(f.data());
      if (number <= now_acked) continue;
      frames.push_back(&f);
      if ((*marked)[i] && extends) handover.back().second = number;
      else if ((*marked)[i]) handover.emplace_back(number, number);
      extends = (*marked)[i];
    }
    Status s = ch->offline.push(store, frames, handover);
    size_t stored = frames.size();
    return [=](bool) {
      if (read) note_ack(ch, counter);
      if (!s) {
        put_back(now_acked, s.message);
        return;
      }
      ch->released_bytes += kept_cost;
      ch->released_count += kept_frames;
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.persisted += stored;
    };
  });
  if (!posted) put_back(0, "the store's request queue is full");  // nothing stored: all of it
}

void Sender::load_backlog(Channel* ch) {
  // The frames are packed into segments on the worker, like RAM messages (a big frame keeps
  // its own buffer): the sender thread only moves them into the backlog. Frames this
  // connection already carried are passed over by number when written (skip_written()).
  // One job reads up to kReadAheadChunks chunks (fewer once kReadAheadBytes were read), and
  // hands each over as soon as it is read (StoreWorker::emit): the worker reads the next
  // while this thread writes the last, with no hand-over in between.
  struct Loaded {
    std::deque<Segment> segments;
    size_t frames = 0;      // packed
    size_t not_frames = 0;  // elements that are not frames: skipped, popped with the acked
    size_t bytes = 0;
  };
  // Sender thread: takes one chunk (of a connection that is still the one it was read for).
  auto take = [this, ch](Loaded& loaded, uint64_t gen) {
    if (gen != ch->view_gen || ch->state != State::connected) return;  // the store keeps it
    if (loaded.not_frames) {
      log_line("offline queue of " + ch->addr + " holds " + std::to_string(loaded.not_frames) +
               " element(s) that are not frames; skipped");
      emit(StatusKind::sender_store_error, ch, "offline queue element is not a frame");
    }
    for (auto& seg : loaded.segments) ch->backlog.push_back(std::move(seg));
    ch->backlog_frames += loaded.frames;
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.reloaded += loaded.frames + loaded.not_frames;
    }
    flush(ch);
  };
  // Not posted when a job of this channel is in flight: flush() runs again when it answered.
  uint64_t gen = ch->view_gen;
  post_store(ch, [this, ch, gen, take](Store& store) -> StoreThen {
    size_t bytes = 0;
    for (int chunk = 0;; ++chunk) {
      auto loaded = std::make_shared<Loaded>();
      Status error = ch->offline.read_next(store, kBacklogChunk, [&](std::string&& f, uint64_t number) {
        loaded->bytes += f.size();
        if (number == 0) {
          ++loaded->not_frames;
          return;
        }
        std::deque<Segment>& q = loaded->segments;
        if (q.empty() || f.size() > kSegmentBytes / 4 || q.back().bytes.size() + f.size() > kSegmentBytes) {
          q.emplace_back();
          q.back().from_store = true;
          q.back().at_least_once = true;
        }
        Segment& seg = q.back();
        seg.bytes.append(f.data(), f.size());
        ++seg.frames;
        seg.last = number;
        ++loaded->frames;
      });
      bytes += loaded->bytes;
      bool more = error.ok() && ch->offline.has_unread() && chunk + 1 < kReadAheadChunks &&
                  bytes < kReadAheadBytes && gen == ch->view_gen;
      if (!more) {
        // The last chunk goes with the job's own completion.
        return [this, ch, loaded, error, take, gen](bool stale) {
          if (stale || ch->state != State::connected) return;
          if (!error.ok()) {
            on_failure(ch, "offline queue unreadable: " + error.message);
            return;
          }
          take(*loaded, gen);
        };
      }
      store_->emit([loaded, take, gen] { take(*loaded, gen); });  // `more`: this one read something
    }
  });
}

void Sender::poll_acks(Channel* ch) {
  // Frames read from the store and written (the rest of those read wait in the backlog). More
  // may be written while the job runs: popping fewer is safe.
  uint64_t read = ch->queue.read_count;
  uint64_t written = read > ch->backlog_frames ? read - ch->backlog_frames : 0;
  uint64_t acked = ch->acked;
  int32_t ck = ch->ck;
  ch->last_ack_poll = Clock::now();
  post_store(ch, [this, ch, ck, acked, written](Store& store) -> StoreThen {
    AckCounter counter;
    Status s = store.read_ack(ck, true, &counter);
    Status pop_error;
    bool popped = true;
    if (s) popped = ch->offline.pop(store, std::max(acked, counter.number), written, &pop_error);
    return [=](bool stale) {
      ch->ack_poll_failed = !s;
      if (!s) {
        emit(StatusKind::sender_store_error, ch, s.message);
        return;
      }
      note_ack(ch, counter);
      release_acked(ch);
      if (!popped && !stale && ch->state == State::connected) {
        if (!pop_error.ok()) emit(StatusKind::sender_store_error, ch, pop_error.message);
        reread_store_queue(ch);
      }
    };
  });
}

void Sender::reread_store_queue(Channel* ch) {
  // The backlog segments stay: they are read again only once they are written, and by then
  // their numbers are at or below last_written, which the next read skips.
  bool posted = post_store(ch, [this, ch](Store& store) -> StoreThen {
    Status s = ch->offline.reread(store);
    return [=](bool stale) {
      if (stale || ch->state != State::connected) return;
      if (!s) on_failure(ch, "offline queue unreadable: " + s.message);
      else if (ch->queue.has_unread) ready_.push_back(ch);
    };
  });
  if (!posted) on_failure(ch, "offline queue unreadable: the store's request queue is full");
}

void Sender::note_ack(Channel* ch, const AckCounter& counter) {
  if (counter.unreadable && !ch->ack_unreadable_reported) {
    ch->ack_unreadable_reported = true;
    report_unreadable_ack(ch->ck, ch->addr);
    emit(StatusKind::sender_store_error, ch, "acknowledgement counter is not a number; read as 0");
  } else if (!counter.unreadable) {
    ch->ack_unreadable_reported = false;
  }
  ch->acked = std::max(ch->acked, counter.number);
}

void Sender::report_unreadable_ack(int32_t ck, const std::string& addr) {
  log_line("lnr_connection:" + std::to_string(ck) + ":mess_number (peer " + addr +
           ") is not a number; read as 0: unacknowledged and stored messages go out again");
}

// Acks are polled about once a second, as liner_broker does; every 0.5 ms while an ack window
// is in flight or a paused stream waits for its ack, and every 20 ms while a queue is a quarter
// full, so that at-least-once traffic is not throttled by the poll period.
Sender::Clock::time_point Sender::next_ack_poll(const Channel* ch) const {
  // Not every millisecond against a store that is down (each failure is reported).
  if (ch->ack_poll_failed) return ch->last_ack_poll + kAckPollRetry;
  // Messages written past the last ack seen (unacked holds segments, not messages). The listener
  // acks a stream every window, and a pause (nothing left here to write) after a quarter window
  // at once (ack_window.hpp): poll that often then.
  uint64_t unacked_messages = ch->last_written - ch->acked;
  bool window = reaches_ack_window(unacked_messages, ch->unacked_bytes);
  bool paused = ch->pending.empty() && reaches_ack_prompt(unacked_messages, ch->unacked_bytes);
  if (!ch->unacked.empty() && (window || paused)) return ch->last_ack_poll + kAckWindowGap;
  size_t count_cap = queue_count_cap();
  bool pressure = ch->held_bytes.get() > queue_bytes_cap() / 4 ||
                  (count_cap && ch->held_count.get() > count_cap / 4);
  return ch->last_ack_poll + (pressure ? kAckPollUnderPressure : kAckPoll);
}

}  // namespace liner
