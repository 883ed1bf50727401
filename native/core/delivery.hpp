// The receiving half after the socket: a bounded queue of decoded frames and the client's one
// delivery thread, which deduplicates by (connection key, number_mess), resolves names,
// decompresses, calls the user callback and writes acknowledgements to the store.
//
// Acks ("lnr_connection:{ck}:mess_number") are written after the callback returned: about once
// a second, sooner when many messages are waiting to be acknowledged (so at-least-once senders
// can free memory), and at once when a connection closes (so a restarting sender starts its
// numbering after what was really delivered).
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/buffer_pool.hpp"
#include "core/counter.hpp"
#include "core/frame.hpp"
#include "core/status_event.hpp"
#include "core/store.hpp"

namespace liner {

struct Inbound {
  uint64_t conn_id = 0;  // 0 with closed=true: a connection-closed marker
  bool closed = false;
  FrameHeader header;
  // The payload as on the wire (compressed if the flag says so), in one of the batch's blocks
  // or copies. Kept small (48 bytes): a full receive queue holds hundreds of thousands.
  const char* payload = nullptr;

  const char* data() const { return payload; }
  size_t size() const { return header.data_len; }
};

// What the listener hands over at once: decoded frames and the memory their payloads live in.
struct InboundBatch {
  std::vector<Inbound> items;
  std::vector<BlockPool::Block> blocks;       // socket reads, back to the listener's pool
  std::vector<std::unique_ptr<char[]>> copies;  // payloads of short reads, copied out
  // Frames that straddled reads, in the buffer the decoder assembled them in (behind a
  // pointer: payloads point into them, and the batch moves).
  std::vector<std::unique_ptr<std::string>> frames;
  size_t bytes = 0;  // memory held (blocks, copies, items), against Delivery's budget

  bool empty() const { return items.empty(); }
  // Drops everything (blocks a caller wants back must be moved out first).
  void clear() {
    items.clear();
    blocks.clear();
    copies.clear();
    frames.clear();
    bytes = 0;
  }
};

using ReceiveFn = std::function<void(const std::string& to, const std::string& from,
                                     const char* data, size_t size)>;

struct DeliveryStats {
  uint64_t delivered = 0;
  uint64_t bytes_delivered = 0;
  uint64_t duplicates = 0;
  uint64_t unknown_topic = 0;
  uint64_t undecodable = 0;
  uint64_t queued_bytes = 0;  // now: read from sockets, not yet delivered
};

class Delivery {
 public:
  // `status` (may be null) outlives the delivery.
  Delivery(std::unique_ptr<Store> store, ReceiveFn receive, size_t max_queued_bytes,
           size_t max_message_size, const StatusSink* status);
  ~Delivery();

  Status start();
  // Delivers everything queued, writes the final acks, joins the thread.
  void stop();

  // Hands a batch over (and leaves `batch` empty). Blocks while the queue is over its byte
  // budget (the listener then stops reading, and TCP pushes back on senders); returns false
  // once stopping. Blocks whose messages were all delivered are moved into *refill (when given)
  // for the listener to read into next.
  bool push(InboundBatch& batch, BlockPool* refill = nullptr);

  void set_topic(int32_t topic_key, const std::string& name);
  void remove_topic(int32_t topic_key);
  bool on_delivery_thread() const;
  DeliveryStats stats() const;

 private:
  struct ChannelIn {
    std::string from;
    bool from_known = false;
    uint64_t delivered = 0;  // highest number handed to the callback
    uint64_t saved = 0;      // highest number written to the store
    uint64_t conn_id = 0;    // connection that last carried this channel
    uint64_t unsaved = 0;    // delivered since the last write
  };

  void loop();
  void deliver(const Inbound& in, const std::string& to, ChannelIn& ch);
  ChannelIn& channel(int32_t ck, uint64_t conn_id);
  void sync_channel(ChannelIn& ch, int32_t ck, uint64_t conn_id);
  void flush_acks(bool force);
  // Enough delivered without an ack that the flush should not wait for its period.
  bool early_flush_wanted() const;
  // How long the thread may sleep before an ack flush falls due.
  std::chrono::microseconds until_ack_due() const;
  void connection_closed(uint64_t conn_id);

  std::unique_ptr<Store> store_;
  ReceiveFn receive_;
  size_t max_queued_bytes_;
  size_t max_message_size_;
  const StatusSink* status_;

  mutable std::mutex mu_;
  std::condition_variable has_work_;
  std::condition_variable has_room_;
  InboundBatch queue_;
  size_t delivering_bytes_ = 0;  // of the batch the delivery thread has in hand
  BlockPool spare_;  // blocks of delivered batches, for push() to hand back
  bool stopping_ = false;
  std::map<int32_t, std::string> topics_;  // topic key -> name this client answers to

  // Delivery thread only.
  std::map<int32_t, ChannelIn> channels_;
  ChannelIn* last_channel_ = nullptr;  // most frames come in runs from one channel
  int32_t last_ck_ = 0;
  std::chrono::steady_clock::time_point last_flush_;
  std::chrono::steady_clock::duration early_gap_{};  // kAckFlushMinGap, or kAckRetryGap
  uint64_t unsaved_total_ = 0;
  uint64_t unsaved_bytes_ = 0;  // payload bytes of those
  std::thread thread_;
  std::thread::id thread_id_;
  // Written by the delivery thread only, read by stats(): no lock per message.
  RelaxedCounter delivered_, bytes_delivered_, duplicates_, unknown_topic_, undecodable_;
};

}  // namespace liner
