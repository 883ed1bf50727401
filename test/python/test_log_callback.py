"""set_log_callback(fn) receives liner's log lines (one line per call, prefixed "liner: ", no
newline) from API and background threads instead of stderr; None restores stderr; an exception in
the callback is printed and ignored."""
import socket
import struct
import threading

import pytest

import liner
from extended_testkit import LogLines, log_lines  # noqa: F401  (fixture)
from liner_testkit import Inbox, wait_until


def test_log_lines_go_to_the_callback_not_stderr(make_client, log_lines, capfd):
    c = make_client("c", "c_topic")
    assert c.run(Inbox())
    assert not c.send_to("unknown_topic", b"x")
    lines = log_lines.snapshot()
    assert any("unknown_topic" in line for line in lines), lines
    assert all(isinstance(line, str) and line.startswith("liner: ") for line in lines), lines
    assert not any("\n" in line for line in lines)
    assert "unknown_topic" not in capfd.readouterr().err


def test_background_threads_log_through_the_callback(make_client, log_lines):
    listener = make_client("listener", "listener_topic")
    assert listener.run(Inbox())
    host, port = listener.bound_listen_addr().rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(struct.pack(">I", 3))  # a body shorter than its header: invalid
        raw.settimeout(10)
        try:
            assert raw.recv(1) == b""
        except ConnectionResetError:
            pass
    closing = wait_until(lambda: [line for line in log_lines.snapshot() if "closing connection" in line], 5)
    assert closing, log_lines.snapshot()
    assert log_lines.thread_of[closing[0]] != threading.get_ident()  # the listener's thread


def test_creation_errors_are_logged_too(redis, log_lines):
    with pytest.raises(liner.LinerError):
        liner.Client("u", "t", "no-port", redis.url)
    assert any("no-port" in line or "lnr_new_client_redis" in line for line in log_lines.snapshot())


def test_none_restores_stderr(make_client, capfd):
    lines = LogLines()
    assert liner.set_log_callback(lines)
    assert liner.set_log_callback(None)
    c = make_client("c", "c_topic")
    assert c.run(Inbox())
    assert not c.send_to("unknown_topic", b"x")
    err = capfd.readouterr().err
    assert any(line.startswith("liner: ") and "unknown_topic" in line for line in err.splitlines()), err
    assert lines.snapshot() == []


def test_a_new_callback_replaces_the_previous_one(make_client):
    first, second = LogLines(), LogLines()
    c = make_client("c", "c_topic")
    assert c.run(Inbox())
    try:
        assert liner.set_log_callback(first)
        assert not c.send_to("topic_one", b"x")
        assert liner.set_log_callback(second)
        assert not c.send_to("topic_two", b"x")
    finally:
        assert liner.set_log_callback(None)
    assert any("topic_one" in line for line in first.snapshot())
    assert not any("topic_two" in line for line in first.snapshot())
    assert any("topic_two" in line for line in second.snapshot())


def test_an_exception_in_the_log_callback_is_printed_and_ignored(make_client, capfd):
    calls = []

    def broken(line):
        calls.append(line)
        raise ValueError("log callback failed on purpose")

    c = make_client("c", "c_topic")
    assert c.run(Inbox())
    try:
        assert liner.set_log_callback(broken)
        assert not c.send_to("unknown_topic", b"x")
        assert c.last_error_code() == liner.ERR_NO_ADDR
        assert not c.send_to("unknown_topic", b"x")
    finally:
        assert liner.set_log_callback(None)
    assert len(calls) >= 2
    err = capfd.readouterr().err
    assert "ValueError: log callback failed on purpose" in err


def test_set_log_callback_refuses_what_is_not_callable():
    with pytest.raises(TypeError):
        liner.set_log_callback("not callable")
