// Shared by the C++ baselines (raw_tcp.cpp, zmq_pushpull.cpp): everything bench/PROTOCOL.md fixes
// that does not depend on the transport. A program supplies only "send one payload", "receive
// one payload" and "echo"; the protocol flows (warm-up, go/stop, timing, checks) live here so
// that both baselines measure exactly the same thing.
#pragma once

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace bench {

// ---- options ------------------------------------------------------------------------------

enum class Role { pair_recv, pair_send, ping_server, ping_client };

struct Options {
  Role role = Role::pair_recv;
  uint64_t size = 0;
  uint64_t count = 0;
  uint64_t warmup = 0;
  int port = 0;
};

// Bad command lines exit 2 (not 1) so the runner can tell "wrong invocation" from "failed run".
[[noreturn]] inline void usage_error(const char *argv0, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", argv0);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr,
          "\nusage: %s --role pair-recv|pair-send|ping-server|ping-client --size BYTES"
          " --count N --warmup W --port P\n",
          argv0);
  va_end(ap);
  exit(2);
}

inline bool parse_u64(const char *s, uint64_t *out) {
  if (*s < '0' || *s > '9') return false;  // strtoull would accept "-1" and " 1"
  char *end;
  errno = 0;
  *out = strtoull(s, &end, 10);
  return errno == 0 && *end == '\0';
}

// Every option takes a value. --redis, --prefix and --alo belong to the liner programs; they are
// accepted and ignored so the runner can pass one command line to every implementation.
inline Options parse_options(int argc, char **argv) {
  Options o;
  bool have_role = false, have_size = false, have_count = false, have_warmup = false;
  for (int i = 1; i < argc; i += 2) {
    const char *name = argv[i];
    if (i + 1 >= argc) usage_error(argv[0], "option %s needs a value", name);
    const char *val = argv[i + 1];
    uint64_t n = 0;
    if (!strcmp(name, "--role")) {
      if (!strcmp(val, "pair-recv")) o.role = Role::pair_recv;
      else if (!strcmp(val, "pair-send")) o.role = Role::pair_send;
      else if (!strcmp(val, "ping-server")) o.role = Role::ping_server;
      else if (!strcmp(val, "ping-client")) o.role = Role::ping_client;
      else usage_error(argv[0], "unknown role '%s'", val);
      have_role = true;
    } else if (!strcmp(name, "--redis") || !strcmp(name, "--prefix") || !strcmp(name, "--alo")) {
      continue;
    } else if (!parse_u64(val, &n)) {
      usage_error(argv[0], "option %s: '%s' is not a non-negative integer", name, val);
    } else if (!strcmp(name, "--size")) {
      // The upper bound keeps a frame's u32 length and the receive buffers sane.
      if (n < 8 || n > (1u << 30)) usage_error(argv[0], "--size must be in 8..2^30");
      o.size = n, have_size = true;
    } else if (!strcmp(name, "--count")) {
      o.count = n, have_count = true;
    } else if (!strcmp(name, "--warmup")) {
      o.warmup = n, have_warmup = true;
    } else if (!strcmp(name, "--port")) {
      if (n < 1 || n > 65535) usage_error(argv[0], "--port must be in 1..65535");
      o.port = (int)n;
    } else {
      usage_error(argv[0], "unknown option '%s'", name);
    }
  }
  if (!have_role || !have_size || !have_count || !have_warmup)
    usage_error(argv[0], "--role, --size, --count and --warmup are required");
  if (o.port == 0) usage_error(argv[0], "--port is required");
  return o;
}

// ---- output -------------------------------------------------------------------------------

// One JSON object per line on stdout, flushed at once: the runner reacts to each line as it
// arrives (it writes `go` after `warm`), so nothing may sit in the stdio buffer.
inline void emit(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  fputc('\n', stdout);
  fflush(stdout);
}

// Any failure: an error event (message JSON-escaped, it may quote system text) and exit 1.
// _exit, not exit: a stop watcher thread may be blocked inside stdin, and exit() flushing stdio
// could wait on that stream's lock; stdout is already flushed and stderr is unbuffered.
[[noreturn]] inline void fail(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  std::string esc;
  for (const char *p = msg; *p; p++) {
    if (*p == '"' || *p == '\\') esc += '\\';
    if ((unsigned char)*p >= 0x20) esc += *p;
  }
  emit("{\"event\":\"error\",\"message\":\"%s\"}", esc.c_str());
  _exit(1);
}

// ---- clocks -------------------------------------------------------------------------------

// CLOCK_MONOTONIC is one clock for every process on the machine, so t0 taken by the sender and
// t1 taken by the receiver can be subtracted.
inline uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// User + system CPU of the whole process (all threads: libzmq's I/O thread counts too).
inline double cpu_seconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// ---- payload ------------------------------------------------------------------------------

// Bytes 0..7: the sequence number, little-endian (byte by byte, so host order does not matter).
inline void put_seq(char *p, uint64_t seq) {
  for (int i = 0; i < 8; i++) p[i] = (char)(seq >> (8 * i));
}

inline uint64_t get_seq(const char *p) {
  uint64_t seq = 0;
  for (int i = 0; i < 8; i++) seq |= (uint64_t)(unsigned char)p[i] << (8 * i);
  return seq;
}

// Every message is exactly --size bytes; anything else means the stream is corrupt.
inline void check_size(const Options &o, uint64_t len) {
  if (len != o.size)
    fail("message of %llu bytes, expected %llu", (unsigned long long)len,
         (unsigned long long)o.size);
}

// A payload of `size` bytes: 'x' filler; senders overwrite the first 8 bytes per message.
inline std::vector<char> make_payload(uint64_t size) { return std::vector<char>(size, 'x'); }

// ---- stdin --------------------------------------------------------------------------------

// Blocking read of one line without the newline; false on EOF. Only used between phases.
inline bool read_line(std::string *line) {
  line->clear();
  int c;
  while ((c = getchar()) != EOF && c != '\n') *line += (char)c;
  while (!line->empty() && (line->back() == '\r' || line->back() == ' ')) line->pop_back();
  return c != EOF || !line->empty();
}

// Blocks until the runner writes `word`; EOF (the runner is gone) is an error.
inline void wait_for(const char *word) {
  std::string line;
  if (!read_line(&line)) fail("stdin closed while waiting for '%s'", word);
  if (line != word) fail("expected '%s' on stdin, got '%s'", word, line.c_str());
}

// Servers sit in a blocking socket call, so `stop` (or EOF) is watched on a thread of its own,
// which calls on_stop to wake the server up. Join the thread before exiting.
inline std::thread watch_for_stop(std::function<void()> on_stop) {
  return std::thread([on_stop] {
    std::string line;
    while (read_line(&line) && line != "stop") {
    }
    on_stop();
  });
}

// Writes to a peer that went away must fail with EPIPE (reported), not kill the process.
inline void ignore_sigpipe() { signal(SIGPIPE, SIG_IGN); }

// ---- percentiles --------------------------------------------------------------------------

// Percentile num/den of sorted samples: sorted[ceil(q*N) - 1], in integers so that 0.999 * 5000
// is not rounded up by floating point.
inline uint64_t percentile(const std::vector<uint64_t> &sorted, uint64_t num, uint64_t den) {
  if (sorted.empty()) return 0;
  uint64_t rank = (num * sorted.size() + den - 1) / den;
  return sorted[rank ? rank - 1 : 0];
}

// ---- protocol flows -----------------------------------------------------------------------

// Receiver-side bookkeeping of pair-recv: checks each message's length and sequence number,
// prints `warm` after seq W-1 and `done` after seq W+N-1. A gap is fatal (these transports are
// ordered and lossless); a seq seen before counts as a duplicate.
struct PairRecv {
  const Options &o;
  uint64_t next = 0;  // lowest seq not seen yet
  uint64_t received = 0, dups = 0;
  double cpu0 = 0;

  explicit PairRecv(const Options &opt) : o(opt) {}

  bool finished() const { return next == o.warmup + o.count; }

  // After `ready`: with W = 0 or N = 0 there is no message to wait for.
  void start() {
    if (o.warmup == 0) warm();
    if (finished()) done();
  }

  // Returns true once the last message was handled (done printed).
  bool on_message(const char *p, uint64_t len) {
    check_size(o, len);
    uint64_t seq = get_seq(p);
    if (seq < next) {
      dups++;
      return false;
    }
    if (seq > next)
      fail("sequence gap: got %llu, expected %llu", (unsigned long long)seq,
           (unsigned long long)next);
    next++;
    if (seq >= o.warmup) received++;
    if (next == o.warmup) warm();
    if (finished()) {
      done();
      return true;
    }
    return false;
  }

  void warm() {
    cpu0 = cpu_seconds();
    emit("{\"event\":\"warm\"}");
  }

  void done() {
    uint64_t t1 = now_ns();
    double cpu = cpu_seconds() - cpu0;
    emit("{\"event\":\"done\",\"t1_ns\":%llu,\"received\":%llu,\"dups\":%llu,\"gaps\":0,"
         "\"cpu_s\":%.6f}",
         (unsigned long long)t1, (unsigned long long)received, (unsigned long long)dups, cpu);
  }
};

// pair-send after connecting: warm-up, `go`, the measured burst, `sent`, `stop`, `end`.
// send(payload) hands one message to the transport; flush() pushes out whatever it buffered
// (called at the end of each burst, so the warm-up really reaches the receiver before `go`).
// Templates rather than std::function: the per-message call must cost nothing measurable.
template <class Send, class Flush>
void run_pair_send(const Options &o, Send send, Flush flush) {
  std::vector<char> msg = make_payload(o.size);
  uint64_t seq = 0;
  for (; seq < o.warmup; seq++) {
    put_seq(msg.data(), seq);
    send(msg.data());
  }
  flush();
  wait_for("go");
  double cpu0 = cpu_seconds();
  uint64_t t0 = now_ns();
  for (; seq < o.warmup + o.count; seq++) {
    put_seq(msg.data(), seq);
    send(msg.data());
  }
  flush();
  // busy: both baselines send with blocking calls, which never answer "queue full".
  emit("{\"event\":\"sent\",\"t0_ns\":%llu,\"busy\":0}", (unsigned long long)t0);
  std::string line;
  if (read_line(&line) && line != "stop") fail("expected 'stop' on stdin, got '%s'", line.c_str());
  emit("{\"event\":\"end\",\"cpu_s\":%.6f}", cpu_seconds() - cpu0);
}

// ping-client after connecting: W warm-up and N measured round trips, one in flight.
// roundtrip(payload) sends it and returns the echoed payload (its length checked with
// check_size); the seq is checked here.
template <class Roundtrip>
void run_ping_client(const Options &o, Roundtrip roundtrip) {
  std::vector<char> msg = make_payload(o.size);
  std::vector<uint64_t> lat;
  lat.reserve(o.count);
  for (uint64_t seq = 0; seq < o.warmup + o.count; seq++) {
    put_seq(msg.data(), seq);
    uint64_t t = now_ns();
    const char *echo = roundtrip(msg.data());
    uint64_t dt = now_ns() - t;
    if (get_seq(echo) != seq)
      fail("echo carries seq %llu, expected %llu", (unsigned long long)get_seq(echo),
           (unsigned long long)seq);
    if (seq >= o.warmup) lat.push_back(dt);
  }
  std::sort(lat.begin(), lat.end());
  uint64_t sum = 0;
  for (uint64_t v : lat) sum += v;
  emit("{\"event\":\"done\",\"n\":%llu,\"p50_ns\":%llu,\"p99_ns\":%llu,\"p999_ns\":%llu,"
       "\"mean_ns\":%.1f,\"max_ns\":%llu}",
       (unsigned long long)lat.size(), (unsigned long long)percentile(lat, 50, 100),
       (unsigned long long)percentile(lat, 99, 100), (unsigned long long)percentile(lat, 999, 1000),
       lat.empty() ? 0.0 : (double)sum / (double)lat.size(),
       (unsigned long long)(lat.empty() ? 0 : lat.back()));
}

}  // namespace bench
