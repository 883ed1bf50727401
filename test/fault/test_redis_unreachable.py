"""Redis unreachable (nothing listens: connection refused) or unresponsive (the redis-server is
SIGSTOPped: the kernel still accepts connections, nothing answers) when a client is created,
when it runs, and when it is closed: a clear error (LinerError / False with ERR_STORE) within
the 2 s store timeout plus slack, never an abort or a hang, and no thread or descriptor left
behind."""
import threading
import time

import pytest

import liner

from faultkit import fd_count, free_port, report, thread_count, wait_until

BOUND_S = 3.0        # the store timeout is 2 s
CLOSE_BOUND_S = 10.0  # close() with an unresponsive Redis: drain and flush give up in bounded time


def test_creation_with_redis_refusing_connections_fails_within_the_timeout():
    url = "redis://127.0.0.1:%d/0" % free_port()
    t = time.monotonic()
    with pytest.raises(liner.LinerError) as info:
        liner.Client("ru_u", "ru_t", "127.0.0.1:0", url)
    took = time.monotonic() - t
    report("create_redis_refused", seconds=round(took, 2), message=repr(info.value.message))
    assert info.value.code == liner.ERR_STORE
    assert "unreachable" in info.value.message and url.split("//")[1].split("/")[0] in info.value.message
    assert took < BOUND_S


def test_creation_with_frozen_redis_fails_within_the_timeout(private_redis):
    redis = private_redis()
    redis.freeze()
    try:
        t = time.monotonic()
        with pytest.raises(liner.LinerError) as info:
            liner.Client("ru_u", "ru_t", "127.0.0.1:0", redis.url)
        took = time.monotonic() - t
    finally:
        redis.thaw()
    report("create_redis_frozen", seconds=round(took, 2), message=repr(info.value.message))
    assert info.value.code == liner.ERR_STORE and info.value.message
    assert took < BOUND_S


@pytest.mark.parametrize("how", ["stopped", "frozen"])
def test_run_without_redis_fails_cleanly_and_works_once_redis_is_back(private_redis, how):
    redis = private_redis()
    fds, threads = fd_count(), thread_count()
    client = liner.Client("ru_run", "ru_run_topic", "127.0.0.1:0", redis.url)
    try:
        if how == "stopped":
            redis.stop()
        else:
            redis.freeze()
        t = time.monotonic()
        ok = client.run(lambda *a: None)
        took = time.monotonic() - t
        code, message = client.last_error_code(), client.last_error_message()
        running = client.is_running()
        threads_after_failed_run = thread_count()
        if how == "stopped":
            redis.start()
        else:
            redis.thaw()
        report("run_without_redis_" + how, seconds=round(took, 2), code=code, message=repr(message),
               threads_before=threads, threads_after_failed_run=threads_after_failed_run)
        assert not ok and code == liner.ERR_STORE and message
        assert took < BOUND_S
        assert not running
        assert threads_after_failed_run == threads, "threads left behind by the failed run"
        # Nothing registered by the failed run.
        assert redis.cli("HKEYS", "lnr_topic:ru_run_topic:addr") == ""
        # Redis back: the same client runs.
        assert wait_until(lambda: client.run(lambda *a: None), 5), client.last_error_message()
        assert client.is_running()
    finally:
        client.close()
    assert wait_until(lambda: (fd_count(), thread_count()) == (fds, threads), 5), \
        "fds %d -> %d, threads %d -> %d" % (fds, fd_count(), threads, thread_count())


def test_close_with_frozen_redis_returns_in_bounded_time(private_redis):
    """Two running peers with traffic in flight; Redis stops answering; both close."""
    redis = private_redis()
    got = []
    listener = liner.Client("ru_l", "ru_l_topic", "127.0.0.1:0", redis.url)
    sender = liner.Client("ru_s", "ru_s_topic", "127.0.0.1:0", redis.url)
    try:
        assert listener.run(lambda to, from_, data: got.append(data))
        assert sender.run(lambda *a: None)
        for i in range(100):
            assert sender.send_to("ru_l_topic", b"%d" % i, True)
        assert wait_until(lambda: len(got) == 100, 5)
        redis.freeze()
        for i in range(100, 200):
            assert sender.send_to("ru_l_topic", b"%d" % i, True)
        assert wait_until(lambda: len(got) == 200, 5), "TCP traffic stopped with Redis frozen"
        t = time.monotonic()
        assert sender.close()
        sender_took = time.monotonic() - t
        t = time.monotonic()
        assert listener.close()
        listener_took = time.monotonic() - t
    finally:
        redis.thaw()
        sender.close()
        listener.close()
    report("close_with_frozen_redis", sender_close_s=round(sender_took, 2),
           listener_close_s=round(listener_took, 2))
    assert sender_took < CLOSE_BOUND_S and listener_took < CLOSE_BOUND_S


def test_store_wait_lets_creation_and_run_outlast_a_redis_that_starts_late(private_redis):
    """liner.set_store_wait(ms): creating a client and run() keep trying a Redis that is not up
    yet, for up to that long; then they fail as without it. Off (0) by default."""
    assert liner.get_store_wait() == 0
    assert not liner.set_store_wait(-1) and not liner.set_store_wait(3_600_001)
    assert liner.get_store_wait() == 0
    redis = private_redis()
    assert liner.set_store_wait(5000) and liner.get_store_wait() == 5000
    client = None
    try:
        redis.stop()
        threading.Timer(1.0, redis.start).start()
        t = time.monotonic()
        client = liner.Client("sw_late", "sw_late_topic", "127.0.0.1:0", redis.url)
        created_after = time.monotonic() - t
        assert 0.9 <= created_after < 5, created_after

        redis.stop()
        threading.Timer(1.0, redis.start).start()
        t = time.monotonic()
        assert client.run(lambda *a: None), client.last_error_message()
        ran_after = time.monotonic() - t
        assert 0.9 <= ran_after < 5, ran_after
        assert redis.cli("HGET", "lnr_topic:sw_late_topic:addr", client.published_addr()) == "sw_late"
        client.close()
        client = None

        # A Redis that stays down: the wait runs out, then the usual error.
        assert liner.set_store_wait(1500)
        redis.stop()
        t = time.monotonic()
        with pytest.raises(liner.LinerError) as info:
            liner.Client("sw_down", "sw_down_topic", "127.0.0.1:0", redis.url)
        took = time.monotonic() - t
        report("store_wait", created_after=round(created_after, 2), ran_after=round(ran_after, 2),
               gave_up_after=round(took, 2))
        assert info.value.code == liner.ERR_STORE
        assert 1.4 <= took < BOUND_S + 1.5, took
    finally:
        liner.set_store_wait(0)
        if client:
            client.close()
