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
#include <stdint.h>

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
 *                     are done for you. Also:
 *                     - "rediss://…": TLS, the server's certificate always verified; settings in
 *                       the query: "?ca=FILE&cert=FILE&key=FILE&sni=NAME" (without ca=, the
 *                       system's trust store, SSL_CERT_FILE/SSL_CERT_DIR honoured);
 *                     - "redis+sentinel://[user:pass@]h1:p1,h2:p2/master_name[/db]": the master
 *                       that Redis Sentinel names, followed through fail-overs;
 *                     - "redis+cluster://[user:pass@]h1:p1[,h2:p2…]": a Redis Cluster;
 *                     - "rediss+sentinel://…", "rediss+cluster://…": the same over TLS.
 *                     docs/using-redis.md has examples. Any other store URL is taken too
 *                     ("sqlite:mesh.db": see lnr_new_client_sqlite()); a scheme no store serves
 *                     is LNR_ERR_INVALID_ARG. A server that fails TLS verification is
 *                     LNR_ERR_STORE with the reason; no message ever holds the password.
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
 * Creates a client whose store is the SQLite file `sqlite_path`, as liner_broker 1.3.1 does: for
 * peers on one host, with no server to run. The file is created when missing, in WAL mode, with
 * liner_broker's tables, so liner and liner_broker peers can share one file (docs/using-sqlite.md).
 * It must be on a local file system (not NFS or SMB: SQLite's locking does not hold there).
 *
 * @param sqlite_path     the file, absolute or relative to the working directory. ":memory:" is
 *                        refused: a client's threads each open the store, and cannot share one.
 * @param receivers_json  liner_broker's peer catalogue for peers on files of their own: NULL, "",
 *                        whitespace or "[]" for none (the usual case: peers share one file);
 *                        otherwise a JSON array of {"topic","addr","client_name"} written into the
 *                        file in one transaction before the call returns, as liner_broker does
 *                        (every such topic gets topic key 1, the first channel connection key 1).
 *                        Invalid JSON, or an entry without one of the three strings, returns NULL
 *                        with LNR_ERR_INVALID_ARG.
 * @return a handle, or NULL (lnr_last_create_error() says why: an invalid argument, or a file
 *         that cannot be opened or created, with the path and SQLite's reason).
 *
 * The other arguments mean what they mean for lnr_new_client_redis(); nothing is registered
 * until lnr_run().
 */
LNR_API lnr_hClient lnr_new_client_sqlite(const char* unique_name, const char* topic,
                                          const char* localhost, const char* sqlite_path,
                                          const char* receivers_json);

/**
 * Creates a client whose store is a PostgreSQL database, as liner_broker 1.3.1 built with its
 * `postgres` feature does: for peers on several hosts that already run PostgreSQL. liner uses
 * liner_broker's tables (created when missing), so liner and liner_broker peers can share one
 * database (docs/using-postgres.md).
 *
 * @param postgres_url  "postgres://user:pass@host:port/dbname" (or "postgresql://"), or libpq's
 *                      "host=... port=... dbname=... user=..." form. A connect timeout of 2 s is
 *                      added unless it sets one.
 * @return a handle, or NULL (lnr_last_create_error() says why, without the password). libpq
 *         (libpq.so.5) is loaded when the first PostgreSQL client is made: without it, NULL with
 *         LNR_ERR_STORE and a message naming the package to install.
 *
 * The other arguments mean what they mean for lnr_new_client_redis().
 */
LNR_API lnr_hClient lnr_new_client_postgres(const char* unique_name, const char* topic,
                                            const char* localhost, const char* postgres_url);

/** 1: this library has the PostgreSQL store (liner_broker's marker of its `postgres` feature). */
LNR_API uint8_t lnr_postgres_enabled(void);

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
 *        With nobody in the directory, an at-least-once message still goes to the peers of
 *        the topic this sender has sent to (also in an earlier run: it remembers them in
 *        Redis) unless they unsubscribed from it: it waits in Redis for them.
 *
 * Redis on the calling thread: only the first send to a topic reads its directory here (so
 * that nobody serving it fails at once with LNR_ERR_NO_ADDR, as liner_broker). A peer the
 * sender has no channel to yet (the first send to it, or a replica that joined since) gets its
 * channel opened on the client's own thread: the message waits for that in RAM (uncompressed:
 * up to the peer's send-queue message cap and 4 times its byte cap, then LNR_ERR_BUSY), and
 * then leaves in order, also while Redis is slow or down.
 * @return TRUE when the message was queued for sending. FALSE with LNR_ERR_NO_ADDR (nobody
 *         serves the topic, and for at-least-once no peer of it is waited for), LNR_ERR_SELF_TOPIC, LNR_ERR_NOT_RUNNING, LNR_ERR_INVALID_ARG,
 *         LNR_ERR_STORE (reading a new topic's directory failed), or LNR_ERR_BUSY (the peer's
 *         queue is full: retry later).
 * Thread: any, including inside a receive callback.
 */
LNR_API BOOL lnr_send_to(lnr_hClient client, const char* topic, const char* data, size_t data_size,
                         BOOL at_least_once_delivery);

/**
 * Sends one copy of the message to every peer serving `topic` (its source owners and its
 * subscribers). Same arguments and errors as lnr_send_to(); TRUE only if every copy was queued.
 * A peer whose queue is full (LNR_ERR_BUSY) does not hold the others up: their copies are queued
 * all the same. Retrying is safe: the next lnr_send_all from the same thread with the same
 * client, topic, bytes and delivery mode sends only the copies that were refused (the peers
 * that already have theirs get no second copy). Any other lnr_send_all from that thread ends
 * the retry: sending those same bytes again after that is a new message.
 */
LNR_API BOOL lnr_send_all(lnr_hClient client, const char* topic, const char* data, size_t data_size,
                          BOOL at_least_once_delivery);

/**
 * Sends `count` messages, in order, to ONE peer serving `topic`: round-robin picks the peer once
 * per call, so the batch arrives whole and in order. The batch costs one route look-up and one
 * lock of the peer's queue, where a loop of lnr_send_to() pays them per message.
 *
 * @param data, data_sizes  `count` payload pointers and their lengths, each as lnr_send_to()'s
 *                          data and data_size; all copied before return. Every message is
 *                          checked before any is queued: one that is empty, NULL or too big
 *                          refuses the whole batch (LNR_ERR_INVALID_ARG, naming its index).
 * @param at_least_once_delivery  as lnr_send_to()'s, for every message of the batch.
 * @param queued  may be NULL; otherwise set to how many messages were queued, counted from the
 *                first: `count` on success, fewer (possibly 0) with LNR_ERR_BUSY, 0 with any
 *                other error.
 * @return TRUE when all `count` messages were queued (also for count 0). FALSE with
 *         LNR_ERR_BUSY when the peer's queue filled up part-way: the first *queued went in; send
 *         the rest later (LNR_SENDER_WRITABLE says when). Any other error (those of
 *         lnr_send_to()) queued nothing.
 * Thread: any, including inside a receive callback.
 */
LNR_API BOOL lnr_send_to_many(lnr_hClient client, const char* topic, const char* const* data,
                              const size_t* data_sizes, size_t count, BOOL at_least_once_delivery,
                              size_t* queued);

/**
 * Subscribes to `topic`: registers this client's address under it, so messages sent to the
 * topic reach this client too (the callback sees `to` = topic). Allowed before and after run.
 * Refuses the own source topic (LNR_ERR_SELF_TOPIC).
 */
LNR_API BOOL lnr_subscribe(lnr_hClient client, const char* topic);

/**
 * Undoes lnr_subscribe(): removes this client's address from the topic's directory and marks
 * it as unsubscribed, so senders stop keeping at-least-once messages for it. Running senders
 * learn of it within a fraction of a second, at once after lnr_refresh_address_topic() (or when
 * they start); then sends to a topic nobody else serves return FALSE with LNR_ERR_NO_ADDR.
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


/* ---- liner_broker 1.4 extensions: lifecycle, status, introspection, limits ---------------- */

/**
 * Stops a running client without deleting it: removes its address from every directory it
 * registered in, sends what is queued (up to about 2 s), waits for acknowledgements, stores
 * unacknowledged at-least-once messages in Redis, writes its own acknowledgements and joins
 * its threads. Afterwards clear_* are allowed and lnr_run() starts it again (the callback may
 * change). Idempotent: TRUE on a stopped client. Not from the client's own receive callback.
 */
LNR_API BOOL lnr_stop(lnr_hClient client);

/** TRUE while the client runs (between a successful lnr_run() and lnr_stop()/delete). */
LNR_API BOOL lnr_is_running(lnr_hClient client);

/**
 * Status event kinds, as liner_broker 1.4 numbers them (LNR_SENDER_WRITABLE and
 * LNR_STORE_RECOVERED are liner's).
 *
 * A Redis outage is told once per side, not once per failed call: the first
 * LNR_SENDER_STORE_ERROR / LNR_LISTENER_STORE_ERROR when that side's connection is lost, then
 * nothing until LNR_STORE_RECOVERED (its message names the side and counts the errors not
 * told). A store error over a working connection (a key holding garbage) is told, the same
 * text again only after a pause that doubles from 1 s up to 1 min.
 */
enum {
  LNR_PEER_CONNECTED = 1,       /**< a peer joined a topic this client uses, or connected to it */
  LNR_PEER_DISCONNECTED = 2,    /**< a peer left such a topic, or its connection ended */
  LNR_PEER_SUBSCRIBED = 3,      /**< a peer subscribed to a topic this client uses */
  LNR_PEER_UNSUBSCRIBED = 4,    /**< a peer unsubscribed from a topic this client uses */
  LNR_SENDER_ROUTE_LOST = 5,    /**< connect failed, or a stream closed with messages in flight */
  LNR_SENDER_STORE_ERROR = 6,   /**< the sender could not read or write Redis */
  LNR_SENDER_SEND_ERROR = 7,    /**< a write to a peer failed, or messages waiting for their channel were dropped (client stopped before Redis answered) */
  LNR_LISTENER_STORE_ERROR = 8, /**< the listener could not read or write Redis */
  LNR_SENDER_BUSY = 9,          /**< a peer's send queue is full (sends fail with LNR_ERR_BUSY) */
  LNR_SENDER_WRITABLE = 10,     /**< liner: that queue has room again */
  LNR_STORE_RECOVERED = 11      /**< liner: Redis answers the sender or listener again */
};

/**
 * Status callback.
 * @param kind     one of the LNR_* kinds above.
 * @param topic    the topic concerned ("" if none). For listener-side events: the sender's
 *                 source topic.
 * @param peer     the peer's address ("" when unknown, e.g. a sender seen by a listener).
 * @param message  short free text.
 * Thread: runs on the client's background threads (sender, delivery, directory watch), possibly
 * concurrently with the receive callback; LNR_SENDER_BUSY runs on the thread whose send failed.
 * It must not stop or delete its own client (refused with LNR_ERR_INVALID_ARG). Strings are valid only during the call. It may call
 * the send and subscribe functions, but must not block for long: it holds up that thread.
 * "Topics this client uses" are those it sent to, refreshed, subscribed to or owns.
 */
typedef void (*lnr_status_cb)(int kind, const char* topic, const char* peer, const char* message,
                              lnr_uData udata);

/** Sets (or with NULL clears) the client's status callback. Allowed at any time. */
LNR_API BOOL lnr_set_status_cb(lnr_hClient client, lnr_status_cb cb, lnr_uData udata);

/** Log callback: one line per call, without a newline, prefixed "liner: ". */
typedef void (*lnr_log_cb)(const char* message, lnr_uData udata);

/**
 * Replaces stderr as the process-wide log sink (NULL restores stderr). The callback may run on
 * any thread, one call at a time; it must not call back into liner.
 */
LNR_API BOOL lnr_set_log_cb(lnr_log_cb cb, lnr_uData udata);

/** One directory row: an address serving the topic and the unique name registered with it. */
typedef void (*lnr_addr_cb)(const char* addr, const char* unique_name, lnr_uData udata);

/**
 * Calls cb once per address registered under `topic` (none if nobody serves it), and refreshes
 * the client's address cache for it. Works whether or not the client runs.
 */
LNR_API BOOL lnr_list_addresses(lnr_hClient client, const char* topic, lnr_addr_cb cb, lnr_uData udata);

/**
 * Messages waiting in this sender's offline queues in Redis (all peers), or -1 on error
 * (see lnr_last_error_code()). Messages still in RAM are not counted: see lnr_stats().
 */
LNR_API long long lnr_pending_count(lnr_hClient client);

/** One offline queue of this sender: peer address, topic, listener's unique name, length. */
typedef void (*lnr_pending_cb)(const char* addr, const char* topic, const char* unique_name,
                               long long count, lnr_uData udata);

/** Calls cb once per peer this sender has an offline queue for. */
LNR_API BOOL lnr_pending_by_peer(lnr_hClient client, lnr_pending_cb cb, lnr_uData udata);

/**
 * Process-wide limits, read by every client at use time.
 * - max message size: largest payload in bytes that send accepts and a listener reads
 *   (default 1 GiB - 21<!-- value: maxMessageSize -->, so that frames fit liner_broker 1.3.1's 1 GiB bound). 0 is refused.
 *   Listeners apply it from their next lnr_run().
 * - compress threshold: payloads strictly larger are zstd-compressed (default 1 MiB<!-- value: compressThreshold -->). 0 refused.
 * - max send queue: messages per peer held in RAM (queued or awaiting acknowledgement) before
 *   sends fail with LNR_ERR_BUSY; 0<!-- value: maxSendQueueMessages --> (default) = no count limit. A byte limit of 8 MiB per peer
 *   always applies (lnr_set_max_send_queue_bytes).
 * Every lnr_set_* of a limit (these and the store wait and lease below) returns TRUE, or FALSE
 * for a value out of its range: then nothing changes, and the log (lnr_set_log_cb) gets one
 * line saying why, in the words the Python and TypeScript bindings use too:
 * "liner: lnr_set_max_message_size: max message size must be from 1 to 1073741803 bytes, not 0".
 * (No handle records it: lnr_last_error_code() is about a client.)
 */
LNR_API BOOL lnr_set_max_message_size(size_t bytes);
LNR_API size_t lnr_get_max_message_size(void);
LNR_API BOOL lnr_set_compress_threshold(size_t bytes);
LNR_API size_t lnr_get_compress_threshold(void);
LNR_API BOOL lnr_set_max_send_queue(size_t messages);
LNR_API size_t lnr_get_max_send_queue(void);
/** liner: bytes per peer held in RAM before LNR_ERR_BUSY (default 8 MiB<!-- value: maxSendQueueBytes -->). 0 is refused. */
LNR_API BOOL lnr_set_max_send_queue_bytes(size_t bytes);
LNR_API size_t lnr_get_max_send_queue_bytes(void);

/**
 * liner: how long, in milliseconds, lnr_new_client_redis() and lnr_run() keep trying a Redis
 * that does not answer (refuses connections, does not reply, or replies LOADING) before they
 * fail with LNR_ERR_STORE: for services that may start before their Redis. Tries are 100 ms
 * apart, then up to 1 s. Default 0<!-- value: storeWaitMs -->: fail at once, as liner_broker does. At most
 * 3,600,000 (an hour); more is refused. Process-wide, read when a client is created or run.
 * lnr_run() waits without holding the client: other calls on it fail as usual meanwhile.
 */
LNR_API BOOL lnr_set_store_wait(size_t ms);
LNR_API size_t lnr_get_store_wait(void);

/**
 * liner: how long, in milliseconds, a running client's directory entries outlive its last
 * lease renewal. Each running client renews its lease every second; one that crashed, was
 * killed or lost Redis for longer is removed from the directory by the next client that reads
 * the topic, about this long after (announced as PEER_DISCONNECTED), and registers again by
 * itself if it was only cut off. Default 7000<!-- value: leaseMs -->; from 3000 to 3,600,000 (an hour), else
 * refused. Process-wide, read at each renewal. liner_broker peers hold no lease: their entries
 * are never removed so.
 */
LNR_API BOOL lnr_set_lease(size_t ms);
LNR_API size_t lnr_get_lease(void);

/**
 * Sets the address registered in the directory instead of the bound one, e.g. when binding to
 * 0.0.0.0 or behind NAT. A literal "ip:port" or "[v6]:port"; port 0 stands for the bound port.
 * NULL or "" clears it. Only before lnr_run() (LNR_ERR_ALREADY_RUNNING otherwise).
 */
LNR_API BOOL lnr_set_advertise_addr(lnr_hClient client, const char* addr);

/** The advertise address set, or NULL. Same lifetime rules as lnr_bound_listen_addr(). */
LNR_API const char* lnr_advertise_addr(lnr_hClient client);

/** The address registered in the directory while running; NULL when not running. */
LNR_API const char* lnr_published_addr(lnr_hClient client);

/**
 * Hand-over (on by default). At-least-once messages sent with lnr_send_to() or
 * lnr_send_to_many() that wait - in RAM or in Redis - for a peer that has left their topic (its
 * lease lapsed, it stopped or was scaled down; not one that unsubscribed) go to the topic's
 * remaining peers, about a second after this client learns of the departure. With no peer
 * left they wait for that one. Copies made by lnr_send_all() are never handed over.
 * A handed message may arrive twice (at-least-once): at the departed peer too if it returns
 * before the replica acknowledged it, or at two replicas if the first to take it leaves too.
 * FALSE: peer affinity - messages wait for the peer they were sent to, as in liner_broker.
 * Only before lnr_run() (LNR_ERR_ALREADY_RUNNING otherwise); messages a run stored are marked
 * by that run's setting. docs/routing-and-redis-keys.md states the rule and its key.
 */
LNR_API BOOL lnr_set_handover(lnr_hClient client, BOOL on);
/** Whether hand-over is on: 1, 0, or -1 for an invalid handle. */
LNR_API int lnr_handover(lnr_hClient client);

/**
 * liner: counters of a client since creation (queue depths: now). Set `size` to
 * sizeof(lnr_stats_t) before the call; fields beyond it are not written, so programs built
 * against an older, shorter struct keep working.
 */
typedef struct lnr_stats_t {
  size_t size;
  unsigned long long messages_sent;      /**< frames written to peers */
  unsigned long long bytes_sent;
  unsigned long long messages_delivered; /**< passed to the receive callback */
  unsigned long long bytes_delivered;
  unsigned long long duplicates;         /**< received again and dropped */
  unsigned long long persisted;          /**< stored in offline queues */
  unsigned long long reloaded;           /**< read back from offline queues */
  unsigned long long dropped;            /**< best-effort messages to unreachable peers */
  unsigned long long reconnects;         /**< connections to peers that broke */
  unsigned long long send_queue_messages;
  unsigned long long send_queue_bytes;
  unsigned long long receive_queue_bytes;
} lnr_stats_t;

LNR_API BOOL lnr_stats(lnr_hClient client, lnr_stats_t* out);

#ifdef __cplusplus
}
#endif

#endif /* LINER_H */
