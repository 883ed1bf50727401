/*
 * demo - a small order pipeline told as a story (run it with `npm run demo`).
 *
 * Peers:
 *   orders             the producer (topic demo.orders)
 *   worker-1, worker-2 two replicas of one service (both serve topic demo.workers)
 *   audit              a subscriber that keeps a record (topic demo.audit)
 * worker-1, worker-2 and audit also subscribe to demo.events, the broadcast topic.
 *
 * Act 1  round-robin:   orders lnr_send_to()s jobs to demo.workers; each job goes to ONE replica,
 *                       which answers "done" to demo.orders from inside its callback.
 * Act 2  fan-out:       orders lnr_send_all()s announcements to demo.events; every subscriber
 *                       gets a copy.
 * Act 3  offline peer:  orders sends audit records with at-least-once delivery; audit stops
 *                       half-way, the records sent meanwhile wait in Redis, and audit gets them
 *                       all, in order, when it restarts on the same address.
 *
 *   ./build/examples/c/demo [redis_url]
 *
 * Exits 0 when every count matches, non-zero otherwise.
 */
#include "example.h"

#include <string.h>

#define JOBS 10
#define ANNOUNCEMENTS 3
#define RECORDS 5        /* audit records in all */
#define RECORDS_BEFORE 2 /* of which sent while audit is up */
#define WORKERS 2

/* What one peer saw. The callbacks only count; main() tells the story, so lines never interleave. */
struct peer {
  const char* name;
  lnr_hClient client;
  atomic_int jobs;   /* demo.workers messages */
  atomic_int events; /* demo.events messages */
  atomic_int records; /* demo.audit messages */
  atomic_int receipts; /* "done" answers (orders) */
};

static struct peer orders = {.name = "orders"};
static struct peer workers[WORKERS] = {{.name = "worker-1"}, {.name = "worker-2"}};
static struct peer audit = {.name = "audit"};

static atomic_int jobs_total, events_total, receipts_total;

static void on_orders(const char* to, const char* from, const char* data, size_t size, lnr_uData udata) {
  (void)to, (void)from, (void)data, (void)size;
  struct peer* self = udata;
  atomic_fetch_add(&self->receipts, 1);
  atomic_fetch_add(&receipts_total, 1);
}

static void on_worker(const char* to, const char* from, const char* data, size_t size, lnr_uData udata) {
  (void)from;
  struct peer* self = udata;
  if (strcmp(to, "demo.events") == 0) {
    atomic_fetch_add(&self->events, 1);
    atomic_fetch_add(&events_total, 1);
    return;
  }
  atomic_fetch_add(&self->jobs, 1);
  atomic_fetch_add(&jobs_total, 1);
  /* Answer from inside the callback: sending is allowed here. The payload is not
   * NUL-terminated, so it is printed with an explicit length. */
  char receipt[64];
  int len = snprintf(receipt, sizeof receipt, "done: %.*s by %s", (int)size, data, self->name);
  example_send(self->client, 0, "demo.orders", receipt, (size_t)len);
}

static atomic_int records_out_of_order;

static void on_audit(const char* to, const char* from, const char* data, size_t size, lnr_uData udata) {
  (void)from;
  struct peer* self = udata;
  if (strcmp(to, "demo.events") == 0) {
    atomic_fetch_add(&self->events, 1);
    atomic_fetch_add(&events_total, 1);
    return;
  }
  /* Records are "record <n>" and must arrive in order, each once, across audit's restart. */
  char want[32];
  int len = snprintf(want, sizeof want, "record %d", atomic_load(&self->records) + 1);
  if ((size_t)len != size || memcmp(want, data, size) != 0) atomic_fetch_add(&records_out_of_order, 1);
  atomic_fetch_add(&self->records, 1);
}

/* Sends audit record n; returns whether lnr_send_to accepted it (printing why not). */
static int send_record(int n) {
  char text[32];
  int len = snprintf(text, sizeof text, "record %d", n);
  if (example_try_send(orders.client, 0, "demo.audit", text, (size_t)len)) return 1;
  printf("        lnr_send_to(\"demo.audit\", \"%s\") failed: code %d, %s\n", text,
         lnr_last_error_code(orders.client), lnr_last_error_message(orders.client));
  return 0;
}

/* Prints one check of the story and remembers failures. */
static int failures;
static void expect(int ok, const char* what) {
  printf("  %s %s\n", ok ? "[ok]  " : "[FAIL]", what);
  if (!ok) ++failures;
}

int main(int argc, char** argv) {
  const char* redis_url = example_redis_url(argc, argv);
  double started = example_now();
  char line[160];

  printf("Starting four peers; they find each other through Redis, and talk over TCP directly.\n");
  orders.client = example_client("demo.orders", "demo.orders", redis_url);
  for (int i = 0; i < WORKERS; ++i) {
    char unique[32];
    snprintf(unique, sizeof unique, "demo.%s", workers[i].name);
    /* Same topic, different unique names: the two workers are replicas of one service. */
    workers[i].client = example_client(unique, "demo.workers", redis_url);
    example_check(lnr_subscribe(workers[i].client, "demo.events"), workers[i].client, "lnr_subscribe");
  }
  audit.client = example_client("demo.audit", "demo.audit", redis_url);
  example_check(lnr_subscribe(audit.client, "demo.events"), audit.client, "lnr_subscribe");

  for (int i = 0; i < WORKERS; ++i) example_run(workers[i].client, workers[i].name, on_worker, &workers[i]);
  example_run(audit.client, audit.name, on_audit, &audit);
  example_run(orders.client, orders.name, on_orders, &orders);

  /* ---- Act 1: round-robin ------------------------------------------------------------------- */
  printf("\nAct 1 - orders sends %d jobs with lnr_send_to(\"demo.workers\"): one replica each.\n", JOBS);
  for (int i = 1; i <= JOBS; ++i) {
    char job[32];
    int len = snprintf(job, sizeof job, "job %d", i);
    example_send(orders.client, 0, "demo.workers", job, (size_t)len);
  }
  example_wait_for(&receipts_total, JOBS, EXAMPLE_TIMEOUT_S);
  int w1 = atomic_load(&workers[0].jobs), w2 = atomic_load(&workers[1].jobs);
  snprintf(line, sizeof line, "worker-1 handled %d jobs, worker-2 handled %d: %d of %d, each exactly once", w1, w2,
           w1 + w2, JOBS);
  expect(w1 + w2 == JOBS && w1 > 0 && w2 > 0, line);
  snprintf(line, sizeof line, "orders got %d of %d \"done\" receipts, sent from inside the workers' callbacks",
           atomic_load(&orders.receipts), JOBS);
  expect(atomic_load(&orders.receipts) == JOBS, line);

  /* ---- Act 2: fan-out ------------------------------------------------------------------------ */
  printf("\nAct 2 - orders broadcasts %d announcements with lnr_send_all(\"demo.events\").\n", ANNOUNCEMENTS);
  for (int i = 1; i <= ANNOUNCEMENTS; ++i) {
    char text[32];
    int len = snprintf(text, sizeof text, "price list v%d", i);
    example_send(orders.client, 1, "demo.events", text, (size_t)len);
  }
  example_wait_for(&events_total, 3 * ANNOUNCEMENTS, EXAMPLE_TIMEOUT_S);
  snprintf(line, sizeof line, "worker-1 got %d, worker-2 got %d, audit got %d (each should get %d)",
           atomic_load(&workers[0].events), atomic_load(&workers[1].events), atomic_load(&audit.events),
           ANNOUNCEMENTS);
  expect(atomic_load(&workers[0].events) == ANNOUNCEMENTS && atomic_load(&workers[1].events) == ANNOUNCEMENTS &&
             atomic_load(&audit.events) == ANNOUNCEMENTS,
         line);

  /* ---- Act 3: at-least-once delivery to a peer that is away ----------------------------------- */
  printf("\nAct 3 - orders sends audit records with lnr_send_to(\"demo.audit\"), at-least-once.\n");
  int accepted = 0;
  for (int i = 1; i <= RECORDS_BEFORE; ++i) accepted += send_record(i);
  example_wait_for(&audit.records, RECORDS_BEFORE, EXAMPLE_TIMEOUT_S);
  snprintf(line, sizeof line, "audit received records 1..%d while up", atomic_load(&audit.records));
  expect(atomic_load(&audit.records) == RECORDS_BEFORE, line);

  char audit_addr[64];
  snprintf(audit_addr, sizeof audit_addr, "%s", lnr_bound_listen_addr(audit.client));
  printf("        audit (listening on %s) stops; its address leaves the directory.\n", audit_addr);
  lnr_delete_client(audit.client);
  printf("        orders sends records %d..%d meanwhile: they wait in Redis for audit.\n", RECORDS_BEFORE + 1,
         RECORDS);
  for (int i = RECORDS_BEFORE + 1; i <= RECORDS; ++i) accepted += send_record(i);
  snprintf(line, sizeof line, "lnr_send_to accepted %d of %d records", accepted, RECORDS);
  expect(accepted == RECORDS, line);

  /* A restart with the same unique name and topic, on the same address: the sender and listener
   * pair (the channel) is the same as before, so the records kept for it are delivered. */
  printf("        audit starts again on %s.\n", audit_addr);
  audit.client = lnr_new_client_redis("demo.audit", "demo.audit", audit_addr, redis_url);
  if (!audit.client) example_die("audit", lnr_last_create_error());
  example_check(lnr_subscribe(audit.client, "demo.events"), audit.client, "lnr_subscribe");
  example_check(lnr_run(audit.client, on_audit, &audit), audit.client, "lnr_run");
  example_wait_for(&audit.records, RECORDS, EXAMPLE_TIMEOUT_S);
  example_sleep_ms(300); /* a duplicate would show up here */
  snprintf(line, sizeof line, "audit has all %d of %d records, in order, none twice", atomic_load(&audit.records),
           RECORDS);
  expect(atomic_load(&audit.records) == RECORDS && atomic_load(&records_out_of_order) == 0, line);

  /* Receivers first, so that their acknowledgements are written before the senders stop. */
  lnr_delete_client(audit.client);
  for (int i = 0; i < WORKERS; ++i) lnr_delete_client(workers[i].client);
  lnr_delete_client(orders.client);

  printf("\ndemo: %s - %d jobs round-robin (%d + %d), %d receipts, %d broadcast copies, %d of %d audit records, "
         "%.1f s\n",
         failures ? "FAILED" : "OK", JOBS, w1, w2, atomic_load(&orders.receipts), atomic_load(&events_total),
         atomic_load(&audit.records), RECORDS, example_now() - started);
  if (failures) fprintf(stderr, "error: demo: %d check(s) marked [FAIL] above\n", failures);
  return failures ? 1 : 0;
}
