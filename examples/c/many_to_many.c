/*
 * many_to_many - several publishers, several subscribers.
 *
 * Three publishers each fan out (lnr_send_all) to a topic that three subscribers serve. Every
 * subscriber gets every message of every publisher, and the callback's `from` says which
 * publisher (its source topic) sent it.
 *
 *   ./build/examples/c/many_to_many [redis_url]
 *
 * Exits 0 when each subscriber got each publisher's messages exactly once.
 */
#include "example.h"

#include <string.h>

#define PUBLISHERS 3
#define SUBSCRIBERS 3
#define MESSAGES 10 /* per publisher */
#define TOPIC "many_to_many.subscribers"

static const char* publisher_topics[PUBLISHERS] = {"many_to_many.publisher1", "many_to_many.publisher2",
                                                   "many_to_many.publisher3"};

struct subscriber {
  const char* name;
  atomic_int from[PUBLISHERS]; /* messages received from each publisher */
  atomic_int unknown;          /* messages whose `from` is no publisher */
};

static atomic_int total;

static void on_receive(const char* to, const char* from, const char* data, size_t size, lnr_uData udata) {
  (void)to, (void)data, (void)size;
  struct subscriber* self = udata;
  int p = 0;
  while (p < PUBLISHERS && strcmp(from, publisher_topics[p]) != 0) ++p;
  atomic_fetch_add(p < PUBLISHERS ? &self->from[p] : &self->unknown, 1);
  atomic_fetch_add(&total, 1);
}

int main(int argc, char** argv) {
  const char* redis_url = example_redis_url(argc, argv);
  printf("many_to_many: %d publishers fan out to %d subscribers (redis %s)\n", PUBLISHERS, SUBSCRIBERS, redis_url);

  static struct subscriber subscribers[SUBSCRIBERS] = {
      {.name = "many_to_many.subscriber1"}, {.name = "many_to_many.subscriber2"}, {.name = "many_to_many.subscriber3"}};
  lnr_hClient subs[SUBSCRIBERS], pubs[PUBLISHERS];
  for (int i = 0; i < SUBSCRIBERS; ++i) subs[i] = example_client(subscribers[i].name, TOPIC, redis_url);
  for (int p = 0; p < PUBLISHERS; ++p) pubs[p] = example_client(publisher_topics[p], publisher_topics[p], redis_url);

  for (int i = 0; i < SUBSCRIBERS; ++i) example_run(subs[i], subscribers[i].name, on_receive, &subscribers[i]);
  for (int p = 0; p < PUBLISHERS; ++p) example_run(pubs[p], publisher_topics[p], example_ignore, NULL);

  /* Interleave the publishers, as independent processes would. */
  for (int i = 0; i < MESSAGES; ++i) {
    for (int p = 0; p < PUBLISHERS; ++p) {
      char text[48];
      int len = snprintf(text, sizeof text, "publisher %d, message %d", p + 1, i + 1);
      example_send(pubs[p], 1, TOPIC, text, (size_t)len);
    }
  }

  int want = SUBSCRIBERS * PUBLISHERS * MESSAGES;
  int ok = example_wait_for(&total, want, EXAMPLE_TIMEOUT_S);
  example_sleep_ms(200); /* a duplicate would show up here */
  for (int i = 0; i < SUBSCRIBERS; ++i) {
    printf("  %-26s", subscribers[i].name);
    for (int p = 0; p < PUBLISHERS; ++p) {
      int got = atomic_load(&subscribers[i].from[p]);
      printf(" from publisher%d: %2d", p + 1, got);
      if (got != MESSAGES) ok = 0;
    }
    printf("\n");
    if (atomic_load(&subscribers[i].unknown) != 0) ok = 0;
  }

  for (int i = 0; i < SUBSCRIBERS; ++i) lnr_delete_client(subs[i]);
  for (int p = 0; p < PUBLISHERS; ++p) lnr_delete_client(pubs[p]);
  return example_finish("many_to_many", ok, "every publisher's messages at every subscriber, once");
}
