// Keeps a running client's view of the directory current without refresh_address_topic():
// listens to the change feed that liner peers publish, and every second re-reads the topics
// this client sends to (liner_broker 1.3.1 peers publish nothing, so polling covers them).
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "core/store.hpp"

namespace liner {

class DirectoryWatch {
 public:
  using OnEvent = std::function<void(const DirectoryEvent&)>;
  using OnTick = std::function<void()>;

  DirectoryWatch(std::unique_ptr<Store> feed, OnEvent on_event, OnTick on_tick);
  ~DirectoryWatch();
  Status start();
  void stop();  // returns within about one poll period (250 ms)

 private:
  void loop();

  std::unique_ptr<Store> feed_;
  OnEvent on_event_;
  OnTick on_tick_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace liner
