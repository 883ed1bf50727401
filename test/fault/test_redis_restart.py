"""Redis stopped and started again on the same port while peers exchange messages:

- messages between running peers keep flowing over TCP while Redis is down;
- store operations fail with a clear error (False + ERR_STORE, LinerError(ERR_STORE) for a new
  client) within the 2 s store timeout, and work again by themselves once Redis is back;
- no crash, no hang, no thread left spinning: every process stays under CPU_BOUND of one core
  while Redis is down (measured from /proc/<pid>/stat over 2 s);
- acknowledgements written late still arrive, so nothing is lost or doubled.

The Redis of the first two tests keeps its data across the restart (append-only file), as a
production Redis does; the directory and the counters are therefore still there when it comes
back. The second restarts it while the client is idle: the next store calls must work at once.
The third restarts a Redis without persistence, which comes back empty: every running peer
puts its entries and keys back."""
import os
import time

import liner

from faultkit import cpu_share, read_records, report, wait_until

RATE = 500          # messages per second from the sender process
COUNT = 5_000       # 10 s of traffic
DOWN_S = 4.0        # Redis down at least this long
CPU_BOUND = 0.25    # share of one core, per process, while Redis is down
STORE_TIMEOUT = 3.0  # a store call fails within this (2 s connect/command timeout + slack)


def timed(fn, *args):
    t = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - t


def test_redis_restart_during_traffic(peers, private_redis, tmp_path):
    redis = private_redis(persistent=True)
    out = str(tmp_path / "listener.log")
    listener = peers("listen", "rr_listener", "rr_topic", redis.url, "--out", out)
    listener.expect("READY")
    sender = peers("send", "rr_sender", "rr_sender_topic", redis.url, "--to", "rr_topic",
                   "--count", COUNT, "--rate", RATE)
    sender.expect("READY")
    # A client in this process, idle but running, for the store operations.
    idle = liner.Client("rr_idle", "rr_idle_topic", "127.0.0.1:0", redis.url)
    try:
        assert idle.run(lambda *a: None)
        assert wait_until(lambda: len(read_records(out)) >= RATE // 2, 10)
        assert idle.list_addresses("rr_topic")

        redis.stop()
        down_at = time.monotonic()
        before = len(read_records(out))

        # Store operations fail, clearly and in bounded time.
        ok, took_send = timed(idle.send_to, "rr_never_used_topic", b"x")
        assert not ok and idle.last_error_code() == liner.ERR_STORE, idle.last_error_message()
        assert "redis" in idle.last_error_message()
        rows, took_list = timed(idle.list_addresses, "rr_topic")
        assert rows is None and idle.last_error_code() == liner.ERR_STORE
        count, took_pending = timed(idle.pending_count)
        assert count == -1 and idle.last_error_code() == liner.ERR_STORE
        ok, took_sub = timed(idle.subscribe, "rr_other")
        assert not ok and idle.last_error_code() == liner.ERR_STORE
        t = time.monotonic()
        try:
            liner.Client("rr_new", "rr_new_topic", "127.0.0.1:0", redis.url).close()
            raise AssertionError("a client was created while Redis is down")
        except liner.LinerError as e:
            assert e.code == liner.ERR_STORE and "redis" in e.message
        took_create = time.monotonic() - t
        slowest = max(took_send, took_list, took_pending, took_sub, took_create)
        assert slowest < STORE_TIMEOUT, "a store call took %.2f s" % slowest

        # No thread spins while Redis is down.
        cpu = {"listener": cpu_share(listener.pid), "sender": cpu_share(sender.pid),
               "test_process": cpu_share(os.getpid())}
        assert max(cpu.values()) < CPU_BOUND, cpu

        # Messages keep flowing between the running peers.
        remaining = DOWN_S - (time.monotonic() - down_at)
        if remaining > 0:
            time.sleep(remaining)
        during = len(read_records(out)) - before
        down_for = time.monotonic() - down_at
        assert during >= RATE * down_for * 0.5, "%d messages in %.1f s without Redis" % (during, down_for)

        redis.start()
        back_at = time.monotonic()
        # Store operations recover by themselves.
        assert wait_until(lambda: idle.list_addresses("rr_topic"), 5), idle.last_error_message()
        recovered_in = time.monotonic() - back_at
        assert idle.subscribe("rr_other"), idle.last_error_message()
        liner.Client("rr_new", "rr_new_topic", "127.0.0.1:0", redis.url).close()

        assert sender.expect("DONE", timeout=COUNT / RATE + 20) == str(COUNT)
        assert wait_until(lambda: len(read_records(out)) >= COUNT, 15)
        time.sleep(1.2)
        seqs = [r.seq for r in read_records(out)]
        ck = redis.cli("GET", "lnr_connection:rr_sender:rr_sender_topic:rr_listener:key")
        # The listener's acknowledgement caught up once Redis was back.
        assert wait_until(lambda: redis.cli("GET", "lnr_connection:%s:mess_number" % ck) == str(COUNT), 5)
        cpu_after = {"listener": cpu_share(listener.pid, 1.0), "sender": cpu_share(sender.pid, 1.0)}
        report("redis_restart", down_s=round(down_for, 1), delivered_while_down=during,
               store_call_max_s=round(slowest, 2), cpu_while_down=cpu,
               recovered_in_s=round(recovered_in, 2), cpu_after=cpu_after,
               delivered=len(seqs), duplicates=len(seqs) - len(set(seqs)))
        assert sorted(set(seqs)) == list(range(1, COUNT + 1))
        assert len(seqs) == COUNT, "%d duplicates" % (len(seqs) - COUNT)
        assert max(cpu_after.values()) < CPU_BOUND, cpu_after
        for p in (listener, sender):
            assert p.proc.poll() is None, "a peer died: %s" % p.stderr[-5:]
    finally:
        idle.close()


def test_store_calls_work_at_once_after_a_quick_redis_restart(private_redis):
    """Redis restarted while the client made no store call: the client's connections are stale,
    but Redis is up, so the next store calls must succeed, and close() must still remove the
    client's address from the directory (a stale address makes senders route to a dead peer)."""
    redis = private_redis(persistent=True)
    client = liner.Client("rq_client", "rq_topic", "127.0.0.1:0", redis.url)
    closed = False
    try:
        assert client.run(lambda *a: None)
        addr = client.published_addr()
        assert client.list_addresses("rq_topic") == [(addr, "rq_client")]
        redis.stop()
        redis.start()
        first = client.list_addresses("rq_topic")
        first_error = (client.last_error_code(), client.last_error_message())
        second = client.list_addresses("rq_topic")
        second_error = (client.last_error_code(), client.last_error_message())
        closed = client.close()
        left_behind = redis.cli("HKEYS", "lnr_topic:rq_topic:addr")
        report("redis_quick_restart", first_call=first_error, second_call=second_error,
               left_in_directory_after_close=left_behind or "-")
        assert first == [(addr, "rq_client")], "first call after the restart: %r" % (first_error,)
        assert second == [(addr, "rq_client")], "second call after the restart: %r" % (second_error,)
        assert left_behind == "", "close() left %s in lnr_topic:rq_topic:addr" % left_behind
    finally:
        if not closed:
            client.close()


def key_numbers(redis):
    """Every topic and connection key in the store, and the key counter."""
    names = [k for k in redis.cli("KEYS", "*").split() if k.endswith(":key")]
    return [int(redis.cli("GET", k)) for k in names], int(redis.cli("GET", "lnr_unique_key") or 0)


def test_redis_restarted_empty_gets_every_running_peer_back(private_redis):
    """A Redis without persistence comes back empty: channels between running peers keep
    working, and within 5 s of Redis answering every running peer is back in the directory
    (source topic and subscriptions), with its keys and a key counter that will not hand out a
    key in use again; a peer started afterwards finds them and reaches them."""
    redis = private_redis(persistent=False)
    got, got_sub = [], []
    listener = liner.Client("re_l", "re_l_topic", "127.0.0.1:0", redis.url)
    subscriber = liner.Client("re_sub", "re_sub_topic", "127.0.0.1:0", redis.url)
    sender = liner.Client("re_s", "re_s_topic", "127.0.0.1:0", redis.url)
    newcomer = None
    try:
        assert listener.run(lambda to, from_, data: got.append(data))
        assert subscriber.subscribe("re_news")
        assert subscriber.run(lambda to, from_, data: got_sub.append((to, data)))
        assert sender.run(lambda *a: None)
        for i in range(100):
            assert sender.send_to("re_l_topic", b"%d" % i, True)
        assert wait_until(lambda: len(got) == 100, 5)
        keys_before, _ = key_numbers(redis)
        redis.stop()
        redis.start()
        back_at = time.monotonic()
        for i in range(100, 200):
            assert sender.send_to("re_l_topic", b"%d" % i, True), sender.last_error_message()
        assert wait_until(lambda: len(got) == 200, 10)

        def registered():
            return (redis.cli("HGET", "lnr_topic:re_l_topic:addr", listener.published_addr()) == "re_l"
                    and redis.cli("HGET", "lnr_topic:re_news:addr", subscriber.published_addr()) == "re_sub"
                    and redis.cli("HGET", "lnr_topic:re_s_topic:addr", sender.published_addr()) == "re_s")
        assert wait_until(registered, 5), redis.cli("KEYS", "*")
        took = time.monotonic() - back_at
        ck = "lnr_connection:re_s:re_s_topic:re_l:key"
        assert wait_until(lambda: redis.cli("GET", ck) != "", 2), "the channel's key was not put back"
        keys_after, counter = key_numbers(redis)
        report("redis_restarted_empty", delivered=len(got), duplicates=len(got) - len(set(got)),
               registered_again_s=round(took, 2), keys=len(keys_after), counter=counter)
        assert sorted(set(got)) == sorted(b"%d" % i for i in range(200))
        assert sorted(keys_after) == sorted(keys_before)
        assert counter >= max(keys_before), "the key counter would hand out a key in use"

        # A peer started after the wipe finds the running ones and reaches them.
        newcomer = liner.Client("re_new", "re_new_topic", "127.0.0.1:0", redis.url)
        assert newcomer.run(lambda *a: None)
        assert newcomer.send_to("re_l_topic", b"from the newcomer", True), newcomer.last_error_message()
        assert newcomer.send_all("re_news", b"news", True), newcomer.last_error_message()
        assert wait_until(lambda: b"from the newcomer" in got and ("re_news", b"news") in got_sub, 5)
        new_keys, _ = key_numbers(redis)
        assert len(set(new_keys)) == len(new_keys), "a key was handed out twice: %r" % new_keys
    finally:
        for c in (newcomer, sender, subscriber, listener):
            if c:
                c.close()


def test_keys_deleted_by_hand_come_back_but_an_unsubscribe_stays(private_redis):
    """The directory deleted while Redis stays up (FLUSHDB, or a hand-run DEL): running peers
    put their entries back within a few ticks; a subscription ended on purpose is not put back."""
    redis = private_redis(persistent=False)
    peer = liner.Client("kd_p", "kd_topic", "127.0.0.1:0", redis.url)
    try:
        assert peer.subscribe("kd_a") and peer.subscribe("kd_b")
        assert peer.run(lambda *a: None)
        addr = peer.published_addr()
        redis.cli("FLUSHDB")
        assert peer.unsubscribe("kd_b")
        assert wait_until(lambda: redis.cli("HGET", "lnr_topic:kd_topic:addr", addr) == "kd_p"
                          and redis.cli("HGET", "lnr_topic:kd_a:addr", addr) == "kd_p", 5)
        time.sleep(1.5)  # another tick or two
        assert redis.cli("HGET", "lnr_topic:kd_b:addr", addr) == ""
        redis.cli("DEL", "lnr_topic:kd_a:addr")
        assert wait_until(lambda: redis.cli("HGET", "lnr_topic:kd_a:addr", addr) == "kd_p", 5)
        assert peer.stop()
        time.sleep(1.5)  # a stopped peer puts nothing back
        assert redis.cli("HKEYS", "lnr_topic:kd_topic:addr") == ""
    finally:
        peer.close()
