/*
 * example.h - the few helpers the C examples share, so that each example shows only the
 * messaging pattern it is about.
 *
 * Every example is one process that plays every peer: in real use each peer would be its own
 * process (or machine), with the same calls. Peers find each other through Redis only.
 *
 * An example exits 0 when every message arrived as the pattern promises. Otherwise it exits 1
 * with an "error: ..." line on stderr: at once when a call fails (Redis unreachable, a send
 * refused), or after EXAMPLE_TIMEOUT_S when messages are missing.
 */
#ifndef LINER_EXAMPLE_H
#define LINER_EXAMPLE_H

/* clock_gettime, CLOCK_MONOTONIC and nanosleep are POSIX, not C11: asked for here (this header
 * comes first in every example), so that `cc -std=c11 ...` builds the examples as they are. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <liner.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* How long an example waits for its messages before it declares failure. */
#define EXAMPLE_TIMEOUT_S 10.0

/* Redis to use: the first argument, else $LINER_TEST_REDIS_URL (set by `npm test`), else the
 * default local server. */
static inline const char* example_redis_url(int argc, char** argv) {
  if (argc > 1) return argv[1];
  const char* env = getenv("LINER_TEST_REDIS_URL");
  return (env && *env) ? env : "redis://127.0.0.1:6379/0";
}

static inline double example_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void example_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Ends the process at once: used only for set-up errors, where no client needs a clean stop.
 * stdout is flushed first so that the error comes after what the example already printed. */
static inline void example_die(const char* what, const char* why) {
  fflush(stdout);
  fprintf(stderr, "error: %s: %s\n", what, why ? why : "(no message)");
  _Exit(1);
}

/* Stops the example when a call returned FALSE, printing the client's error code and message. */
static inline void example_check(BOOL ok, lnr_hClient client, const char* what) {
  if (ok) return;
  const char* message = lnr_last_error_message(client); /* NULL for an unknown handle */
  char why[512];
  snprintf(why, sizeof why, "code %d, %s", lnr_last_error_code(client), message ? message : "unknown client");
  example_die(what, why);
}

/*
 * Creates a client listening on a free loopback port (the port is chosen at lnr_run; read it with
 * lnr_bound_listen_addr).
 *
 * The example's names are fixed, so a run that was killed earlier may have left its address and
 * its unacknowledged messages in Redis; clearing them first makes every run start from scratch.
 * Both calls are only allowed while the client is not running.
 */
static inline lnr_hClient example_client(const char* unique_name, const char* topic, const char* redis_url) {
  lnr_hClient client = lnr_new_client_redis(unique_name, topic, "127.0.0.1:0", redis_url);
  if (!client) example_die(unique_name, lnr_last_create_error());
  example_check(lnr_clear_stored_messages(client), client, "lnr_clear_stored_messages");
  example_check(lnr_clear_addresses_of_topic(client), client, "lnr_clear_addresses_of_topic");
  return client;
}

/* Receive callback for peers that only send. */
static inline void example_ignore(const char* to, const char* from, const char* data, size_t size, lnr_uData udata) {
  (void)to, (void)from, (void)data, (void)size, (void)udata;
}

/* Starts a client and says where it listens. */
static inline void example_run(lnr_hClient client, const char* name, lnr_receive_cb cb, void* udata) {
  example_check(lnr_run(client, cb, udata), client, "lnr_run");
  printf("  %-16s listens on %s\n", name, lnr_bound_listen_addr(client));
}

/*
 * Sends with at-least-once delivery: lnr_send_to (one peer of the topic) or, with `all`,
 * lnr_send_all (every peer). Returns FALSE on an error (read it on the client).
 *
 * LNR_ERR_BUSY from lnr_send_to only means the peer's send queue is full for now, so the message
 * is offered again after a short pause. lnr_send_all is not retried: its BUSY may come after some
 * copies were queued, and sending again would give those peers the message twice.
 */
static inline BOOL example_try_send(lnr_hClient client, int all, const char* topic, const char* data, size_t size) {
  if (all) return lnr_send_all(client, topic, data, size, TRUE);
  while (!lnr_send_to(client, topic, data, size, TRUE)) {
    if (lnr_last_error_code(client) != LNR_ERR_BUSY) return FALSE;
    example_sleep_ms(5);
  }
  return TRUE;
}

/* example_try_send that stops the example on an error. */
static inline void example_send(lnr_hClient client, int all, const char* topic, const char* data, size_t size) {
  example_check(example_try_send(client, all, topic, data, size), client, all ? "lnr_send_all" : "lnr_send_to");
}

/* Ends an example: prints "<name>: OK" on stdout and returns 0, or says on stderr what was
 * expected and returns 1 (the exit status: a failed example must fail whoever runs it). */
static inline int example_finish(const char* name, int ok, const char* expected) {
  if (ok) {
    printf("%s: OK\n", name);
    return 0;
  }
  fflush(stdout);
  fprintf(stderr, "error: %s: FAILED: expected %s within %.0f s\n", name, expected, EXAMPLE_TIMEOUT_S);
  return 1;
}

/* Waits until *count reaches `want` or `timeout_s` seconds pass; returns whether it got there. */
static inline int example_wait_for(atomic_int* count, int want, double timeout_s) {
  double deadline = example_now() + timeout_s;
  while (atomic_load(count) < want) {
    if (example_now() > deadline) return 0;
    example_sleep_ms(10);
  }
  return 1;
}

#endif /* LINER_EXAMPLE_H */
