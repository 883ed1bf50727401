// libzmq baseline (C API) over TCP loopback.
//   throughput: PUSH (pair-send, connects) -> PULL (pair-recv, binds), blocking zmq_send/zmq_recv.
//   latency:    REQ (ping-client, connects) -> REP (ping-server, binds). REQ/REP is what libzmq's
//               own perf/local_lat + remote_lat use, and its lock-step matches "one message in
//               flight"; the server echoes the received zmq_msg_t itself, without a copy.
// High-water marks stay at their defaults (1000 messages each way): this measures libzmq as a
// user gets it. Roles and output: bench/PROTOCOL.md.
#include <zmq.h>

#include "bench_common.hpp"

using namespace bench;

namespace {

const char *zmq_error() {
  int err = zmq_errno();
  return err == EAGAIN ? "no progress for 60 s" : zmq_strerror(err);
}

// Every socket: blocking calls give up after 60 s (EAGAIN) so a stalled peer becomes an error
// event instead of a hang; linger 1 s so closing never waits forever on a peer that is gone (in
// a successful run everything was delivered before the socket closes, so it changes nothing).
void *open_socket(void *ctx, int type, int port, bool bind) {
  void *s = zmq_socket(ctx, type);
  if (!s) fail("zmq_socket: %s", zmq_error());
  int timeout_ms = 60000, linger_ms = 1000;
  zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
  zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms);
  zmq_setsockopt(s, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
  std::string ep = "tcp://127.0.0.1:" + std::to_string(port);
  if ((bind ? zmq_bind(s, ep.c_str()) : zmq_connect(s, ep.c_str())) != 0)
    fail("%s %s: %s", bind ? "zmq_bind" : "zmq_connect", ep.c_str(), zmq_error());
  return s;
}

// Blocking send of one message. zmq_connect is asynchronous: until the peer is there, the first
// send just waits (no connect retry loop needed).
void send_msg(void *s, const char *p, size_t len) {
  while (zmq_send(s, p, len, 0) < 0)
    if (zmq_errno() != EINTR) fail("zmq_send: %s", zmq_error());
}

// Blocking receive into buf (size bytes); returns the message's real length (which may be larger
// than size if the message was truncated: check_size catches that).
uint64_t recv_msg(void *s, char *buf, size_t size) {
  int n;
  while ((n = zmq_recv(s, buf, size, 0)) < 0)
    if (zmq_errno() != EINTR) fail("zmq_recv: %s", zmq_error());
  return (uint64_t)n;
}

void close_all(void *s, void *ctx) {
  zmq_close(s);
  zmq_ctx_term(ctx);
}

int pair_recv(const Options &o) {
  void *ctx = zmq_ctx_new();
  void *s = open_socket(ctx, ZMQ_PULL, o.port, true);
  emit("{\"event\":\"ready\"}");
  PairRecv check(o);
  check.start();
  std::vector<char> buf(o.size);
  while (!check.finished()) check.on_message(buf.data(), recv_msg(s, buf.data(), o.size));
  close_all(s, ctx);
  return 0;
}

int pair_send(const Options &o) {
  void *ctx = zmq_ctx_new();
  void *s = open_socket(ctx, ZMQ_PUSH, o.port, false);
  // flush: nothing to do, libzmq's I/O thread writes out what zmq_send queued.
  run_pair_send(o, [&](const char *p) { send_msg(s, p, o.size); }, [] {});
  close_all(s, ctx);
  return 0;
}

// Echoes until `stop`/EOF: the watcher's zmq_ctx_shutdown makes the blocked zmq_msg_recv return
// ETERM, the one way libzmq offers to wake a blocking call from another thread.
int ping_server(const Options &o) {
  void *ctx = zmq_ctx_new();
  void *s = open_socket(ctx, ZMQ_REP, o.port, true);
  int no_timeout = -1;  // a server waits for its client as long as the runner lets it live
  zmq_setsockopt(s, ZMQ_RCVTIMEO, &no_timeout, sizeof no_timeout);
  emit("{\"event\":\"ready\"}");
  std::thread watcher = watch_for_stop([ctx] { zmq_ctx_shutdown(ctx); });
  zmq_msg_t m;
  zmq_msg_init(&m);
  // A successful zmq_msg_send leaves m empty again, ready for the next receive. No signal
  // handler is installed, so EINTR cannot end the loop; only ETERM (stop) ends it cleanly.
  while (zmq_msg_recv(&m, s, 0) >= 0 && zmq_msg_send(&m, s, 0) >= 0) {
  }
  if (zmq_errno() != ETERM) fail("echo: %s", zmq_error());
  zmq_msg_close(&m);
  watcher.join();
  close_all(s, ctx);
  return 0;
}

int ping_client(const Options &o) {
  void *ctx = zmq_ctx_new();
  void *s = open_socket(ctx, ZMQ_REQ, o.port, false);
  std::vector<char> buf(o.size);
  run_ping_client(o, [&](const char *p) {
    send_msg(s, p, o.size);
    check_size(o, recv_msg(s, buf.data(), o.size));
    return (const char *)buf.data();
  });
  close_all(s, ctx);
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  Options o = parse_options(argc, argv);
  ignore_sigpipe();
  switch (o.role) {
    case Role::pair_recv: return pair_recv(o);
    case Role::pair_send: return pair_send(o);
    case Role::ping_server: return ping_server(o);
    case Role::ping_client: return ping_client(o);
  }
  return 2;
}
