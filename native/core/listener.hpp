// The incoming side of a client: accepts TCP connections from senders and parses their frame
// streams on one epoll thread, which is also the client's delivery thread: what a wake-up read
// is delivered (Delivery) before the next one. It never writes to a socket (liner_broker's
// protocol is one-way). Invalid frames, and frames that stall mid-way for longer than the
// stall timeout, close that connection only.
#pragma once
#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "core/delivery.hpp"
#include "core/frame.hpp"
#include "core/net.hpp"

namespace liner {

class Listener {
 public:
  Listener(Delivery* delivery, uint32_t max_body_size,
           std::chrono::milliseconds stall_timeout = std::chrono::milliseconds(10000));
  ~Listener();

  // Binds before anything is registered, so a failed bind leaves no trace in the store.
  Status bind(const std::string& localhost, std::string* bound);
  Status start();
  // Stops accepting and reading, and delivers what was read. Connections stay open until
  // close_connections(), so that senders see the close only after Delivery wrote the final acks.
  void stop();
  void close_connections();

  uint64_t rejected_connections() const { return rejected_.load(); }

 private:
  struct Connection {
    int fd = -1;
    uint64_t id = 0;
    FrameDecoder decoder;
    std::chrono::steady_clock::time_point last_progress;
    explicit Connection(uint32_t max_body) : decoder(max_body) {}
  };

  void loop();
  void accept_all();
  void read_from(Connection* c, InboundBatch& batch);
  void drop(Connection* c, InboundBatch& batch, const std::string& why);
  int wait_for_events(epoll_event* events, int max, std::chrono::microseconds timeout);
  // Delivers the batch and takes its blocks back for the next reads.
  void deliver(InboundBatch& batch);

  Delivery* delivery_;
  uint32_t max_body_;
  std::chrono::milliseconds stall_timeout_;
  int listen_fd_ = -1;
  int epfd_ = -1;
  bool have_pwait2_ = true;  // until the kernel says ENOSYS
  Waker waker_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Connection>> conns_;
  std::atomic<uint64_t> rejected_{0};
  BlockPool pool_;           // listener thread: blocks whose messages were delivered
  BlockPool::Block block_;   // the block the next read goes into
};

}  // namespace liner
