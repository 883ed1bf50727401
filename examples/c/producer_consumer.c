/*
 * producer_consumer - direct messages plus a shared subscription.
 *
 * Each consumer has its own source topic (direct messages) and also subscribes to a common topic
 * with lnr_subscribe(). The producer sends each consumer its own work with lnr_send_to(), and
 * announcements to everybody with lnr_send_all() on the common topic. The callback tells the two
 * apart by `to`: the consumer's own topic, or the subscribed one.
 *
 *   ./build/examples/c/producer_consumer [redis_url]
 *
 * Exits 0 when each consumer got all its direct messages and all announcements.
 */
#include "example.h"

#include <string.h>

#define CONSUMERS 3
#define MESSAGES 10 /* direct messages per consumer, and announcements */
#define NEWS "producer_consumer.news"

struct consumer {
  const char* topic; /* also its unique name */
  atomic_int direct;
  atomic_int news;
  atomic_int unexpected;
};

static atomic_int total;

static void on_receive(const char* to, const char* from, const char* data, size_t size, lnr_uData udata) {
  (void)data, (void)size;
  struct consumer* self = udata;
  if (strcmp(from, "producer_consumer.producer") != 0)
    atomic_fetch_add(&self->unexpected, 1);
  else if (strcmp(to, self->topic) == 0)
    atomic_fetch_add(&self->direct, 1);
  else if (strcmp(to, NEWS) == 0)
    atomic_fetch_add(&self->news, 1);
  else
    atomic_fetch_add(&self->unexpected, 1);
  atomic_fetch_add(&total, 1);
}

int main(int argc, char** argv) {
  const char* redis_url = example_redis_url(argc, argv);
  printf("producer_consumer: direct work plus a shared subscription (redis %s)\n", redis_url);

  static struct consumer consumers[CONSUMERS] = {{.topic = "producer_consumer.consumer1"},
                                                 {.topic = "producer_consumer.consumer2"},
                                                 {.topic = "producer_consumer.consumer3"}};
  lnr_hClient clients[CONSUMERS];
  for (int i = 0; i < CONSUMERS; ++i) {
    clients[i] = example_client(consumers[i].topic, consumers[i].topic, redis_url);
    /* Subscribing works before lnr_run too; the address is registered when the client runs. */
    example_check(lnr_subscribe(clients[i], NEWS), clients[i], "lnr_subscribe");
  }
  lnr_hClient producer = example_client("producer_consumer.producer", "producer_consumer.producer", redis_url);

  for (int i = 0; i < CONSUMERS; ++i) example_run(clients[i], consumers[i].topic, on_receive, &consumers[i]);
  example_run(producer, "producer", example_ignore, NULL);

  for (int m = 0; m < MESSAGES; ++m) {
    char text[32];
    for (int i = 0; i < CONSUMERS; ++i) {
      int len = snprintf(text, sizeof text, "task %d", m + 1);
      example_send(producer, 0, consumers[i].topic, text, (size_t)len);
    }
    int len = snprintf(text, sizeof text, "announcement %d", m + 1);
    example_send(producer, 1, NEWS, text, (size_t)len);
  }

  int want = CONSUMERS * 2 * MESSAGES;
  int ok = example_wait_for(&total, want, EXAMPLE_TIMEOUT_S);
  example_sleep_ms(200); /* a duplicate would show up here */
  for (int i = 0; i < CONSUMERS; ++i) {
    int direct = atomic_load(&consumers[i].direct), news = atomic_load(&consumers[i].news);
    printf("  %-28s direct %d of %d, news %d of %d\n", consumers[i].topic, direct, MESSAGES, news, MESSAGES);
    if (direct != MESSAGES || news != MESSAGES || atomic_load(&consumers[i].unexpected) != 0) ok = 0;
  }

  for (int i = 0; i < CONSUMERS; ++i) lnr_delete_client(clients[i]);
  lnr_delete_client(producer);
  return example_finish("producer_consumer", ok, "every consumer's direct messages and announcements, once");
}
