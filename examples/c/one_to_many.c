/*
 * one_to_many - fan-out.
 *
 * Three listeners serve one topic (same source topic, different unique names). The publisher
 * calls lnr_send_all(): liner sends one copy to every address registered for the topic, so each
 * listener receives every message. Compare one_to_one_for_many, where lnr_send_to() picks one.
 *
 *   ./build/examples/c/one_to_many [redis_url]
 *
 * Exits 0 when every listener got every message exactly once.
 */
#include "example.h"

#define LISTENERS 3
#define MESSAGES 20
#define TOPIC "one_to_many.listeners"

struct listener {
  const char* name;
  atomic_int received;
};

static atomic_int total;

static void on_receive(const char* to, const char* from, const char* data, size_t size, lnr_uData udata) {
  (void)to, (void)from, (void)data, (void)size;
  struct listener* self = udata;
  atomic_fetch_add(&self->received, 1);
  atomic_fetch_add(&total, 1);
}

int main(int argc, char** argv) {
  const char* redis_url = example_redis_url(argc, argv);
  printf("one_to_many: one publisher, every one of %d listeners gets a copy (redis %s)\n", LISTENERS, redis_url);

  struct listener listeners[LISTENERS] = {
      {"one_to_many.listener1", 0}, {"one_to_many.listener2", 0}, {"one_to_many.listener3", 0}};
  lnr_hClient clients[LISTENERS];
  for (int i = 0; i < LISTENERS; ++i) clients[i] = example_client(listeners[i].name, TOPIC, redis_url);
  lnr_hClient publisher = example_client("one_to_many.publisher", "one_to_many.publisher", redis_url);

  for (int i = 0; i < LISTENERS; ++i) example_run(clients[i], listeners[i].name, on_receive, &listeners[i]);
  example_run(publisher, "publisher", example_ignore, NULL);

  for (int i = 0; i < MESSAGES; ++i) {
    char text[32];
    int len = snprintf(text, sizeof text, "update %d", i + 1);
    example_send(publisher, 1, TOPIC, text, (size_t)len);
  }

  int want = LISTENERS * MESSAGES;
  int ok = example_wait_for(&total, want, EXAMPLE_TIMEOUT_S);
  example_sleep_ms(200); /* a duplicate would show up here */
  for (int i = 0; i < LISTENERS; ++i) {
    int got = atomic_load(&listeners[i].received);
    printf("  %-24s got %d of %d\n", listeners[i].name, got, MESSAGES);
    if (got != MESSAGES) ok = 0;
  }

  for (int i = 0; i < LISTENERS; ++i) lnr_delete_client(clients[i]);
  lnr_delete_client(publisher);
  return example_finish("one_to_many", ok, "every message at every listener, once");
}
