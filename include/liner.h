/*
 * liner.h - C API of liner, a serverless peer-to-peer message broker.
 *
 * liner peers find each other through Redis ("topic -> TCP address") and exchange
 * length-prefixed frames over plain TCP. Redis also keeps the offline queue and the
 * acknowledgement ledger. There is no broker process.
 *
 * This header is source- and ABI-compatible with liner_broker 1.3.1 (every 1.3.1 function
 * is here, with the same semantics), and adds a few functions that are marked
 * "liner extension" below. It is implemented by the shared library libliner_broker.
 *
 * General rules
 * -------------
 * - Strings are NUL-terminated UTF-8. A NULL, empty or invalid UTF-8 string where a name is
 *   expected is refused: the call returns FALSE / NULL and records LNR_ERR_INVALID_ARG.
 * - Every function that takes a client handle records its outcome on that handle: read it
 *   with lnr_last_error_code() / lnr_last_error_message() right after the call, from the
 *   same thread. A successful call resets it to LNR_OK.
 * - Handles may be used from any thread; calls on one handle are serialised internally.
 * - Messages are copied: the caller keeps ownership of every buffer it passes in.
 * - BOOL results are full 32-bit values 0 or 1 (liner_broker 1.3.1 returned a one-byte bool;
 *   a full 0/1 int satisfies callers that read either width).
 * - A NULL handle or a handle that was already deleted is detected and refused; it never
 *   crashes the process.
 */
#ifndef LINER_H
#define LINER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define LNR_API __declspec(dllexport)
#else
#define LNR_API __attribute__((visibility("default")))
#endif

#ifndef LNR_BOOL_DEFINED
#define LNR_BOOL_DEFINED
typedef enum BOOL { FALSE = 0, TRUE = 1 } BOOL;
#endif

/** Opaque user pointer handed back to callbacks unchanged. */
typedef void* lnr_uData;
/** Opaque client handle, created by lnr_new_client_redis(), released by lnr_delete_client(). */
typedef void* lnr_hClient;

/**
 * Receive callback.
 *
 * @param to        topic the message was addressed to: the client's own source topic or one of
 *                  its subscriptions (UTF-8, NUL-terminated).
 * @param from      source topic of the sending client ("" if it cannot be resolved).
 * @param data      payload bytes, already decompressed. Not NUL-terminated.
 * @param data_size payload length in bytes (>= 1).
 * @param udata     the pointer given to lnr_run().
 *
 * Thread: called on the client's single delivery thread, so calls for one client never overlap.
 * Pointers are valid only during the call: copy what you keep. The callback may call
 * lnr_send_to(), lnr_send_all(), lnr_subscribe() and lnr_unsubscribe() on any client, but must
 * not call lnr_delete_client() on its own client (refused with LNR_ERR_INVALID_ARG).
 * A message counts as delivered (and is acknowledged to its sender) once the callback returns.
 */
typedef void (*lnr_receive_cb)(const char* to, const char* from, const char* data, size_t data_size,
                               lnr_uData udata);

/** Error codes, as liner_broker 1.4 numbers them. */
enum {
  LNR_OK = 0,
  LNR_ERR_NOT_RUNNING = 1,         /**< the call needs a running client (lnr_run first) */
  LNR_ERR_ALREADY_RUNNING = 2,     /**< the call needs a stopped client */
  LNR_ERR_SELF_TOPIC = 3,          /**< the topic is the client's own source topic */
  LNR_ERR_INTERNAL_TOPIC = 4,      /**< the topic is reserved by liner */
  LNR_ERR_NO_ADDR = 5,             /**< no peer serves the topic (directory empty) */
  LNR_ERR_BIND = 6,                /**< the listen address cannot be resolved or bound */
  LNR_ERR_STORE = 7,               /**< Redis is unreachable or answered with an error */
  LNR_ERR_INVALID_ARG = 8,         /**< NULL / empty / invalid UTF-8 / oversize argument */
  LNR_ERR_CLEAR_WHILE_RUNNING = 9, /**< clear_* needs a client that is not running */
  LNR_ERR_STARTUP = 10,            /**< the client could not start its threads or listener */
  LNR_ERR_BUSY = 11                /**< a per-peer send queue is full: retry later */
};

/**
 * Creates a client that uses Redis as its store.
 *
 * @param unique_name  name of this client, unique across the mesh (used in Redis key names).
 * @param topic        the client's source topic: what it listens on, and what receivers see
 *                     as `from`.
 * @param localhost    TCP address to listen on, "host:port" or "[v6]:port". Port 0 picks a free
 *                     port. Its form is checked here (LNR_ERR_INVALID_ARG); the host is
 *                     resolved and bound by lnr_run().
 * @param redis_url    "redis://[user:pass@]host[:port][/db]" (default port 6379, db 0) or
 *                     "unix:///path/to/socket" ("redis+unix://" also accepted). AUTH and SELECT
 *                     are done for you.
 * @return a handle, or NULL when an argument is invalid or Redis cannot be reached within about
 *         2 s. On NULL, lnr_last_create_error() and lnr_last_create_error_code() say why.
 *
 * Nothing is registered in Redis until lnr_run(). Names are used raw in Redis key names, as
 * liner_broker 1.3.1 does: avoid ':' and '\\' in them (liner_broker >= 1.3.3 escapes those
 * characters, so such names would not match across versions).
 */
LNR_API lnr_hClient lnr_new_client_redis(const char* unique_name, const char* topic,
                                         const char* localhost, const char* redis_url);

/** Deprecated alias of lnr_new_client_redis(), kept for liner_broker 1.3.1 callers. */
LNR_API lnr_hClient lnr_new_client(const char* unique_name, const char* topic,
                                   const char* localhost, const char* redis_url);

/**
 * liner_broker's SQLite store is not part of liner: always returns NULL, and
 * lnr_last_create_error() says so. Present so that 1.3.1 binaries link.
 */
LNR_API lnr_hClient lnr_new_client_sqlite(const char* unique_name, const char* topic,
                                          const char* localhost, const char* sqlite_path,
                                          const char* receivers_json);

/**
 * Starts the client: binds its listen address, registers it under the source topic and every
 * subscription, starts its threads, and reconnects to the peers it had pending messages for.
 *
 * @param receive_cb  called for every delivered message (see lnr_receive_cb); must not be NULL.
 * @param udata       handed to receive_cb unchanged.
 * @return TRUE when running. Calling it on a running client returns TRUE and keeps the first
 *         callback. FALSE with LNR_ERR_BIND (address), LNR_ERR_STORE (Redis) or
 *         LNR_ERR_STARTUP; a failed run leaves nothing registered.
 */
LNR_API BOOL lnr_run(lnr_hClient client, lnr_receive_cb receive_cb, lnr_uData udata);

/**
 * Sends one message to one peer serving `topic` (round-robin over the topic's addresses,
 * skipping peers that are currently unreachable when another one is up).
 *
 * @param data, data_size  payload, copied before return; 1 byte .. the max message size (1 GiB).
 *                         Payloads above 1 MiB are zstd-compressed on the wire.
 * @param at_least_once_delivery  non-zero (its low byte is read, as 1.3.1 did): the message is
 *        kept until the receiver acknowledges it and stored in Redis while the peer is offline,
 *        then delivered when it comes back. Zero: best effort, dropped if the peer is down.
 * @return TRUE when the message was queued for sending. FALSE with LNR_ERR_NO_ADDR (nobody
 *         serves the topic), LNR_ERR_SELF_TOPIC, LNR_ERR_NOT_RUNNING, LNR_ERR_INVALID_ARG,
 *         LNR_ERR_STORE, or LNR_ERR_BUSY (the peer's queue is full: retry later).
 * Thread: any, including inside a receive callback.
 */
LNR_API BOOL lnr_send_to(lnr_hClient client, const char* topic, const char* data, size_t data_size,
                         BOOL at_least_once_delivery);

/**
 * Sends one copy of the message to every peer serving `topic` (its source owners and its
 * subscribers). Same arguments and errors as lnr_send_to(); TRUE only if every copy was queued.
 */
LNR_API BOOL lnr_send_all(lnr_hClient client, const char* topic, const char* data, size_t data_size,
                          BOOL at_least_once_delivery);

/**
 * Subscribes to `topic`: registers this client's address under it, so messages sent to the
 * topic reach this client too (the callback sees `to` = topic). Allowed before and after run.
 * Refuses the own source topic (LNR_ERR_SELF_TOPIC).
 */
LNR_API BOOL lnr_subscribe(lnr_hClient client, const char* topic);

/**
 * Undoes lnr_subscribe(): removes this client's address from the topic's directory. Running
 * senders learn of it within a fraction of a second; sends to a topic nobody serves any more
 * return FALSE with LNR_ERR_NO_ADDR.
 */
LNR_API BOOL lnr_unsubscribe(lnr_hClient client, const char* topic);

/**
 * Re-reads the topic's addresses from Redis. Liner keeps them current by itself; this forces
 * it. TRUE iff at least one address serves the topic.
 */
LNR_API BOOL lnr_refresh_address_topic(lnr_hClient client, const char* topic);

/**
 * Deletes the offline queues and acknowledgement counters of every channel this client sends
 * on, and its sender->listener map. Only while not running (LNR_ERR_CLEAR_WHILE_RUNNING).
 */
LNR_API BOOL lnr_clear_stored_messages(lnr_hClient client);

/**
 * Deletes the whole address directory of the client's source topic (other replicas too).
 * Only while not running (LNR_ERR_CLEAR_WHILE_RUNNING).
 */
LNR_API BOOL lnr_clear_addresses_of_topic(lnr_hClient client);

/**
 * Stops and frees the client: removes its address from every directory it registered in,
 * sends what is queued (waiting up to about 2 s), stores unacknowledged at-least-once messages
 * in Redis, flushes its acknowledgements and joins its threads. The handle is invalid
 * afterwards; deleting it again returns FALSE (it is detected, not a crash).
 */
LNR_API BOOL lnr_delete_client(lnr_hClient client);

/* ---- liner extensions (also in liner_broker 1.4) ------------------------------------------ */

/** Static version string of the library, e.g. "1.3.1-liner.0.1.0". */
LNR_API const char* lnr_version(void);

/** Code of the last call on `client` (LNR_OK for a NULL or unknown handle). */
LNR_API int lnr_last_error_code(lnr_hClient client);

/**
 * Message of the last call on `client`: "" when it succeeded, NULL for a NULL or unknown
 * handle. Owned by the client; valid until its next call from the same thread.
 */
LNR_API const char* lnr_last_error_message(lnr_hClient client);

/**
 * Why the last lnr_new_client_* call on this thread returned NULL ("" if it succeeded).
 * Thread-local; valid until the next creation call on this thread.
 */
LNR_API const char* lnr_last_create_error(void);

/** LNR_ERR_* code of the last lnr_new_client_* call on this thread (LNR_OK if it succeeded). */
LNR_API int lnr_last_create_error_code(void);

/**
 * The address the listener is bound to ("127.0.0.1:40123"), known after the first successful
 * lnr_run(); NULL before. Owned by the client, valid until it is deleted.
 */
LNR_API const char* lnr_bound_listen_addr(lnr_hClient client);

#ifdef __cplusplus
}
#endif

#endif /* LINER_H */
