// include/liner.h over the core. Handles are registry ids, not pointers, so a stale or doubly
// deleted handle is recognised and refused instead of touching freed memory.
#include "liner.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "core/client.hpp"
#include "core/limits.hpp"
#include "core/log.hpp"
#include "core/per_thread.hpp"
#include "core/postgres_store.hpp"
#include "core/sqlite_store.hpp"
#include "core/receivers_json.hpp"

using liner::Client;
using liner::Err;
using liner::LimitId;
using liner::Status;

namespace {

std::mutex g_registry_mu;
std::map<uintptr_t, std::shared_ptr<Client>> g_registry;
uintptr_t g_next_id = 0x1000;  // handles are never reused
// Bumped (under g_registry_mu) whenever a handle is deleted: per-thread caches of the last
// handle looked up are only trusted while it has not moved.
std::atomic<uint64_t> g_registry_generation{0};

// What a thread keeps between its calls, in one object (see PerThread: one TLS look-up): the
// outcome of its last call per client, so concurrent threads do not overwrite each other's
// error, and the caches of the send path.
struct ThreadState {
  std::map<uintptr_t, Status> errors;  // outcome of this thread's last call, per client
  uintptr_t slot_id = 0;               // the last errors entry used (std::map nodes stay put
  Status* slot = nullptr;              // until erased, and only lnr_delete_client erases)
  // The last handle looked up: weakly (a deleted client is not kept alive by a cache), and
  // trusted only while g_registry_generation has not moved.
  uintptr_t handle_id = 0;
  uint64_t handle_generation = 0;
  std::weak_ptr<Client> handle;
  std::string checked_topic;  // see with_topic; valid while non-empty
  int topic_depth = 0;
};
ThreadState& thread_state() { return liner::PerThread<ThreadState>::get(); }
thread_local std::string t_create_error;
thread_local int t_create_code = LNR_OK;

uintptr_t id_of(lnr_hClient h) { return reinterpret_cast<uintptr_t>(h); }

// [[gnu::noclone]] on the helpers that take the ThreadState: a clone specialised for the
// default argument would look the thread_local up again, the very call passing it saves.
[[gnu::noclone]] std::shared_ptr<Client> lookup(lnr_hClient h, ThreadState& t = thread_state()) {
  // A thread mostly calls with one handle: skip the registry lock while no handle was deleted
  // since it was looked up.
  uint64_t generation = g_registry_generation.load(std::memory_order_acquire);
  if (t.handle_id == id_of(h) && t.handle_generation == generation) {
    if (auto client = t.handle.lock()) return client;
  }
  std::lock_guard<std::mutex> lock(g_registry_mu);
  auto it = g_registry.find(id_of(h));
  if (it == g_registry.end()) return nullptr;
  t.handle_id = id_of(h);
  t.handle_generation = g_registry_generation.load(std::memory_order_relaxed);
  t.handle = it->second;
  return it->second;
}

[[gnu::noclone]] Status& error_slot(uintptr_t id, ThreadState& t = thread_state()) {
  if (t.slot_id != id) {
    t.slot = &t.errors[id];
    t.slot_id = id;
  }
  return *t.slot;
}

bool valid_utf8(const char* s) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(s);
  while (*p) {
    unsigned c = *p;
    int extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : -1;
    if (extra < 0) return false;
    uint32_t cp = extra == 0 ? c : extra == 1 ? (c & 0x1f) : extra == 2 ? (c & 0x0f) : (c & 0x07);
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    static const uint32_t min_cp[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += extra + 1;
  }
  return true;
}

// Checks a string argument the way every entry point needs it.
Status check_string(const char* s, const char* what) {
  if (!s) return Status(Err::invalid_arg, std::string("null pointer argument: ") + what);
  if (!*s) return Status(Err::invalid_arg, std::string(what) + " empty");
  if (!valid_utf8(s)) return Status(Err::invalid_arg, std::string(what) + " is not valid UTF-8");
  return Status();
}

// Strings handed out by the address getters: kept per thread, client and getter, so they stay
// valid until the same thread asks again. NULL for "".
const char* kept_string(lnr_hClient h, int which, std::string value) {
  static thread_local std::map<std::pair<uintptr_t, int>, std::string> kept;
  if (value.empty()) return nullptr;
  return (kept[{id_of(h), which}] = std::move(value)).c_str();
}

[[gnu::noclone]] BOOL finish(uintptr_t id, const char* fn, Status s, ThreadState& t = thread_state()) {
  if (!s.ok() && s.code != Err::busy) liner::log_line(std::string(fn) + ": " + s.message);
  bool ok = s.ok();
  Status& slot = error_slot(id, t);
  // A plain OK over a plain OK changes nothing: the hot path skips the assignment.
  if (!ok || !slot.ok() || !s.message.empty() || !slot.message.empty()) slot = std::move(s);
  return ok ? TRUE : FALSE;
}

// A process-wide limit: no handle records the outcome, so a refusal is told in the log, as
// the core words it ("lnr_set_lease: lease must be from 3000 to 3600000 ms, not 100").
BOOL set_limit(const char* fn, liner::LimitId id, size_t value) {
  Status s = liner::set_limit(id, value);
  if (!s) liner::log_line(std::string(fn) + ": " + s.message);
  return s ? TRUE : FALSE;
}

BOOL bad_handle(const char* fn) {
  liner::log_line(std::string(fn) + ": client was not created (NULL or deleted handle)");
  return FALSE;
}

template <class Call>
BOOL with_client(lnr_hClient h, const char* fn, ThreadState& t, Call&& call) {
  auto client = lookup(h, t);
  if (!client) return bad_handle(fn);
  return finish(id_of(h), fn, call(*client), t);
}

template <class Call>
BOOL with_client(lnr_hClient h, const char* fn, Call&& call) {
  return with_client(h, fn, thread_state(), std::forward<Call>(call));
}

// The topic argument as a checked std::string. A stream of sends to one topic is the hot path:
// the outermost call on a thread reuses that thread's buffer (no allocation) and skips the UTF-8
// check when the topic is the one it checked last. A nested call (from a callback that runs
// inside a send, such as LNR_SENDER_BUSY) gets a string of its own, so the outer one's stays
// intact.
template <class Call>
BOOL with_topic(lnr_hClient h, const char* fn, const char* topic, Call&& call) {
  ThreadState& t = thread_state();
  std::string& checked = t.checked_topic;
  int& depth = t.topic_depth;
  return with_client(h, fn, t, [&](Client& c) {
    if (depth > 0) {
      Status s = check_string(topic, "topic");
      return s ? call(c, std::string(topic)) : s;
    }
    if (!topic || checked.empty() || std::strcmp(topic, checked.c_str()) != 0) {
      checked.clear();
      Status s = check_string(topic, "topic");
      if (!s) return s;
      checked.assign(topic);
    }
    ++depth;
    Status result = call(c, checked);
    --depth;
    return result;
  });
}

// The hot path of the whole API: [[gnu::flatten]] folds its layers of helpers and lambdas into
// one function. It pays, with the send path's other inlining attributes (client_send.cpp,
// sender_enqueue.cpp): without them, npm run bench's C API 100 B pair rows lost 6-12 %.
[[gnu::flatten]] BOOL send(lnr_hClient h, const char* fn, const char* topic, const char* data, size_t size, BOOL alo,
          bool all) {
  // 1.3.1's Rust side read a one-byte bool: honour the low byte only.
  bool at_least_once = (static_cast<unsigned>(alo) & 0xffu) != 0;
  return with_topic(h, fn, topic, [&](Client& c, const std::string& t) {
    if (size > 0 && !data) return Status(Err::invalid_arg, "null pointer argument: data");
    return all ? c.send_all(t, data, size, at_least_once) : c.send_to(t, data, size, at_least_once);
  });
}

// What every lnr_new_client_* does: checks its arguments, creates the client on the store that
// `store_arg` names (a URL, or for SQLite a file path), seeds liner_broker's `receivers_json`
// (SQLite only: NULL for the other stores), and records why it failed for lnr_last_create_error().
enum class StoreArg { url, sqlite_path, postgres_url };
lnr_hClient new_client(const char* fn, const char* unique_name, const char* topic, const char* localhost,
                       const char* store_arg, StoreArg kind, const char* receivers_json) {
  Status s = check_string(unique_name, "unique_name");
  if (s) s = check_string(topic, "topic");
  if (s) s = check_string(localhost, "localhost");
  if (s) s = check_string(store_arg, kind == StoreArg::url           ? "store_path"
                                     : kind == StoreArg::sqlite_path ? "sqlite_path"
                                                                     : "postgres_url");
  std::vector<liner::SeedReceiver> receivers;
  if (s && receivers_json && *receivers_json) s = check_string(receivers_json, "receivers_json");
  if (s && receivers_json) s = liner::parse_receivers_json(receivers_json, &receivers);
  std::string store_url;
  if (s) {
    store_url = kind == StoreArg::url           ? std::string(store_arg)
                : kind == StoreArg::sqlite_path ? liner::sqlite_store_url(store_arg)
                                                : liner::postgres_store_url(store_arg);
  }
  std::unique_ptr<Client> client;
  if (s) {
    liner::ClientOptions o;
    o.unique_name = unique_name;
    o.topic = topic;
    o.localhost = localhost;
    o.store_url = store_url;
    s = Client::create(o, &client);
    if (s && !receivers.empty()) s = liner::seed_receivers(o.store_url, o.unique_name, o.topic, o.localhost, receivers);
  }
  if (!s) {
    liner::log_line(std::string(fn) + ": " + s.message);
    t_create_error = s.message;
    t_create_code = int(s.code);
    return nullptr;
  }
  t_create_error.clear();
  t_create_code = LNR_OK;
  std::lock_guard<std::mutex> lock(g_registry_mu);
  uintptr_t id = g_next_id++;
  g_registry[id] = std::shared_ptr<Client>(client.release());
  return reinterpret_cast<lnr_hClient>(id);
}

}  // namespace

extern "C" {

LNR_API lnr_hClient lnr_new_client_redis(const char* unique_name, const char* topic,
                                         const char* localhost, const char* redis_url) {
  return new_client("lnr_new_client_redis", unique_name, topic, localhost, redis_url, StoreArg::url, nullptr);
}

LNR_API lnr_hClient lnr_new_client(const char* unique_name, const char* topic, const char* localhost,
                                   const char* redis_url) {
  return lnr_new_client_redis(unique_name, topic, localhost, redis_url);
}

LNR_API lnr_hClient lnr_new_client_sqlite(const char* unique_name, const char* topic, const char* localhost,
                                          const char* sqlite_path, const char* receivers_json) {
  return new_client("lnr_new_client_sqlite", unique_name, topic, localhost, sqlite_path, StoreArg::sqlite_path,
                    receivers_json ? receivers_json : "");
}

LNR_API lnr_hClient lnr_new_client_postgres(const char* unique_name, const char* topic, const char* localhost,
                                            const char* postgres_url) {
  return new_client("lnr_new_client_postgres", unique_name, topic, localhost, postgres_url, StoreArg::postgres_url,
                    nullptr);
}

LNR_API uint8_t lnr_postgres_enabled(void) { return 1; }

LNR_API BOOL lnr_run(lnr_hClient client, lnr_receive_cb receive_cb, lnr_uData udata) {
  return with_client(client, "lnr_run", [&](Client& c) {
    if (!receive_cb) return Status(Err::invalid_arg, "null pointer argument: receive_cb");
    return c.run([receive_cb, udata](const std::string& to, const std::string& from, const char* data,
                                     size_t size) { receive_cb(to.c_str(), from.c_str(), data, size, udata); });
  });
}

LNR_API BOOL lnr_send_to(lnr_hClient client, const char* topic, const char* data, size_t data_size,
                         BOOL at_least_once_delivery) {
  return send(client, "lnr_send_to", topic, data, data_size, at_least_once_delivery, false);
}

LNR_API BOOL lnr_send_all(lnr_hClient client, const char* topic, const char* data, size_t data_size,
                          BOOL at_least_once_delivery) {
  return send(client, "lnr_send_all", topic, data, data_size, at_least_once_delivery, true);
}

LNR_API BOOL lnr_send_to_many(lnr_hClient client, const char* topic, const char* const* data,
                              const size_t* data_sizes, size_t count, BOOL at_least_once_delivery,
                              size_t* queued) {
  if (queued) *queued = 0;
  bool at_least_once = (static_cast<unsigned>(at_least_once_delivery) & 0xffu) != 0;
  return with_topic(client, "lnr_send_to_many", topic, [&](Client& c, const std::string& t) {
    if (count > 0 && (!data || !data_sizes))
      return Status(Err::invalid_arg, std::string("null pointer argument: ") + (data ? "data_sizes" : "data"));
    // One allocation per batch: next to copying the messages themselves, it does not count.
    std::vector<liner::Payload> messages;
    try {
      messages.resize(count);
    } catch (const std::exception&) {  // length_error or bad_alloc: a count no array can have
      return Status(Err::invalid_arg, "count " + std::to_string(count) + " is more messages than memory holds");
    }
    for (size_t i = 0; i < count; ++i) messages[i] = {data[i], data_sizes[i]};
    size_t done = 0;
    Status s = c.send_to_many(t, messages.data(), count, at_least_once, &done);
    if (queued) *queued = done;
    return s;
  });
}

LNR_API BOOL lnr_subscribe(lnr_hClient client, const char* topic) {
  return with_topic(client, "lnr_subscribe", topic,
                    [](Client& c, const std::string& t) { return c.subscribe(t); });
}

LNR_API BOOL lnr_unsubscribe(lnr_hClient client, const char* topic) {
  return with_topic(client, "lnr_unsubscribe", topic,
                    [](Client& c, const std::string& t) { return c.unsubscribe(t); });
}

LNR_API BOOL lnr_refresh_address_topic(lnr_hClient client, const char* topic) {
  return with_topic(client, "lnr_refresh_address_topic", topic,
                    [](Client& c, const std::string& t) { return c.refresh_address_topic(t); });
}

LNR_API BOOL lnr_clear_stored_messages(lnr_hClient client) {
  return with_client(client, "lnr_clear_stored_messages", [](Client& c) { return c.clear_stored_messages(); });
}

LNR_API BOOL lnr_clear_addresses_of_topic(lnr_hClient client) {
  return with_client(client, "lnr_clear_addresses_of_topic",
                     [](Client& c) { return c.clear_addresses_of_topic(); });
}

LNR_API BOOL lnr_delete_client(lnr_hClient client) {
  std::shared_ptr<Client> c;
  {
    std::lock_guard<std::mutex> lock(g_registry_mu);
    auto it = g_registry.find(id_of(client));
    if (it == g_registry.end()) return bad_handle("lnr_delete_client");
    if (it->second->in_callback())
      return finish(id_of(client), "lnr_delete_client",
                    Status(Err::invalid_arg, "a client cannot be deleted from its own receive callback"));
    c = std::move(it->second);
    g_registry.erase(it);
    g_registry_generation.fetch_add(1, std::memory_order_release);
  }
  ThreadState& t = thread_state();
  if (t.slot_id == id_of(client)) t.slot_id = 0;
  t.errors.erase(id_of(client));
  c->stop();
  return TRUE;  // the last reference (ours, or a call still in flight) frees it
}

LNR_API const char* lnr_version(void) { return "1.3.1-liner.0.1.0"; }

LNR_API int lnr_last_error_code(lnr_hClient client) {
  if (!lookup(client)) return LNR_OK;
  ThreadState& t = thread_state();
  auto it = t.errors.find(id_of(client));
  return it == t.errors.end() ? LNR_OK : int(it->second.code);
}

LNR_API const char* lnr_last_error_message(lnr_hClient client) {
  if (!lookup(client)) return nullptr;
  return error_slot(id_of(client)).message.c_str();
}

LNR_API const char* lnr_last_create_error(void) { return t_create_error.c_str(); }

LNR_API int lnr_last_create_error_code(void) { return t_create_code; }

LNR_API const char* lnr_bound_listen_addr(lnr_hClient client) {
  auto c = lookup(client);
  return c ? kept_string(client, 0, c->bound_address()) : nullptr;
}

LNR_API BOOL lnr_stop(lnr_hClient client) {
  return with_client(client, "lnr_stop", [](Client& c) { return c.stop(); });
}

LNR_API BOOL lnr_is_running(lnr_hClient client) {
  bool running = false;
  BOOL known = with_client(client, "lnr_is_running", [&](Client& c) {
    running = c.running();
    return Status();
  });
  return known && running ? TRUE : FALSE;
}

LNR_API BOOL lnr_set_status_cb(lnr_hClient client, lnr_status_cb cb, lnr_uData udata) {
  return with_client(client, "lnr_set_status_cb", [&](Client& c) {
    if (!cb) {
      c.set_status_handler(nullptr);
    } else {
      c.set_status_handler([cb, udata](const liner::StatusEvent& e) {
        cb(int(e.kind), e.topic.c_str(), e.peer.c_str(), e.message.c_str(), udata);
      });
    }
    return Status();
  });
}

LNR_API BOOL lnr_set_log_cb(lnr_log_cb cb, lnr_uData udata) {
  liner::set_log_sink(cb, udata);
  return TRUE;
}

LNR_API BOOL lnr_list_addresses(lnr_hClient client, const char* topic, lnr_addr_cb cb, lnr_uData udata) {
  return with_topic(client, "lnr_list_addresses", topic, [&](Client& c, const std::string& t) {
    if (!cb) return Status(Err::invalid_arg, "null pointer argument: cb");
    std::vector<liner::TopicAddress> rows;
    Status s = c.list_addresses(t, &rows);
    if (s)
      for (const auto& r : rows) cb(r.addr.c_str(), r.unique_name.c_str(), udata);
    return s;
  });
}

LNR_API long long lnr_pending_count(lnr_hClient client) {
  long long total = 0;
  BOOL ok = with_client(client, "lnr_pending_count", [&](Client& c) {
    std::vector<liner::PendingQueue> queues;
    Status s = c.pending_by_peer(&queues);
    for (const auto& q : queues) total += (long long)q.count;
    return s;
  });
  return ok ? total : -1;
}

LNR_API BOOL lnr_pending_by_peer(lnr_hClient client, lnr_pending_cb cb, lnr_uData udata) {
  return with_client(client, "lnr_pending_by_peer", [&](Client& c) {
    if (!cb) return Status(Err::invalid_arg, "null pointer argument: cb");
    std::vector<liner::PendingQueue> queues;
    Status s = c.pending_by_peer(&queues);
    if (s)
      for (const auto& q : queues)
        cb(q.addr.c_str(), q.topic.c_str(), q.unique_name.c_str(), (long long)q.count, udata);
    return s;
  });
}

LNR_API BOOL lnr_set_max_message_size(size_t bytes) {
  return set_limit("lnr_set_max_message_size", LimitId::max_message_size, bytes);
}
LNR_API size_t lnr_get_max_message_size(void) { return liner::get_limit(LimitId::max_message_size); }

LNR_API BOOL lnr_set_compress_threshold(size_t bytes) {
  return set_limit("lnr_set_compress_threshold", LimitId::compress_threshold, bytes);
}
LNR_API size_t lnr_get_compress_threshold(void) { return liner::get_limit(LimitId::compress_threshold); }

LNR_API BOOL lnr_set_max_send_queue(size_t messages) {
  return set_limit("lnr_set_max_send_queue", LimitId::max_send_queue, messages);
}
LNR_API size_t lnr_get_max_send_queue(void) { return liner::get_limit(LimitId::max_send_queue); }

LNR_API BOOL lnr_set_max_send_queue_bytes(size_t bytes) {
  return set_limit("lnr_set_max_send_queue_bytes", LimitId::max_send_queue_bytes, bytes);
}
LNR_API size_t lnr_get_max_send_queue_bytes(void) { return liner::get_limit(LimitId::max_send_queue_bytes); }

LNR_API BOOL lnr_set_store_wait(size_t ms) { return set_limit("lnr_set_store_wait", LimitId::store_wait_ms, ms); }
LNR_API size_t lnr_get_store_wait(void) { return liner::get_limit(LimitId::store_wait_ms); }

LNR_API BOOL lnr_set_lease(size_t ms) { return set_limit("lnr_set_lease", LimitId::lease_ms, ms); }
LNR_API size_t lnr_get_lease(void) { return liner::get_limit(LimitId::lease_ms); }

LNR_API BOOL lnr_set_advertise_addr(lnr_hClient client, const char* addr) {
  return with_client(client, "lnr_set_advertise_addr", [&](Client& c) {
    if (addr && *addr && !valid_utf8(addr)) return Status(Err::invalid_arg, "addr is not valid UTF-8");
    return c.set_advertise_address(addr ? addr : "");
  });
}

LNR_API const char* lnr_advertise_addr(lnr_hClient client) {
  auto c = lookup(client);
  return c ? kept_string(client, 1, c->advertise_address()) : nullptr;
}

LNR_API BOOL lnr_set_handover(lnr_hClient client, BOOL on) {
  return with_client(client, "lnr_set_handover", [&](Client& c) { return c.set_handover(on != FALSE); });
}

LNR_API int lnr_handover(lnr_hClient client) {
  auto c = lookup(client);
  return c ? int(c->handover()) : -1;
}

LNR_API const char* lnr_published_addr(lnr_hClient client) {
  auto c = lookup(client);
  return c ? kept_string(client, 2, c->published_address()) : nullptr;
}

// lnr_stats_t (liner.h) has the fields of LINER_CLIENT_STATS, in its order, and no others.
#define LINER_STATS_OFFSET(c_name, js_name, meaning) offsetof(lnr_stats_t, c_name),
constexpr size_t kStatsOffsets[] = {LINER_CLIENT_STATS(LINER_STATS_OFFSET)};
#undef LINER_STATS_OFFSET
constexpr bool stats_fields_in_order() {
  for (size_t i = 0; i < sizeof kStatsOffsets / sizeof kStatsOffsets[0]; ++i)
    if (kStatsOffsets[i] != offsetof(lnr_stats_t, messages_sent) + i * sizeof(unsigned long long)) return false;
  return true;
}
static_assert(stats_fields_in_order() &&
                  sizeof(lnr_stats_t) == offsetof(lnr_stats_t, messages_sent) + sizeof kStatsOffsets / sizeof(size_t) *
                                                                                    sizeof(unsigned long long),
              "lnr_stats_t in liner.h must list LINER_CLIENT_STATS's fields (core/client_stats.hpp) in order");

LNR_API BOOL lnr_stats(lnr_hClient client, lnr_stats_t* out) {
  return with_client(client, "lnr_stats", [&](Client& c) {
    if (!out) return Status(Err::invalid_arg, "null pointer argument: out");
    if (out->size < sizeof(size_t)) return Status(Err::invalid_arg, "set out->size to sizeof(lnr_stats_t)");
    liner::ClientStats s = c.stats();
    lnr_stats_t full;
    full.size = out->size;
#define LINER_STATS_COPY(c_name, js_name, meaning) full.c_name = s.c_name;
    LINER_CLIENT_STATS(LINER_STATS_COPY)
#undef LINER_STATS_COPY
    std::memcpy(out, &full, std::min(out->size, sizeof full));
    return Status();
  });
}

}  // extern "C"
