/*
 * liner_bench.c - liner's C API as the benchmark runner (bench/run.py) measures it.
 *
 * One process plays one role of bench/PROTOCOL.md: pair-recv / pair-send (throughput, also the
 * fan-out and slow-listener variants), ping-server / ping-client (latency) and drain-send /
 * drain-recv (offline queue). Stdout carries only the protocol's JSON lines, each flushed at once;
 * diagnostics go to stderr. Every timestamp is CLOCK_MONOTONIC, every CPU figure comes from
 * getrusage(RUSAGE_SELF), so the runner can subtract times taken in different processes.
 *
 * Threads and waiting. liner calls the receive callback on the client's delivery thread and the
 * status callback on its background threads. The callbacks never print: they record what
 * happened in `S` (one mutex, one condition variable on CLOCK_MONOTONIC) and the main thread,
 * which alone writes stdout, sleeps on the condition variable. Lines from the runner (go, stop)
 * are read by a small thread that posts them the same way. Nothing spins: the only periodic
 * wake-ups are the receivers' 1 s watchdog tick (no progress for 60 s is an error), the 1 s
 * safety net while a sender waits for room, and drain-send's 10 ms poll of lnr_pending_count(),
 * which the protocol asks for.
 *
 * Build: see CMakeLists.txt next to this file, or by hand
 *   gcc -O2 -std=c11 -Iinclude bench/liner/liner_bench.c -Lbuild -lliner_broker \
 *       -Wl,-rpath,$PWD/build -pthread -o bench_liner
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep, pthread_condattr_setclock */
#endif

#include <liner.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_args.h"

#define NS_PER_S UINT64_C(1000000000)
#define NS_PER_MS UINT64_C(1000000)
/* Protocol: a receiver (and, by the same token, any waiting role) that sees no progress for
 * 60 s gives up with an error event. */
#define NO_PROGRESS_NS (60 * NS_PER_S)
/* After LNR_ERR_BUSY the sender sleeps until liner reports LNR_SENDER_WRITABLE. This timeout is
 * only a safety net against a missed event; how often it fires is reported on stderr. It must be
 * longer than liner's hysteresis: WRITABLE comes once the queue is down to half its cap (32 MiB),
 * which for 100-byte messages and a 450k msg/s reader (--slow 1) takes ~0.4 s. A shorter net
 * (10 or 100 ms were tried) fires first, the retry tops the queue up again, WRITABLE never comes,
 * and the sender ends up polling every net period instead of waiting for the event. */
#define ROOM_WAIT_NS NS_PER_S
/* Warm-up only: how long to wait before retrying a send that found nobody serving the topic. */
#define NO_ADDR_RETRY_NS (10 * NS_PER_MS)
/* drain-send: period of the lnr_pending_count() poll (the protocol's 10 ms). */
#define PENDING_POLL_NS (10 * NS_PER_MS)
/* --slow 1: pause this long after every SLOW_EVERY messages handled in the callback. */
#define SLOW_EVERY 1000
#define SLOW_PAUSE_NS (2 * NS_PER_MS)
/* Every client listens on loopback; port 0 lets liner pick a free port (liner.h). */
#define LISTEN_ADDR "127.0.0.1:0"

static bench_opts O;

/* ---- time, CPU, memory ------------------------------------------------------------------- */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / NS_PER_S), (long)(ns % NS_PER_S)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* User + system CPU seconds of the whole process (every liner thread included). */
static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         (double)ru.ru_stime.tv_usec / 1e6;
}

/* Peak resident set size; Linux reports ru_maxrss in KiB. */
static long max_rss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* ---- output ------------------------------------------------------------------------------ */

/* One JSON object per line, flushed at once: the runner reacts to each line as it comes. */
static void emit(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  fputc('\n', stdout);
  fflush(stdout);
}

/* {"event":"error","message":"..."} with the message escaped for JSON. */
static void emit_error(const char* message) {
  char out[2048];
  size_t n = 0;
  for (const unsigned char* p = (const unsigned char*)message; *p && n + 8 < sizeof out; ++p) {
    if (*p == '"' || *p == '\\') {
      out[n++] = '\\';
      out[n++] = (char)*p;
    } else if (*p < 0x20) {
      n += (size_t)snprintf(out + n, sizeof out - n, "\\u%04x", *p);
    } else {
      out[n++] = (char)*p;
    }
  }
  out[n] = '\0';
  emit("{\"event\":\"error\",\"message\":\"%s\"}", out);
  fprintf(stderr, "bench_liner: error: %s\n", message);
}

/* The error code and message of the last call on `c`, for error events. */
static const char* client_error(lnr_hClient c, const char* call) {
  static _Thread_local char buf[600];
  const char* m = lnr_last_error_message(c);
  snprintf(buf, sizeof buf, "%s: code %d: %s", call, lnr_last_error_code(c), m && *m ? m : "(no message)");
  return buf;
}

/* ---- state shared between liner's threads and main ------------------------------------------ */

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* on CLOCK_MONOTONIC; every change below is broadcast */
  /* stdin */
  int go, stop, eof;
  /* first error seen by a callback */
  int failed;
  char error[600];
  /* receivers: set by the receive callback */
  int warm, done;
  double warm_cpu, done_cpu;
  uint64_t t1_ns, received, dups, gaps;
  /* ping-client: the round trip in flight */
  uint64_t echo_want, echo_ns;
  int echo_got;
} S;

/* Bumped (under S.mu) for every LNR_SENDER_WRITABLE; a sender that got BUSY waits for a change.
 * Atomic so that the sender can read it before each send without taking the mutex. */
static _Atomic uint64_t writable_gen;
/* Messages handled by the receive callback: the receivers' watchdog compares it over time. */
static _Atomic uint64_t progress;
/* Set when main starts closing: a callback still retrying an echo gives up, so that
 * lnr_delete_client (which waits for the callback) is not held up. */
static atomic_int quitting;
/* Diagnostics for stderr. */
static _Atomic uint64_t n_busy_events, n_writable_events, n_room_timeouts, n_route_lost;

static void shared_init(void) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&S.cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&S.mu, NULL);
}

/* With S.mu held: sleeps until broadcast or the absolute monotonic deadline. */
static void cv_wait_until(uint64_t deadline_ns) {
  struct timespec ts = {(time_t)(deadline_ns / NS_PER_S), (long)(deadline_ns % NS_PER_S)};
  pthread_cond_timedwait(&S.cv, &S.mu, &ts);
}

/* Records the first error from any thread and wakes main, which reports it. */
static void fail_async(const char* fmt, ...) {
  pthread_mutex_lock(&S.mu);
  if (!S.failed) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(S.error, sizeof S.error, fmt, ap);
    va_end(ap);
    S.failed = 1;
  }
  pthread_cond_broadcast(&S.cv);
  pthread_mutex_unlock(&S.mu);
}

/* Reads the runner's lines (go, stop) and posts them; EOF is posted too. */
static void* stdin_reader(void* arg) {
  (void)arg;
  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = '\0';
    pthread_mutex_lock(&S.mu);
    if (strcmp(line, "go") == 0) S.go = 1;
    else if (strcmp(line, "stop") == 0) S.stop = 1;
    else if (n > 0) fprintf(stderr, "bench_liner: ignoring stdin line '%s'\n", line);
    pthread_cond_broadcast(&S.cv);
    pthread_mutex_unlock(&S.mu);
  }
  pthread_mutex_lock(&S.mu);
  S.eof = 1;
  pthread_cond_broadcast(&S.cv);
  pthread_mutex_unlock(&S.mu);
  return NULL;
}

static void start_stdin_reader(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, stdin_reader, NULL) != 0) {
    emit_error("cannot start the stdin thread");
    exit(1);
  }
  pthread_detach(t);
}

/*
 * Waits for `go` (want_go) or `stop`. EOF counts as `stop` (the runner went away: end cleanly)
 * but not as `go`. Returns 1 when the line came, 0 on an async error or a premature EOF/stop,
 * with the reason in why.
 */
static int wait_for_line(int want_go, char* why, size_t whylen) {
  int ok = 0;
  pthread_mutex_lock(&S.mu);
  for (;;) {
    if (S.failed) {
      snprintf(why, whylen, "%s", S.error);
      break;
    }
    if (want_go ? S.go : (S.stop || S.eof)) {
      ok = 1;
      break;
    }
    if (want_go && (S.stop || S.eof)) {
      snprintf(why, whylen, "stdin gave %s before go", S.stop ? "stop" : "EOF");
      break;
    }
    pthread_cond_wait(&S.cv, &S.mu);
  }
  pthread_mutex_unlock(&S.mu);
  return ok;
}

/* ---- payload ----------------------------------------------------------------------------- */

/* Bytes 0..7: little-endian u64 sequence number, written byte by byte (host order agnostic). */
static void put_seq(char* p, uint64_t seq) {
  for (int i = 0; i < 8; ++i) p[i] = (char)(unsigned char)(seq >> (8 * i));
}

static uint64_t get_seq(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | (unsigned char)p[i];
  return v;
}

static char* new_payload(void) {
  char* buf = malloc(O.size);
  if (!buf) {
    emit_error("out of memory for the payload");
    exit(1);
  }
  memset(buf, 'x', O.size);
  return buf;
}

/* ---- clients ----------------------------------------------------------------------------- */

static void on_status(int kind, const char* topic, const char* peer, const char* message, lnr_uData udata) {
  (void)udata;
  switch (kind) {
    case LNR_SENDER_WRITABLE:
      atomic_fetch_add(&n_writable_events, 1);
      /* Bump under the mutex, so a sender between its check and its wait cannot miss it. */
      pthread_mutex_lock(&S.mu);
      atomic_fetch_add(&writable_gen, 1);
      pthread_cond_broadcast(&S.cv);
      pthread_mutex_unlock(&S.mu);
      break;
    case LNR_SENDER_BUSY:
      atomic_fetch_add(&n_busy_events, 1);
      break;
    case LNR_SENDER_ROUTE_LOST:
      /* Expected in drain-send (the listener is away); liner retries and keeps the messages. */
      atomic_fetch_add(&n_route_lost, 1);
      break;
    case LNR_SENDER_STORE_ERROR:
    case LNR_SENDER_SEND_ERROR:
    case LNR_LISTENER_STORE_ERROR:
      /* liner retries these itself; a lasting problem shows up as gaps or no progress. */
      fprintf(stderr, "bench_liner: status %d topic=%s peer=%s: %s\n", kind, topic, peer, message);
      break;
    default:
      break;
  }
}

/* Receive callback of clients that only send. */
static void on_ignore(const char* to, const char* from, const char* data, size_t size, lnr_uData udata) {
  (void)to, (void)from, (void)data, (void)size, (void)udata;
}

static lnr_hClient make_client(const char* name, const char* topic) {
  lnr_hClient c = lnr_new_client_redis(name, topic, LISTEN_ADDR, O.redis);
  if (!c) {
    char why[700];
    snprintf(why, sizeof why, "lnr_new_client_redis(%s): code %d: %s", name, lnr_last_create_error_code(),
             lnr_last_create_error());
    emit_error(why);
    exit(1);
  }
  if (!lnr_set_status_cb(c, on_status, NULL)) {
    emit_error(client_error(c, "lnr_set_status_cb"));
    lnr_delete_client(c);
    exit(1);
  }
  return c;
}

static void run_client(lnr_hClient c, lnr_receive_cb cb) {
  if (!lnr_run(c, cb, NULL)) {
    emit_error(client_error(c, "lnr_run"));
    lnr_delete_client(c);
    exit(1);
  }
}

/* Ends the process: the client is always deleted first (stops it cleanly: directory entry
 * removed, queue flushed, acknowledgements written). Exit 0 only when nothing went wrong. */
static void finish(lnr_hClient c, const char* error) {
  atomic_store(&quitting, 1);
  if (error) emit_error(error);
  fprintf(stderr,
          "bench_liner: busy events %" PRIu64 ", writable events %" PRIu64 ", room waits timed out %" PRIu64
          ", routes lost %" PRIu64 "\n",
          atomic_load(&n_busy_events), atomic_load(&n_writable_events), atomic_load(&n_room_timeouts),
          atomic_load(&n_route_lost));
  if (c && !lnr_delete_client(c)) {
    fprintf(stderr, "bench_liner: lnr_delete_client failed\n");
    if (!error) {
      emit_error("lnr_delete_client failed");
      exit(1);
    }
  }
  exit(error ? 1 : 0);
}

/* Sleeps until liner says some send queue has room (generation moved past `gen`), or until the
 * safety-net timeout. */
static void wait_for_room(uint64_t gen) {
  uint64_t deadline = now_ns() + ROOM_WAIT_NS;
  pthread_mutex_lock(&S.mu);
  while (atomic_load(&writable_gen) == gen && !atomic_load(&quitting)) {
    if (now_ns() >= deadline) {
      atomic_fetch_add(&n_room_timeouts, 1);
      break;
    }
    cv_wait_until(deadline);
  }
  pthread_mutex_unlock(&S.mu);
}

/*
 * Sends one message with lnr_send_to (or lnr_send_all when `all`). "Queue full" (LNR_ERR_BUSY)
 * is retried after waiting for room and counted in *busy. With `retry_no_addr` (warm-up, and the
 * echo server), "nobody serves the topic" is retried every 10 ms for up to 60 s: the peer may
 * not be in the directory yet. Returns 1, or 0 with the reason in err.
 *
 * send_all and BUSY: liner queues the copies for the other peers even when one peer's queue is
 * full, and does not say which copies went out. Retrying the whole send_all is the only way the
 * full peer gets its copy, at the price of duplicates for the others (counted as `dups` by the
 * receivers; allowed with at-least-once).
 */
static int send_one(lnr_hClient c, const char* topic, const char* buf, int all, int alo, int retry_no_addr,
                    uint64_t* busy, char* err, size_t errlen) {
  uint64_t no_addr_since = 0;
  for (;;) {
    uint64_t gen = atomic_load(&writable_gen);
    BOOL ok = all ? lnr_send_all(c, topic, buf, O.size, alo ? TRUE : FALSE)
                  : lnr_send_to(c, topic, buf, O.size, alo ? TRUE : FALSE);
    if (ok) return 1;
    int code = lnr_last_error_code(c);
    if (atomic_load(&quitting)) {
      snprintf(err, errlen, "%s (while closing)", client_error(c, all ? "lnr_send_all" : "lnr_send_to"));
      return 0;
    }
    if (code == LNR_ERR_BUSY) {
      if (busy) ++*busy;
      wait_for_room(gen);
      continue;
    }
    if (code == LNR_ERR_NO_ADDR && retry_no_addr) {
      uint64_t t = now_ns();
      if (!no_addr_since) no_addr_since = t;
      if (t - no_addr_since < NO_PROGRESS_NS) {
        sleep_ns(NO_ADDR_RETRY_NS);
        continue;
      }
    }
    snprintf(err, errlen, "%s", client_error(c, all ? "lnr_send_all" : "lnr_send_to"));
    return 0;
  }
}

/*
 * --batch M: sends messages first .. first+n-1 with lnr_send_to_many, bufs[i] carrying first+i.
 * A call stopped by a full queue (LNR_ERR_BUSY, *queued short of n) waits for room and sends
 * the rest; each such stop counts in *busy. Returns 1, or 0 with the reason in err.
 */
static int send_many(lnr_hClient c, const char* topic, char** bufs, const size_t* sizes, uint64_t first, size_t n,
                     int alo, uint64_t* busy, char* err, size_t errlen) {
  for (size_t i = 0; i < n; ++i) put_seq(bufs[i], first + i);
  size_t done = 0;
  for (;;) {
    uint64_t gen = atomic_load(&writable_gen);
    size_t queued = 0;
    BOOL ok = lnr_send_to_many(c, topic, (const char* const*)bufs + done, sizes + done, n - done, alo ? TRUE : FALSE,
                               &queued);
    done += queued;
    if (ok) return 1;
    if (atomic_load(&quitting) || lnr_last_error_code(c) != LNR_ERR_BUSY) {
      snprintf(err, errlen, "%s", client_error(c, "lnr_send_to_many"));
      return 0;
    }
    ++*busy;
    wait_for_room(gen);
  }
}

/* Names: PREFIX.SUFFIX (and PREFIX.sink.K for replicas). */
static void name_of(char* out, size_t len, const char* suffix, int replica) {
  if (replica >= 0) snprintf(out, len, "%s.%s.%d", O.prefix, suffix, replica);
  else snprintf(out, len, "%s.%s", O.prefix, suffix);
}

/* ---- receivers: pair-recv, drain-recv ------------------------------------------------------- */

/* Delivery-thread state of a receiver (only the receive callback touches it). */
static struct {
  uint64_t first, last; /* sequence numbers expected: first..last */
  int warm_at_seq;      /* pair-recv: signal warm when seq W-1 first arrives */
  uint8_t* seen;        /* one bit per expected sequence number */
  uint64_t distinct, measured, dups, handled;
  int finished; /* done (or failed): later deliveries are only counted for --slow */
} R;

static void on_message(const char* to, const char* from, const char* data, size_t size, lnr_uData udata) {
  (void)to, (void)from, (void)udata;
  ++R.handled;
  atomic_store_explicit(&progress, R.handled, memory_order_relaxed);
  if (!R.finished) {
    if (size != O.size) {
      R.finished = 1;
      fail_async("message of %zu bytes, expected %zu", size, O.size);
    } else {
      uint64_t seq = get_seq(data);
      if (seq < R.first || seq > R.last) {
        R.finished = 1;
        fail_async("unexpected sequence number %" PRIu64 " (expected %" PRIu64 "..%" PRIu64 ")", seq, R.first,
                   R.last);
      } else {
        uint64_t t1 = seq == R.last ? now_ns() : 0; /* at once, before any bookkeeping */
        uint64_t i = seq - R.first;
        if (R.seen[i >> 3] & (1u << (i & 7))) {
          ++R.dups;
        } else {
          R.seen[i >> 3] |= (uint8_t)(1u << (i & 7));
          ++R.distinct;
          if (seq >= O.warmup) ++R.measured;
          if (R.warm_at_seq && seq == O.warmup - 1) {
            double cpu = cpu_s();
            pthread_mutex_lock(&S.mu);
            S.warm = 1;
            S.warm_cpu = cpu;
            pthread_cond_broadcast(&S.cv);
            pthread_mutex_unlock(&S.mu);
          }
          if (seq == R.last) {
            /* In-order delivery: the last number closes the run. Whatever was not seen by
             * now was skipped. */
            double cpu = cpu_s();
            R.finished = 1;
            pthread_mutex_lock(&S.mu);
            S.done = 1;
            S.t1_ns = t1;
            S.done_cpu = cpu;
            S.received = R.measured;
            S.dups = R.dups;
            S.gaps = (R.last - R.first + 1) - R.distinct;
            pthread_cond_broadcast(&S.cv);
            pthread_mutex_unlock(&S.mu);
          }
        }
      }
    }
  }
  if (O.slow && R.handled % SLOW_EVERY == 0) sleep_ns(SLOW_PAUSE_NS);
}

static int run_receiver(void) {
  int drain = O.role == ROLE_DRAIN_RECV;
  char name[512], topic[512];
  name_of(name, sizeof name, "sink", O.replica);
  name_of(topic, sizeof topic, "sink", -1);

  /* pair-recv expects 0..W+N-1 and signals warm at W-1; drain-recv expects 1..N only (seq 0
   * went to the earlier incarnation of the listener). */
  R.first = drain ? O.warmup : 0;
  uint64_t total = O.warmup + O.count;
  int nothing = drain ? O.count == 0 : total == 0;
  R.last = nothing ? R.first : total - 1;
  R.warm_at_seq = !drain && O.warmup > 0;
  R.seen = calloc((size_t)((R.last - R.first + 1) / 8 + 1), 1);
  if (!R.seen) {
    emit_error("out of memory for the sequence bitmap");
    return 1;
  }

  /* drain-recv: t0 just before the client starts (creation included: connecting to Redis is
   * part of coming back); its CPU counts from there too. */
  uint64_t t0 = now_ns();
  double cpu0 = cpu_s();
  lnr_hClient c = make_client(name, topic);
  run_client(c, on_message);
  emit("{\"event\":\"ready\"}");

  int warm_printed = 0;
  double warm_cpu = cpu0;
  if (!drain && O.warmup == 0) { /* no warm-up traffic: warm at once */
    warm_cpu = cpu_s();
    emit("{\"event\":\"warm\"}");
    warm_printed = 1;
  }
  if (nothing) {
    pthread_mutex_lock(&S.mu);
    S.done = 1;
    S.t1_ns = now_ns();
    S.done_cpu = cpu_s();
    pthread_mutex_unlock(&S.mu);
  }

  char error[700] = "";
  uint64_t seen_progress = 0, progress_at = now_ns();
  pthread_mutex_lock(&S.mu);
  for (;;) {
    if (S.failed) {
      snprintf(error, sizeof error, "%s", S.error);
      break;
    }
    if (S.warm && !warm_printed) {
      warm_cpu = S.warm_cpu;
      warm_printed = 1;
      pthread_mutex_unlock(&S.mu);
      emit("{\"event\":\"warm\"}");
      pthread_mutex_lock(&S.mu);
      continue;
    }
    if (S.done) break;
    uint64_t t = now_ns(), p = atomic_load(&progress);
    if (p != seen_progress) {
      seen_progress = p;
      progress_at = t;
    } else if (t - progress_at >= NO_PROGRESS_NS) {
      snprintf(error, sizeof error, "no progress for 60 s (%" PRIu64 " messages handled)", p);
      break;
    }
    cv_wait_until(t + NS_PER_S);
  }
  uint64_t t1 = S.t1_ns, received = S.received, dups = S.dups, gaps = S.gaps;
  double cpu = S.done_cpu - warm_cpu;
  pthread_mutex_unlock(&S.mu);
  if (*error) finish(c, error);

  char extra[128] = "";
  if (drain) snprintf(extra, sizeof extra, ",\"t0_ns\":%" PRIu64, t0);
  char rss[64] = "";
  if (O.slow) snprintf(rss, sizeof rss, ",\"max_rss_kib\":%ld", max_rss_kib());
  emit("{\"event\":\"done\"%s,\"t1_ns\":%" PRIu64 ",\"received\":%" PRIu64 ",\"dups\":%" PRIu64
       ",\"gaps\":%" PRIu64 ",\"cpu_s\":%.6f%s}",
       extra, t1, received, dups, gaps, cpu, rss);
  if (gaps != 0 || received != O.count) {
    snprintf(error, sizeof error, "%" PRIu64 " of %" PRIu64 " measured messages received, %" PRIu64 " gaps",
             received, O.count, gaps);
    finish(c, error);
  }
  finish(c, NULL);
  return 0;
}

/* ---- senders: pair-send, drain-send ---------------------------------------------------------- */

static int run_sender(void) {
  int drain = O.role == ROLE_DRAIN_SEND;
  int alo = drain ? 1 : O.alo; /* the offline queue only keeps at-least-once messages */
  int all = !drain && O.fanout;
  char name[512], dest[512];
  name_of(name, sizeof name, "source", -1);
  name_of(dest, sizeof dest, "sink", -1);
  char* buf = new_payload();
  char error[700] = "";

  start_stdin_reader();
  lnr_hClient c = make_client(name, name);
  run_client(c, on_ignore);

  /* Warm-up: the receiver may not be in the directory yet, so "no address" is retried. */
  for (uint64_t seq = 0; seq < O.warmup; ++seq) {
    put_seq(buf, seq);
    if (!send_one(c, dest, buf, all, alo, 1, NULL, error, sizeof error)) finish(c, error);
  }
  if (!wait_for_line(1, error, sizeof error)) finish(c, error);

  /* --batch: O.batch payloads of their own (each carries its sequence number), made before t0. */
  size_t batch = all || drain ? 1 : O.batch;
  char** bufs = NULL;
  size_t* sizes = NULL;
  if (batch > 1) {
    bufs = calloc(batch, sizeof *bufs);
    sizes = calloc(batch, sizeof *sizes);
    if (!bufs || !sizes) finish(c, "out of memory");
    for (size_t i = 0; i < batch; ++i) {
      bufs[i] = new_payload();
      sizes[i] = O.size;
    }
  }

  double cpu0 = cpu_s();
  uint64_t t0 = now_ns();
  uint64_t busy = 0;
  for (uint64_t seq = O.warmup; seq < O.warmup + O.count;) {
    if (batch > 1) {
      size_t n = O.warmup + O.count - seq < batch ? (size_t)(O.warmup + O.count - seq) : batch;
      if (!send_many(c, dest, bufs, sizes, seq, n, alo, &busy, error, sizeof error)) finish(c, error);
      seq += n;
    } else {
      put_seq(buf, seq);
      if (!send_one(c, dest, buf, all, alo, 0, &busy, error, sizeof error)) finish(c, error);
      ++seq;
    }
  }

  if (!drain) {
    emit("{\"event\":\"sent\",\"t0_ns\":%" PRIu64 ",\"busy\":%" PRIu64 "}", t0, busy);
  } else {
    /* The listener is away: everything must end up in Redis. Poll the offline-queue length until
     * it holds all N (the messages pass through RAM and a failed connect first). */
    long long pending = -1, last = -2;
    uint64_t changed_at = now_ns();
    for (;;) {
      pending = lnr_pending_count(c);
      if (pending < 0) finish(c, client_error(c, "lnr_pending_count"));
      if ((uint64_t)pending == O.count) break;
      uint64_t t = now_ns();
      if ((uint64_t)pending > O.count) {
        snprintf(error, sizeof error, "pending count %lld exceeds the %" PRIu64 " messages sent", pending, O.count);
        finish(c, error);
      }
      if (pending != last) {
        last = pending;
        changed_at = t;
      } else if (t - changed_at >= NO_PROGRESS_NS) {
        snprintf(error, sizeof error, "pending count stuck at %lld of %" PRIu64 " for 60 s", pending, O.count);
        finish(c, error);
      }
      sleep_ns(PENDING_POLL_NS);
    }
    fprintf(stderr, "bench_liner: drain-send queued %" PRIu64 " in %.3f s (busy %" PRIu64 ")\n", O.count,
            (double)(now_ns() - t0) / 1e9, busy);
    emit("{\"event\":\"queued\",\"pending\":%lld}", pending);
  }

  /* Keep running (drain-send delivers the queue when the listener comes back) until stop. */
  if (!wait_for_line(0, error, sizeof error)) finish(c, error);
  double cpu = cpu_s() - cpu0;
  emit("{\"event\":\"end\",\"cpu_s\":%.6f,\"max_rss_kib\":%ld}", cpu, max_rss_kib());
  for (size_t i = 0; bufs && i < batch; ++i) free(bufs[i]);
  free(bufs);
  free(sizes);
  free(buf);
  finish(c, NULL);
  return 0;
}

/* ---- latency: ping-server, ping-client ------------------------------------------------------- */

static lnr_hClient g_server;

/* Echo straight from the callback: liner.h allows lnr_send_to inside a receive callback, and
 * handing each message to another thread would add a wake-up to every round trip. */
static void on_ping(const char* to, const char* from, const char* data, size_t size, lnr_uData udata) {
  (void)to, (void)udata;
  if (!from || !*from) {
    fail_async("message without a sender topic: cannot echo it");
    return;
  }
  if (size != O.size) {
    fail_async("message of %zu bytes, expected %zu", size, O.size);
    return;
  }
  char err[700];
  /* data is valid for the duration of the callback; lnr_send_to copies it. */
  if (!send_one(g_server, from, data, 0, O.alo, 1, NULL, err, sizeof err)) fail_async("echo: %s", err);
}

static int run_ping_server(void) {
  char name[512];
  name_of(name, sizeof name, "pong", -1);
  start_stdin_reader();
  g_server = make_client(name, name);
  run_client(g_server, on_ping);
  emit("{\"event\":\"ready\"}");
  char error[700] = "";
  if (!wait_for_line(0, error, sizeof error)) finish(g_server, error);
  finish(g_server, NULL);
  return 0;
}

static void on_pong(const char* to, const char* from, const char* data, size_t size, lnr_uData udata) {
  uint64_t t = now_ns(); /* the moment the echo is handed to us */
  (void)to, (void)from, (void)udata;
  if (size != O.size) {
    fail_async("echo of %zu bytes, expected %zu", size, O.size);
    return;
  }
  uint64_t seq = get_seq(data);
  pthread_mutex_lock(&S.mu);
  if (seq == S.echo_want && !S.echo_got) {
    S.echo_got = 1;
    S.echo_ns = t;
    pthread_cond_broadcast(&S.cv);
  } else if (seq > S.echo_want) {
    uint64_t want = S.echo_want;
    pthread_mutex_unlock(&S.mu);
    fail_async("echo with sequence number %" PRIu64 " while %" PRIu64 " is in flight", seq, want);
    return;
  } /* else: an at-least-once duplicate of an earlier round trip: ignored */
  pthread_mutex_unlock(&S.mu);
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

/* sorted[ceil(q*N) - 1] with q = permille / 1000, in integers (no rounding surprises). */
static uint64_t percentile(const uint64_t* sorted, uint64_t n, uint64_t permille) {
  uint64_t rank = (n * permille + 999) / 1000;
  return sorted[rank ? rank - 1 : 0];
}

static int run_ping_client(void) {
  char name[512], dest[512];
  name_of(name, sizeof name, "ping", -1);
  name_of(dest, sizeof dest, "pong", -1);
  char* buf = new_payload();
  uint64_t* lat = malloc((size_t)O.count * sizeof *lat);
  if (!lat) {
    emit_error("out of memory for the latencies");
    return 1;
  }
  lnr_hClient c = make_client(name, name);
  run_client(c, on_pong);

  char error[700] = "";
  for (uint64_t seq = 0; seq < O.warmup + O.count; ++seq) {
    put_seq(buf, seq);
    pthread_mutex_lock(&S.mu);
    S.echo_want = seq;
    S.echo_got = 0;
    pthread_mutex_unlock(&S.mu);
    uint64_t start = now_ns();
    if (!send_one(c, dest, buf, 0, O.alo, seq < O.warmup, NULL, error, sizeof error)) finish(c, error);
    pthread_mutex_lock(&S.mu);
    while (!S.echo_got && !S.failed) {
      uint64_t t = now_ns();
      if (t - start >= NO_PROGRESS_NS) {
        snprintf(S.error, sizeof S.error, "no echo of %" PRIu64 " within 60 s", seq);
        S.failed = 1;
        break;
      }
      cv_wait_until(t + NS_PER_S);
    }
    uint64_t end = S.echo_ns;
    if (S.failed) snprintf(error, sizeof error, "%s", S.error);
    pthread_mutex_unlock(&S.mu);
    if (*error) finish(c, error);
    if (seq >= O.warmup) lat[seq - O.warmup] = end - start;
  }

  uint64_t n = O.count;
  qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
  long double sum = 0;
  for (uint64_t i = 0; i < n; ++i) sum += lat[i];
  emit("{\"event\":\"done\",\"n\":%" PRIu64 ",\"p50_ns\":%" PRIu64 ",\"p99_ns\":%" PRIu64 ",\"p999_ns\":%" PRIu64
       ",\"mean_ns\":%.0Lf,\"max_ns\":%" PRIu64 "}",
       n, percentile(lat, n, 500), percentile(lat, n, 990), percentile(lat, n, 999), sum / n, lat[n - 1]);
  free(lat);
  free(buf);
  finish(c, NULL);
  return 0;
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char** argv) {
  char err[512];
  if (!bench_parse_args(argc, argv, &O, err, sizeof err)) {
    fprintf(stderr, "bench_liner: %s\n", err);
    fprintf(stderr,
            "usage: bench_liner --role pair-recv|pair-send|ping-server|ping-client|drain-send|drain-recv\n"
            "                   --size BYTES --count N --warmup W --redis URL --prefix PREFIX\n"
            "                   [--alo 0|1] [--port P] [--replica K] [--fanout 0|1] [--slow 0|1]\n");
    return 2;
  }
  /* liner writes to its sockets with plain writev(): a peer that goes away between two writes
   * would kill the process with SIGPIPE instead of letting liner see EPIPE and retry. */
  signal(SIGPIPE, SIG_IGN);
  shared_init();
  switch (O.role) {
    case ROLE_PAIR_RECV:
    case ROLE_DRAIN_RECV:
      return run_receiver();
    case ROLE_PAIR_SEND:
    case ROLE_DRAIN_SEND:
      return run_sender();
    case ROLE_PING_SERVER:
      return run_ping_server();
    case ROLE_PING_CLIENT:
      return run_ping_client();
  }
  return 2;
}
