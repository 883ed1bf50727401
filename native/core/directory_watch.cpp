#include "core/directory_watch.hpp"

#include <chrono>

#include "core/log.hpp"
#include "core/thread.hpp"

namespace liner {
namespace {
constexpr int kPollMs = 250;
constexpr auto kTickPeriod = std::chrono::milliseconds(1000);
}  // namespace

DirectoryWatch::DirectoryWatch(std::unique_ptr<Store> feed, OnEvent on_event, OnTick on_tick)
    : feed_(std::move(feed)), on_event_(std::move(on_event)), on_tick_(std::move(on_tick)) {}

DirectoryWatch::~DirectoryWatch() { stop(); }

Status DirectoryWatch::start() {
  stopping_ = false;
  // Subscribe now, not on the thread: a peer that joins right after run() returns must not be
  // missed. Events that arrive meanwhile are handled here.
  std::vector<DirectoryEvent> events;
  Status s = feed_->wait_directory_events(0, &events);
  if (!s) log_line("directory feed unavailable, polling only: " + s.message);
  for (const auto& e : events) on_event_(e);
  return start_thread(&thread_, "lnr-directory", [this] { loop(); });
}

void DirectoryWatch::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void DirectoryWatch::loop() {
  auto next_tick = std::chrono::steady_clock::now() + kTickPeriod;
  bool feed_down = false;
  while (!stopping_) {
    std::vector<DirectoryEvent> events;
    Status s = feed_->wait_directory_events(kPollMs, &events);
    if (!s) {
      if (!feed_down) log_line("directory feed unavailable, polling only: " + s.message);
      feed_down = true;
      // The store rate-limits reconnects; sleep one poll period instead of spinning.
      std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
    } else {
      feed_down = false;
    }
    for (const auto& e : events) on_event_(e);
    auto now = std::chrono::steady_clock::now();
    if (now >= next_tick) {
      next_tick = now + kTickPeriod;
      on_tick_();
    }
  }
}

}  // namespace liner
