// The client's stats record, defined once: every face follows this list.
//   C++      ClientStats (below)
//   C        lnr_stats_t in include/liner.h (spelled out for its readers; liner_capi.cpp
//            checks at compile time that it has these fields, in this order)
//   Node     the addon's stats() object (client_wrap.cpp, from this list)
//   TS       NativeStats (src/native.ts), ClientStats (src/stats.ts)
//   Python   the ctypes mirror of lnr_stats_t and Client.stats() (python/liner/)
// test/python/test_stats_record.py checks the faces this header cannot reach.
//
// X(c_name, js_name, meaning): counters since the client was created, except the three
// queue depths, which say how much waits now.
#pragma once
#include <cstdint>

#define LINER_CLIENT_STATS(X)                                                                   \
  X(messages_sent, messagesSent, "frames written to peers")                                     \
  X(bytes_sent, bytesSent, "bytes of those frames")                                             \
  X(messages_delivered, messagesDelivered, "messages passed to the receive callback")           \
  X(bytes_delivered, bytesDelivered, "their payload bytes")                                     \
  X(duplicates, duplicates, "messages received again and dropped")                              \
  X(persisted, persisted, "frames stored in offline queues")                                    \
  X(reloaded, reloaded, "frames read back from offline queues")                                 \
  X(dropped, dropped, "best-effort messages dropped because their peer was unreachable")        \
  X(reconnects, reconnects, "connections to peers that broke")                                  \
  X(send_queue_messages, sendQueueMessages, "now: messages queued or awaiting acknowledgement") \
  X(send_queue_bytes, sendQueueBytes, "now: their bytes")                                       \
  X(receive_queue_bytes, receiveQueueBytes, "now: bytes read and not yet delivered")

namespace liner {

struct ClientStats {
#define LINER_STATS_FIELD(c_name, js_name, meaning) uint64_t c_name = 0;
  LINER_CLIENT_STATS(LINER_STATS_FIELD)
#undef LINER_STATS_FIELD
};

}  // namespace liner
