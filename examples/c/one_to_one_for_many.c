/*
 * one_to_one_for_many - load balancing over replicas.
 *
 * Three workers run as replicas of one topic: same source topic, each with its own unique name.
 * Every lnr_send_to() to that topic goes to ONE of them, in round-robin order, so each message is
 * handled exactly once and the work is shared. Compare one_to_many, where lnr_send_all() gives
 * every replica a copy.
 *
 *   ./build/examples/c/one_to_one_for_many [redis_url]
 *
 * Exits 0 when all messages arrived, each exactly once, and every worker got a share.
 */
#include "example.h"

#define WORKERS 3
#define MESSAGES 30
#define TOPIC "one_to_one_for_many.workers"

struct worker {
  const char* name;
  atomic_int received;
};

static atomic_int total;

static void on_receive(const char* to, const char* from, const char* data, size_t size, lnr_uData udata) {
  (void)to, (void)from, (void)data, (void)size;
  struct worker* self = udata; /* the pointer given to lnr_run */
  atomic_fetch_add(&self->received, 1);
  atomic_fetch_add(&total, 1);
}

int main(int argc, char** argv) {
  const char* redis_url = example_redis_url(argc, argv);
  printf("one_to_one_for_many: %d replicas share the messages of one topic (redis %s)\n", WORKERS, redis_url);

  struct worker workers[WORKERS] = {{"one_to_one_for_many.worker1", 0},
                                    {"one_to_one_for_many.worker2", 0},
                                    {"one_to_one_for_many.worker3", 0}};
  lnr_hClient clients[WORKERS];
  for (int i = 0; i < WORKERS; ++i) clients[i] = example_client(workers[i].name, TOPIC, redis_url);
  lnr_hClient dispatcher = example_client("one_to_one_for_many.dispatcher", "one_to_one_for_many.dispatcher", redis_url);

  for (int i = 0; i < WORKERS; ++i) example_run(clients[i], workers[i].name, on_receive, &workers[i]);
  example_run(dispatcher, "dispatcher", example_ignore, NULL);

  for (int i = 0; i < MESSAGES; ++i) {
    char job[32];
    int len = snprintf(job, sizeof job, "job %d", i + 1);
    example_send(dispatcher, 0, TOPIC, job, (size_t)len);
  }

  int ok = example_wait_for(&total, MESSAGES, EXAMPLE_TIMEOUT_S);
  example_sleep_ms(200); /* a duplicate would show up here */
  ok = ok && atomic_load(&total) == MESSAGES;
  for (int i = 0; i < WORKERS; ++i) {
    int got = atomic_load(&workers[i].received);
    printf("  %-30s handled %d\n", workers[i].name, got);
    if (got == 0) ok = 0;
  }
  printf("  total %d of %d\n", atomic_load(&total), MESSAGES);

  /* Receivers first, so that their final acknowledgements are written before the sender stops. */
  for (int i = 0; i < WORKERS; ++i) lnr_delete_client(clients[i]);
  lnr_delete_client(dispatcher);
  return example_finish("one_to_one_for_many", ok, "every message once, and a share for every worker");
}
