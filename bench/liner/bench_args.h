/*
 * bench_args.h - command line of bench_liner, as bench/PROTOCOL.md defines it.
 *
 *   bench_liner --role ROLE --size BYTES --count N --warmup W --redis URL --prefix PREFIX
 *               [--alo 0|1] [--port P] [--replica K] [--fanout 0|1] [--slow 0|1] [--batch M]
 *
 * Kept apart from liner_bench.c so that the program itself shows only how the C API is driven.
 * Every option the protocol knows is accepted by every role (the runner may pass a common set);
 * options a role has no use for are ignored. Anything else is a usage error: the caller prints
 * the message on stderr and exits 2, as the protocol asks.
 */
#ifndef BENCH_LINER_ARGS_H
#define BENCH_LINER_ARGS_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
  ROLE_PAIR_RECV,
  ROLE_PAIR_SEND,
  ROLE_PING_SERVER,
  ROLE_PING_CLIENT,
  ROLE_DRAIN_SEND,
  ROLE_DRAIN_RECV
} bench_role;

typedef struct {
  bench_role role;
  size_t size;         /* payload bytes, >= 8 (the sequence number) */
  uint64_t count;      /* N: measured messages / round trips */
  uint64_t warmup;     /* W: warm-up messages / round trips, sent first (seq 0..W-1) */
  const char* redis;   /* Redis URL handed to lnr_new_client_redis */
  const char* prefix;  /* per-run prefix of every name and topic */
  int alo;             /* at-least-once (default 1; drain roles always use 1) */
  int replica;         /* -1 = none; K >= 0: pair-recv shares PREFIX.sink under PREFIX.sink.K */
  int fanout;          /* pair-send: lnr_send_all instead of lnr_send_to */
  int slow;            /* receivers: 2 ms pause after every 1,000 messages, report max RSS */
  size_t batch;        /* pair-send: M > 1 sends the measured messages M per lnr_send_to_many */
} bench_opts;

/* Strict unsigned parse: the whole string must be a decimal number within `max`. */
static inline int bench_parse_u64(const char* s, uint64_t max, uint64_t* out) {
  if (!s || !*s || *s == '-' || *s == '+') return 0;
  for (const char* p = s; *p; ++p)
    if (*p < '0' || *p > '9') return 0;
  errno = 0;
  char* end = NULL;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v > max) return 0;
  *out = (uint64_t)v;
  return 1;
}

static inline int bench_parse_role(const char* s, bench_role* out) {
  static const struct {
    const char* name;
    bench_role role;
  } roles[] = {{"pair-recv", ROLE_PAIR_RECV},     {"pair-send", ROLE_PAIR_SEND},
               {"ping-server", ROLE_PING_SERVER}, {"ping-client", ROLE_PING_CLIENT},
               {"drain-send", ROLE_DRAIN_SEND},   {"drain-recv", ROLE_DRAIN_RECV}};
  for (size_t i = 0; i < sizeof roles / sizeof roles[0]; ++i)
    if (strcmp(s, roles[i].name) == 0) {
      *out = roles[i].role;
      return 1;
    }
  return 0;
}

/*
 * Fills *o from argv. Returns 1 on success; on a usage error returns 0 with a message in
 * err[0..errlen). Accepts "--name value" (the protocol's form) and "--name=value".
 */
static inline int bench_parse_args(int argc, char** argv, bench_opts* o, char* err, size_t errlen) {
  memset(o, 0, sizeof *o);
  o->alo = 1;
  o->replica = -1;
  o->batch = 1;
  int have_role = 0, have_size = 0, have_count = 0, have_warmup = 0;
  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    if (strncmp(arg, "--", 2) != 0) {
      snprintf(err, errlen, "unexpected argument '%s'", arg);
      return 0;
    }
    char name[32];
    const char* value = NULL;
    const char* eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    if (len >= sizeof name) {
      snprintf(err, errlen, "unknown option '%s'", arg);
      return 0;
    }
    memcpy(name, arg, len);
    name[len] = '\0';
    if (eq) {
      value = eq + 1;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      snprintf(err, errlen, "option %s needs a value", name);
      return 0;
    }
    uint64_t v = 0;
    if (strcmp(name, "--role") == 0) {
      if (!bench_parse_role(value, &o->role)) {
        snprintf(err, errlen,
                 "unknown role '%s' (pair-recv, pair-send, ping-server, ping-client, drain-send, drain-recv)",
                 value);
        return 0;
      }
      have_role = 1;
    } else if (strcmp(name, "--size") == 0) {
      /* 1 GiB - 21 is liner's default maximum message size. */
      if (!bench_parse_u64(value, (UINT64_C(1) << 30) - 21, &v) || v < 8) {
        snprintf(err, errlen, "--size must be a number of bytes >= 8, got '%s'", value);
        return 0;
      }
      o->size = (size_t)v;
      have_size = 1;
    } else if (strcmp(name, "--count") == 0) {
      if (!bench_parse_u64(value, UINT64_C(1) << 40, &o->count)) {
        snprintf(err, errlen, "--count must be a non-negative number, got '%s'", value);
        return 0;
      }
      have_count = 1;
    } else if (strcmp(name, "--warmup") == 0) {
      if (!bench_parse_u64(value, UINT64_C(1) << 40, &o->warmup)) {
        snprintf(err, errlen, "--warmup must be a non-negative number, got '%s'", value);
        return 0;
      }
      have_warmup = 1;
    } else if (strcmp(name, "--redis") == 0) {
      o->redis = value;
    } else if (strcmp(name, "--prefix") == 0) {
      o->prefix = value;
    } else if (strcmp(name, "--port") == 0) {
      /* For the socket baselines only; liner picks its own port. Checked, then ignored. */
      if (!bench_parse_u64(value, 65535, &v)) {
        snprintf(err, errlen, "--port must be 0..65535, got '%s'", value);
        return 0;
      }
    } else if (strcmp(name, "--alo") == 0 || strcmp(name, "--fanout") == 0 ||
               strcmp(name, "--slow") == 0) {
      if (!bench_parse_u64(value, 1, &v)) {
        snprintf(err, errlen, "%s must be 0 or 1, got '%s'", name, value);
        return 0;
      }
      if (name[2] == 'a') o->alo = (int)v;
      else if (name[2] == 'f') o->fanout = (int)v;
      else o->slow = (int)v;
    } else if (strcmp(name, "--batch") == 0) {
      if (!bench_parse_u64(value, 65536, &v) || v == 0) {
        snprintf(err, errlen, "--batch must be 1..65536, got '%s'", value);
        return 0;
      }
      o->batch = (size_t)v;
    } else if (strcmp(name, "--replica") == 0) {
      if (!bench_parse_u64(value, 1000000, &v)) {
        snprintf(err, errlen, "--replica must be a number >= 0, got '%s'", value);
        return 0;
      }
      o->replica = (int)v;
    } else {
      snprintf(err, errlen, "unknown option '%s'", name);
      return 0;
    }
  }
  if (!have_role || !have_size || !have_count || !have_warmup) {
    snprintf(err, errlen, "--role, --size, --count and --warmup are required");
    return 0;
  }
  if (!o->redis || !*o->redis || !o->prefix || !*o->prefix) {
    snprintf(err, errlen, "--redis URL and --prefix PREFIX are required");
    return 0;
  }
  if (strchr(o->prefix, ':') || strchr(o->prefix, '\\')) {
    /* liner.h: names are used raw in Redis key names; ':' and '\' would not match across versions. */
    snprintf(err, errlen, "--prefix must not contain ':' or '\\'");
    return 0;
  }
  if ((o->role == ROLE_DRAIN_SEND || o->role == ROLE_DRAIN_RECV) && o->warmup != 1) {
    /* The drain scenario hinges on exactly one message having gone through before (seq 0). */
    snprintf(err, errlen, "drain roles need --warmup 1");
    return 0;
  }
  if (o->role == ROLE_PING_CLIENT && o->count == 0) {
    snprintf(err, errlen, "ping-client needs --count >= 1 (percentiles of nothing)");
    return 0;
  }
  return 1;
}

#endif /* BENCH_LINER_ARGS_H */
