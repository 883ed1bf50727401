"""Python functions called from liner's C threads: the trampolines that turn C arguments into
Python values, and the rule they all keep: an exception never unwinds into C (it is printed to
stderr with its traceback, and the C side goes on).

The ctypes objects these trampolines are wrapped in must outlive every call the library may
still make to them: whoever hands one to the library keeps a reference (see client.py and
settings.py).
"""
import ctypes
import sys
import traceback

from ._args import text


def report_callback_exception(what, outcome="ignored"):
    """Prints the exception being handled; a callback must never unwind into C."""
    try:
        sys.stderr.write("liner: exception in %s callback (%s):\n" % (what, outcome))
        traceback.print_exc()
    except BaseException:  # noqa: B902 - even a broken stderr must not reach C
        pass


def receive_trampoline(callback):
    """The lnr_receive_cb of ``Client.run``: ``callback(to, from_, data)`` with str, str, bytes."""
    string_at = ctypes.string_at

    def trampoline(to, from_, data, size, _udata):
        try:
            callback(to.decode("utf-8", "replace") if to else "",
                     from_.decode("utf-8", "replace") if from_ else "",
                     string_at(data, size) if size else b"")
        except BaseException:  # noqa: B902 - a callback must never unwind into C
            report_callback_exception("receive", "delivery goes on")
    return trampoline


def status_trampoline(fn):
    """The lnr_status_cb of ``Client.set_status_callback``: ``fn(kind, topic, peer, message)``."""
    def trampoline(kind, topic, peer, message, _udata):
        try:
            fn(int(kind), text(topic), text(peer), text(message))
        except BaseException:  # noqa: B902
            report_callback_exception("status")
    return trampoline


def log_trampoline(fn):
    """The lnr_log_cb of ``set_log_callback``: ``fn(line)``."""
    def trampoline(line, _udata):
        try:
            fn(text(line))
        except BaseException:  # noqa: B902
            report_callback_exception("log")
    return trampoline


def row_collector(rows, what, convert):
    """A callback that appends ``convert(*columns)`` to ``rows`` for every row the library
    reports (``Client.list_addresses``, ``Client.pending_by_peer``)."""
    def on_row(*columns):
        try:
            rows.append(convert(*columns[:-1]))  # the last column is the udata pointer
        except BaseException:  # noqa: B902
            report_callback_exception(what)
    return on_row
