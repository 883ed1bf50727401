"""The curated mutants of the mutation check (mutate.py): bugs that would break a promise of
liner, each with the tests that must catch it.

A mutant replaces `find` (which must occur exactly once in `file`) with `replace`. `tests` are
run in order against the mutated copy; the first that fails kills it:
    ("ctest", [test names])            ctest executables of test/core
    ("pytest", [paths or node ids])    pytest (LINER_LIB = the mutated library)
    ("vitest", [test files])           vitest over the mutated TypeScript layer (dist/ rebuilt)
Name the quickest tests that catch the bug; a mutant no test catches is a missing test: write
it, never drop the mutant.
"""


def mutant(id, file, bug, find, replace, *tests):
    return {"id": id, "file": file, "bug": bug, "find": find, "replace": replace, "tests": list(tests)}


def ctest(*names):
    return ("ctest", list(names))


def pytest(*paths):
    return ("pytest", list(paths))


def vitest(*files):
    return ("vitest", list(files))


PY = "test/python/"
HOSTILE = "test/hostile/"

MUTANTS = [
    # ---- delivery: duplicates, acknowledgements, refusals (native/core/delivery.cpp) --------
    mutant("dedup-off", "native/core/delivery.cpp", "duplicate detection disabled",
           "if (h.number_mess <= ch.delivered) {\n    duplicates_.add(1);",
           "if (false) {\n    duplicates_.add(1);",
           pytest(PY + "test_duplicates_on_reconnect.py")),
    mutant("dedup-off-by-one", "native/core/delivery.cpp", "the last delivered number is delivered again",
           "if (h.number_mess <= ch.delivered) {\n    duplicates_.add(1);",
           "if (h.number_mess < ch.delivered) {\n    duplicates_.add(1);",
           pytest(PY + "test_duplicates_on_reconnect.py")),
    mutant("ack-never-written", "native/core/delivery.cpp", "acknowledgements are never written to the store",
           "if (kv.second.delivered > kv.second.saved || kv.second.rewrite) writes.push_back",
           "if (kv.second.rewrite) writes.push_back",
           pytest(PY + "test_redis_keys.py", PY + "test_ack_after_pause.py")),
    mutant("number-jump-accepted", "native/core/delivery.cpp", "a forged number far ahead is accepted",
           "h.number_mess - ch->delivered > kMaxNumberJump",
           "false",
           pytest(HOSTILE + "test_forged_frames.py")),
    mutant("zstd-no-output-limit", "native/core/delivery.cpp", "decompression ignores the maximum message size",
           "size, max_message_size_, plain, &err)",
           "size, SIZE_MAX / 2, plain, &err)",
           pytest(HOSTILE + "test_compressed_frames.py")),
    mutant("undecodable-delivered", "native/core/delivery.cpp", "a frame that does not decompress is delivered raw",
           "      refuse_message(h, ch, err);\n      return;\n    }\n    data = plain.data();",
           "      plain.assign(data, size);\n    }\n    data = plain.data();",
           pytest(HOSTILE + "test_compressed_frames.py")),
    mutant("oversize-delivered", "native/core/delivery.cpp", "a message over this receiver's maximum is not refused",
           "    if (in.oversize) {\n      if (h.number_mess > ch->delivered)",
           "    if (false) {\n      if (h.number_mess > ch->delivered)",
           pytest(PY + "test_limits.py")),

    # ---- frames (native/core/frame.cpp) -------------------------------------------------------
    mutant("frame-overrun-accepted", "native/core/frame.cpp", "a data_len past the body is accepted",
           "if (uint64_t(h->data_len) + kBodyHeaderSize > body_len) {",
           "if (false) {",
           ctest("frame_codec_test")),
    mutant("stored-frame-length-unchecked", "native/core/frame.cpp", "a stored frame's length prefix is not checked",
           "load_be32(p) != frame.size() - kLengthPrefixSize",
           "false",
           ctest("frame_codec_test", "offline_queue_test")),
    mutant("frame-flags-dropped", "native/core/frame.cpp", "the flags byte is not encoded",
           "out[20] = char(h.flags);",
           "out[20] = char(0);",
           ctest("frame_codec_test")),
    mutant("frame-big-frame-skipped-as-error", "native/core/frame.cpp", "a frame over our maximum but valid on the wire is an error",
           "if (body_len > max_body_ && body_len <= kDefaultMaxBodySize) {",
           "if (false) {",
           ctest("frame_codec_test")),

    # ---- sender: re-queue, caps, compression (native/core/sender.cpp) -------------------------
    mutant("no-requeue-on-failure", "native/core/sender.cpp", "unacknowledged messages are dropped when a connection fails",
           "  requeue_unacked(ch);\n  spill(ch, true);",
           "  ch->unacked.clear();\n  ch->unacked_bytes = 0;\n  spill(ch, true);",
           pytest(PY + "test_requeue_on_reset.py")),
    mutant("no-requeue-at-all", "native/core/sender.cpp", "re-queueing unacknowledged messages does nothing",
           "    ch->pending.push_front(std::move(ch->unacked.back()));\n    ch->unacked.pop_back();",
           "    ch->unacked.pop_back();",
           pytest(PY + "test_requeue_on_reset.py")),
    mutant("byte-cap-ignored", "native/core/sender.cpp", "the per-peer byte cap never refuses (no BUSY)",
           "(ch->held_bytes.get() + cost <= queue_bytes_cap() && (!count_cap",
           "(true && (!count_cap",
           pytest(PY + "test_limits.py")),
    mutant("count-cap-ignored", "native/core/sender.cpp", "the per-peer message cap never refuses",
           "(!count_cap || ch->held_count.get() < count_cap));\n}",
           "true);\n}",
           pytest(PY + "test_limits.py")),
    mutant("busy-event-every-time", "native/core/sender.cpp", "every refused send emits a busy event",
           "*first = !ch->busy_reported;",
           "*first = true;",
           pytest(PY + "test_limits.py")),
    mutant("writable-never-reported", "native/core/sender.cpp", "the writable event never follows busy",
           "room = ch->busy_reported && ch->held_bytes.get() <= queue_bytes_cap() / 2",
           "room = false && ch->held_bytes.get() <= queue_bytes_cap() / 2",
           pytest(PY + "test_limits.py")),
    mutant("never-compressed", "native/core/sender.cpp", "payloads over the threshold are sent uncompressed",
           "if (payload_size > compress_above) {",
           "if (false) {",
           pytest(PY + "test_compression.py")),
    mutant("acked-segments-kept", "native/core/sender.cpp", "acknowledged segments are never released (held bytes grow to BUSY)",
           "while (!ch->unacked.empty() && ch->unacked.front().last <= ch->acked) {",
           "while (false) {",
           pytest(PY + "test_limits.py", PY + "test_stats.py")),
    mutant("not-persisted", "native/core/sender.cpp", "at-least-once messages for an offline peer are not stored",
           "      } else if (frame_number_at(f) > ch->acked) {\n        keep->emplace_back(f, len);",
           "      } else if (false) {\n        keep->emplace_back(f, len);",
           pytest(PY + "test_offline_delivery.py")),
    mutant("best-effort-persisted", "native/core/sender.cpp", "best-effort messages for an offline peer are stored",
           "      if (!frame_is_at_least_once(f)) {\n        ++dropped;",
           "      if (false) {\n        ++dropped;",
           pytest(PY + "test_stats.py::test_best_effort_messages_to_an_unreachable_peer_are_dropped")),

    # ---- offline queue (native/core/offline_queue.cpp) ----------------------------------------
    mutant("pop-unacked", "native/core/offline_queue.cpp", "stored messages are popped before they are acknowledged",
           "done < written && head_[done] <= acked) ++done;",
           "done < written) ++done;",
           ctest("offline_queue_test")),
    mutant("replay-shift-unnoticed", "native/core/offline_queue.cpp", "a shifted stored list is read as if it were not",
           "(overlap && stored_frame_number(frames.front()) != head_.back())",
           "false",
           ctest("offline_queue_test")),

    # ---- routing (native/core/client.cpp) ------------------------------------------------------
    mutant("rr-unreachable-not-skipped", "native/core/client.cpp", "round-robin does not skip unreachable replicas",
           "if (sender_->reachable(r.addrs[j].addr)) {",
           "if (true) {",
           pytest(PY + "test_round_robin_failover.py")),
    mutant("rr-no-advance", "native/core/client.cpp", "round-robin always picks the same replica",
           "r.next = pick + 1;",
           "r.next = pick;",
           pytest(PY + "test_round_robin.py")),
    mutant("send-all-first-only", "native/core/client.cpp", "send_all reaches the first replica only",
           "          *targets = r.addrs;\n          return Status();",
           "          targets->assign(r.addrs.begin(), r.addrs.begin() + 1);\n          return Status();",
           pytest(PY + "test_round_robin.py", PY + "test_send_all_retry.py")),
    mutant("oversize-send-accepted", "native/core/client.cpp", "a payload over the maximum message size is sent",
           "if (m.size > 0 && m.data && m.size <= max_message) continue;",
           "if (m.size > 0 && m.data) continue;",
           pytest(PY + "test_limits.py")),
    mutant("empty-send-accepted", "native/core/client.cpp", "an empty payload is sent",
           "if (m.size > 0 && m.data && m.size <= max_message) continue;",
           "if (m.data && m.size <= max_message) continue;",
           pytest(PY + "test_bad_input.py")),
    mutant("refresh-keeps-unsubscribed", "native/core/client.cpp", "refresh_address_topic still waits for a peer that unsubscribed",
           "  forget_unsubscribed(topic, unsubscribed);\n  bool found",
           "  bool found",
           pytest(PY + "test_route_semantics.py")),
    mutant("no-remembered-listeners", "native/core/client.cpp", "a restarted sender forgets the listeners it sent to",
           "    Status s = open_remembered_channels(topic);",
           "    Status s;",
           pytest(PY + "test_route_semantics.py")),
    mutant("remembered-unsubscribed", "native/core/client.cpp", "a restarted sender waits for a listener that unsubscribed",
           "    if (std::find(unsubscribed.begin(), unsubscribed.end(), l.addr) != unsubscribed.end()) continue;",
           "",
           pytest(PY + "test_route_semantics.py")),
    mutant("offline-route-lost", "native/core/client.cpp", "no at-least-once fallback to peers gone offline",
           "  if (!all && targets->size() > 1) targets->resize(1);\n  return !targets->empty();",
           "  return false;",
           pytest(PY + "test_offline_delivery.py")),
    mutant("registration-not-kept", "native/core/client.cpp", "a running peer never puts back what the store lost",
           "  if (!refresh_store_->check_registration(registration(), &complete) || complete) return;",
           "  return;",
           pytest("test/fault/test_redis_restart.py::test_keys_deleted_by_hand_come_back_but_an_unsubscribe_stays")),
    mutant("store-wait-ignored", "native/core/client.cpp", "creating a client does not wait for a Redis that starts late",
           "  s = wait_for_store(*client->api_store_, client->store_wait_ms());",
           "  s = client->api_store_->ping();",
           pytest("test/fault/test_redis_unreachable.py::test_store_wait_lets_creation_and_run_outlast_a_redis_that_starts_late")),
    mutant("outage-told-every-call", "native/core/status_event.hpp", "a store outage is told at every failed call",
           "bool hold = o->state == Outage::told ||",
           "bool hold = false ||",
           pytest(PY + "test_status_events.py::test_a_store_that_is_down_is_told_once_not_at_every_retry")),

    # ---- listener (native/core/listener.cpp) ----------------------------------------------------
    mutant("connection-cap-ignored", "native/core/listener.cpp", "the listener's connection cap is not enforced",
           "if (conns_.size() >= max_connections_.load(std::memory_order_relaxed)) {",
           "if (false) {",
           pytest(HOSTILE + "test_listener_connection_limits.py")),

    # ---- compression (native/core/compress.cpp) ---------------------------------------------------
    mutant("zstd-ratio-unbounded", "native/core/compress.cpp", "decompressed output is not bounded by a ratio of the input",
           "return std::min(max_out, std::max(kZstdRatioFloor, by_ratio));",
           "return max_out;",
           ctest("compress_test")),
    mutant("zstd-no-padding", "native/core/compress.cpp", "very compressible payloads are not padded to the receiver's ratio bound",
           "if (size > kZstdRatioFloor && n < need) append_skippable(out, need - n);",
           "(void)need;",
           ctest("compress_test")),

    # ---- store layout (native/core/redis_store.cpp) -----------------------------------------------
    mutant("sender-listener-key", "native/core/redis_store.cpp", "the sender's remembered-listeners key is misnamed",
           'return "lnr_sender:" + u + ":" + s + ":listener";',
           'return "lnr_sender:" + u + ":" + s + ":listeners";',
           pytest(PY + "test_redis_keys.py")),
    mutant("topic-addr-key", "native/core/redis_store.cpp", "the topic's address key is misnamed",
           'return "lnr_topic:" + t + ":addr"; }',
           'return "lnr_topic:" + t + ":address"; }',
           ctest("redis_store_test")),

    # ---- C API (native/capi/liner_capi.cpp) --------------------------------------------------------
    mutant("capi-null-string", "native/capi/liner_capi.cpp", "a NULL string argument is not refused",
           '  if (!s) return Status(Err::invalid_arg, std::string("null pointer argument: ") + what);\n',
           "",
           ctest("capi_bad_input_test")),
    mutant("capi-run-null-callback", "native/capi/liner_capi.cpp", "lnr_run accepts a NULL receive callback",
           'if (!receive_cb) return Status(Err::invalid_arg, "null pointer argument: receive_cb");',
           "",
           ctest("capi_bad_input_test", "capi_bad_input_table_test")),
    mutant("capi-utf8-unchecked", "native/capi/liner_capi.cpp", "invalid UTF-8 names are accepted",
           "if (!valid_utf8(s)) return",
           "if (false) return",
           ctest("capi_bad_input_table_test", "capi_bad_input_test")),
    mutant("capi-deleted-handle", "native/capi/liner_capi.cpp", "a NULL or deleted handle is used",
           "  if (!client) return bad_handle(fn);\n  return finish(",
           "  return finish(",
           ctest("capi_bad_input_test")),
    mutant("capi-max-message-ceiling", "native/capi/liner_capi.cpp", "lnr_set_max_message_size accepts sizes over the protocol's",
           "if (bytes == 0 || bytes > liner::kDefaultMaxBodySize - liner::kBodyHeaderSize) return FALSE;",
           "if (bytes == 0) return FALSE;",
           ctest("capi_extended_test"), pytest(PY + "test_limits.py")),
    mutant("capi-last-error-code", "native/capi/liner_capi.cpp", "lnr_last_error_code always says OK",
           "return it == t.errors.end() ? LNR_OK : int(it->second.code);",
           "return LNR_OK;",
           ctest("capi_bad_input_test"), pytest(PY + "test_error_codes.py")),

    # ---- Python binding (python/liner.py) ------------------------------------------------------------
    mutant("py-liner-lib-ignored", "python/liner.py", "LINER_LIB is ignored",
           'env = os.environ.get("LINER_LIB")',
           "env = None",
           pytest(PY + "test_load_lib.py")),
    mutant("py-size-wraps", "python/liner.py", "a size of 2**64 or more wraps around in ctypes",
           "return value if value < 2 ** 64 else -1",
           "return value % 2 ** 64",
           pytest(PY + "test_limits.py")),
    mutant("py-bool-size", "python/liner.py", "True is accepted as a size",
           "if isinstance(value, bool) or not isinstance(value, int):",
           "if not isinstance(value, int):",
           pytest(PY + "test_limits.py")),
    mutant("py-receive-not-callable", "python/liner.py", "run() accepts a receive callback that is not callable",
           '        if not callable(receive_cback):\n            raise TypeError("receive_cback must be callable")\n',
           "",
           pytest(PY + "test_bad_input.py")),
    mutant("py-err-busy-code", "python/liner.py", "ERR_BUSY has the wrong value",
           "ERR_BUSY = 11 ",
           "ERR_BUSY = 12 ",
           pytest(PY + "test_error_codes.py", PY + "test_limits.py")),

    # ---- TypeScript layer (src/) --------------------------------------------------------------------------
    mutant("ts-name-colon", "src/client.ts", "names with ':' are accepted",
           "if (/[:\\\\]/.test(value)) throw invalid(",
           "if (/[\\\\]/.test(value)) throw invalid(",
           vitest("test/ts/bad_input.test.ts")),
    mutant("ts-empty-name", "src/client.ts", "empty names are accepted",
           "  if (value.length === 0) throw invalid(`${what} must not be empty`);\n",
           "",
           vitest("test/ts/bad_input.test.ts")),
    mutant("ts-limit-alias", "src/limits.ts", "setLimits takes maxSendQueue only when maxSendQueueMessages is absent",
           "update.maxSendQueueMessages = messages ?? alias;",
           "update.maxSendQueueMessages = messages;",
           vitest("test/ts/limits.test.ts")),
    mutant("ts-queue-alias-conflict", "src/client.ts", "conflicting maxSendQueue options are accepted",
           "  if (messages !== undefined && alias !== undefined && messages !== alias) {\n    throw invalid(",
           "  if (false) {\n    throw invalid(",
           vitest("test/ts/limits.test.ts", "test/ts/bad_input.test.ts")),
    mutant("ts-native-error-code", "src/errors.ts", "native errors lose their code",
           "return new LinerError(codeOf((error as unknown as { lnrCode: number }).lnrCode), error.message);",
           "return error;",
           vitest("test/ts/bad_input.test.ts", "test/ts/limits.test.ts")),
]
