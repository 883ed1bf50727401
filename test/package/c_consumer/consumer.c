/*
 * A program that uses an installed liner, as a user's would: it includes <liner.h> from the
 * install prefix and calls functions that need no server. test_c_install.py builds it four ways
 * (pkg-config and CMake, shared and static) and runs it.
 *
 * Usage: consumer DIR   (an existing, writable directory for the SQLite file)
 * Exit status 0 only if every call behaved as include/liner.h says.
 */
#include <liner.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int failures = 0;

#define EXPECT(cond)                                             \
  do {                                                           \
    if (!(cond)) {                                               \
      fprintf(stderr, "consumer: failed: %s (line %d)\n", #cond, __LINE__); \
      failures++;                                                \
    }                                                            \
  } while (0)

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: consumer DIR\n");
    return 2;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/consumer.db", argv[1]);

  const char* version = lnr_version();
  EXPECT(version != NULL && strstr(version, "liner") != NULL);
  EXPECT(lnr_get_max_message_size() > 0);

  /* A refused argument: NULL with the code and a reason. */
  EXPECT(lnr_new_client_sqlite("", "consumer", "127.0.0.1:0", path, NULL) == NULL);
  EXPECT(lnr_last_create_error_code() == LNR_ERR_INVALID_ARG);
  EXPECT(strlen(lnr_last_create_error()) > 0);

  /* A client on an SQLite file: created with the file, not running, then deleted once. */
  lnr_hClient client = lnr_new_client_sqlite("consumer", "consumer", "127.0.0.1:0", path, NULL);
  if (client == NULL) fprintf(stderr, "consumer: create: %s\n", lnr_last_create_error());
  EXPECT(client != NULL);
  EXPECT(lnr_last_create_error_code() == LNR_OK);
  EXPECT(access(path, F_OK) == 0);
  EXPECT(lnr_is_running(client) == FALSE);
  EXPECT(lnr_last_error_code(client) == LNR_OK);
  EXPECT(lnr_delete_client(client) == TRUE);
  EXPECT(lnr_delete_client(client) == FALSE); /* a stale handle is refused, not a crash */

  if (failures == 0) printf("consumer: ok (%s)\n", version);
  return failures == 0 ? 0 : 1;
}
