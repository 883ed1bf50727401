/*
 * create / run / send / close, CYCLES times, for valgrind --leak-check=full
 * (scripts/leakcheck.sh). Each cycle makes two clients, runs both, sends one message from the
 * first to the second (alternately at-least-once and best effort), waits until it is
 * delivered, then deletes the receiver and the sender. WORKERS threads run their share of the
 * cycles side by side, with their own names, so that the wall time stays small; every client
 * is deleted before main returns, so whatever valgrind finds still allocated is a leak.
 *
 *   leak_cycles REDIS_URL [CYCLES=1000] [WORKERS=10]
 *
 * Exits 0 when every message was delivered and every call succeeded.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "liner.h"

static const char* g_url;
static int g_cycles_per_worker;
static atomic_int g_failures;
static atomic_int g_log_lines;

/* Log lines ("peer ... unreachable" when a receiver closes first, etc.) are counted, not
 * printed: valgrind's report is what matters here. */
static void count_log(const char* line, lnr_uData u) {
  (void)line;
  (void)u;
  atomic_fetch_add(&g_log_lines, 1);
}

struct Inbox {
  atomic_int count;
};

static void on_message(const char* to, const char* from, const char* data, size_t size, lnr_uData u) {
  (void)to;
  (void)from;
  (void)data;
  (void)size;
  atomic_fetch_add(&((struct Inbox*)u)->count, 1);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void fail(int worker, int cycle, const char* what, lnr_hClient c) {
  fprintf(stderr, "leak_cycles: worker %d cycle %d: %s failed: %s\n", worker, cycle, what,
          c ? lnr_last_error_message(c) : lnr_last_create_error());
  atomic_fetch_add(&g_failures, 1);
}

static void* worker(void* arg) {
  int w = (int)(long)arg;
  char a_name[32], a_topic[32], b_name[32], b_topic[32];
  snprintf(a_name, sizeof a_name, "lk_a%d", w);
  snprintf(a_topic, sizeof a_topic, "lk_a%d_topic", w);
  snprintf(b_name, sizeof b_name, "lk_b%d", w);
  snprintf(b_topic, sizeof b_topic, "lk_b%d_topic", w);
  for (int i = 0; i < g_cycles_per_worker; ++i) {
    struct Inbox inbox;
    atomic_init(&inbox.count, 0);
    lnr_hClient b = lnr_new_client_redis(b_name, b_topic, "127.0.0.1:0", g_url);
    lnr_hClient a = lnr_new_client_redis(a_name, a_topic, "127.0.0.1:0", g_url);
    if (!a || !b) {
      fail(w, i, "lnr_new_client_redis", NULL);
    } else if (!lnr_run(b, on_message, &inbox)) {
      fail(w, i, "lnr_run(receiver)", b);
    } else if (!lnr_run(a, on_message, &inbox)) {
      fail(w, i, "lnr_run(sender)", a);
    } else {
      char payload[64];
      int n = snprintf(payload, sizeof payload, "cycle %d of worker %d", i, w);
      if (!lnr_send_to(a, b_topic, payload, (size_t)n, (i % 2) ? TRUE : FALSE)) {
        fail(w, i, "lnr_send_to", a);
      } else {
        int waited = 0;
        while (atomic_load(&inbox.count) < 1 && waited < 20000) {
          sleep_ms(2);
          waited += 2;
        }
        if (atomic_load(&inbox.count) != 1) fail(w, i, "delivery", a);
      }
    }
    /* The receiver first: its final acknowledgement lets the sender close without waiting. */
    if (b && !lnr_delete_client(b)) fail(w, i, "lnr_delete_client(receiver)", NULL);
    if (a && !lnr_delete_client(a)) fail(w, i, "lnr_delete_client(sender)", NULL);
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s REDIS_URL [CYCLES] [WORKERS]\n", argv[0]);
    return 2;
  }
  g_url = argv[1];
  int cycles = argc > 2 ? atoi(argv[2]) : 1000;
  int workers = argc > 3 ? atoi(argv[3]) : 10;
  if (workers < 1) workers = 1;
  g_cycles_per_worker = (cycles + workers - 1) / workers;
  atomic_init(&g_failures, 0);
  atomic_init(&g_log_lines, 0);
  lnr_set_log_cb(count_log, NULL);
  pthread_t* threads = calloc((size_t)workers, sizeof *threads);
  for (int w = 0; w < workers; ++w) pthread_create(&threads[w], NULL, worker, (void*)(long)w);
  for (int w = 0; w < workers; ++w) pthread_join(threads[w], NULL);
  free(threads);
  int failures = atomic_load(&g_failures);
  lnr_set_log_cb(NULL, NULL);
  printf("leak_cycles: %d cycles (%d workers x %d), %d failures, %d log lines\n",
         workers * g_cycles_per_worker, workers, g_cycles_per_worker, failures,
         atomic_load(&g_log_lines));
  return failures ? 1 : 0;
}
