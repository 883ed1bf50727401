/*
 * one_to_one - one sender, one receiver.
 *
 * The receiver serves the topic "one_to_one.receiver"; the sender addresses that topic (it never
 * needs the receiver's address: liner looks it up in Redis). Messages on one connection arrive in
 * the order they were sent, and the callback sees `from` = the sender's own topic.
 *
 *   ./build/examples/c/one_to_one [redis_url]
 *
 * Exits 0 when every message arrived in order within the timeout.
 */
#include "example.h"

#include <string.h>

#define MESSAGES 100

static atomic_int received;
static atomic_int out_of_order;

static void on_receive(const char* to, const char* from, const char* data, size_t size, lnr_uData udata) {
  (void)udata;
  /* The payload is "message <n>"; copy it out, as the pointers die when the callback returns. */
  char text[32];
  size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
  memcpy(text, data, n);
  text[n] = '\0';

  int expected = atomic_load(&received) + 1;
  char want[32];
  snprintf(want, sizeof want, "message %d", expected);
  if (strcmp(text, want) != 0 || strcmp(to, "one_to_one.receiver") != 0 ||
      strcmp(from, "one_to_one.sender") != 0) {
    fprintf(stderr, "unexpected delivery: to=%s from=%s data=%s (wanted %s)\n", to, from, text, want);
    atomic_fetch_add(&out_of_order, 1);
  }
  atomic_fetch_add(&received, 1);
}

int main(int argc, char** argv) {
  const char* redis_url = example_redis_url(argc, argv);
  printf("one_to_one: one sender, one receiver (redis %s)\n", redis_url);

  lnr_hClient receiver = example_client("one_to_one.receiver", "one_to_one.receiver", redis_url);
  lnr_hClient sender = example_client("one_to_one.sender", "one_to_one.sender", redis_url);
  example_run(receiver, "receiver", on_receive, NULL);
  example_run(sender, "sender", example_ignore, NULL);

  for (int i = 1; i <= MESSAGES; ++i) {
    char text[32];
    int len = snprintf(text, sizeof text, "message %d", i);
    example_send(sender, 0, "one_to_one.receiver", text, (size_t)len);
  }

  int ok = example_wait_for(&received, MESSAGES, EXAMPLE_TIMEOUT_S) && atomic_load(&out_of_order) == 0;
  printf("  receiver got %d of %d messages, %d unexpected\n", atomic_load(&received), MESSAGES,
         atomic_load(&out_of_order));

  /* Receiver first: deleting it writes its final acknowledgements, so the sender, deleted next,
   * has nothing left to keep for later delivery. */
  lnr_delete_client(receiver);
  lnr_delete_client(sender);
  return example_finish("one_to_one", ok, "every message once, in order");
}
