"""Process-wide settings: where log lines go, and the limits that apply to every client.

Each limit is a ``set_*``/``get_*`` pair over the library's ``lnr_set_*``/``lnr_get_*``: the
library owns the ranges and the defaults. A setter returns False for a value out of range and
changes nothing; the library logs why, in the words every face uses (``"liner:
lnr_set_lease: lease must be from 3000 to 3600000 ms, not 100"``: see ``set_log_callback``).
Here sizes are only checked to be ints that fit a ``size_t`` (a negative one, or one of 2**64
or more, returns False without reaching the library).
"""
import ctypes

from . import _library
from ._args import size_arg
from ._callbacks import log_trampoline
from ._library import LOG_CB, loaded_lib

_log_cb = None         # the ctypes object of the current log callback, kept alive while set


def set_log_callback(fn):
    """Sends liner's log lines to ``fn(line: str)`` instead of stderr; ``None`` restores stderr.

    Process-wide: it applies to every client, and to the lines of client creation. Each line is
    one event without a trailing newline, prefixed ``"liner: "``.

    Thread: ``fn`` may run on any thread (API threads and the clients' background threads), one
    call at a time. It must not call into liner (the library holds its log lock meanwhile).
    Exceptions it raises are printed to stderr and ignored.

    Returns:
        True.

    Raises:
        LinerError: the library is not loaded.
        TypeError: ``fn`` is neither callable nor None.
    """
    global _log_cb
    lib = loaded_lib()
    if fn is not None and not callable(fn):
        raise TypeError("fn must be callable or None")
    if fn is None:
        new = None
        ok = lib.lnr_set_log_cb(None, None)
    else:
        new = LOG_CB(log_trampoline(fn))
        ok = lib.lnr_set_log_cb(ctypes.cast(new, ctypes.c_void_p), None)
    # The library takes its log lock to switch sinks, and holds it while a sink runs: once the
    # call returns, the previous callback is not running any more and may be released.
    _log_cb = new
    return ok != 0


def restore_stderr_logging():
    """At interpreter exit: log lines written afterwards (none are expected) go to stderr, not
    to a Python callback that could no longer run."""
    if _log_cb is not None and _library.lib_ is not None:
        try:
            set_log_callback(None)
        except Exception:
            pass


def _set_limit(name, value, arg):
    """lnr_set_<name>(value): True, or False for a value the library refuses (it logs why) or
    that no ``size_t`` holds."""
    n = size_arg(value, arg)
    return n >= 0 and getattr(loaded_lib(), "lnr_set_" + name)(n) != 0


def set_max_message_size(nbytes):
    """Sets the largest payload, in bytes, that ``send_to``/``send_all`` accept (larger ones are
    refused with ``ERR_INVALID_ARG``) and that a listener reads (a larger frame closes the
    sender's connection). Process-wide; listeners apply it from their next ``run``.

    Returns:
        True, or False for 0, a negative value or more than the default (1 GiB - 21 bytes).
    """
    return _set_limit("max_message_size", nbytes, "nbytes")


def get_max_message_size():
    """The process-wide maximum payload size in bytes (default 1 GiB - 21 = 1073741803)."""
    return int(loaded_lib().lnr_get_max_message_size())


def set_compress_threshold(nbytes):
    """Payloads strictly larger than ``nbytes`` are zstd-compressed on the wire (default 1 MiB).
    Process-wide, read at every send. Returns False for 0 or a negative value."""
    return _set_limit("compress_threshold", nbytes, "nbytes")


def get_compress_threshold():
    """The process-wide compression threshold in bytes."""
    return int(loaded_lib().lnr_get_compress_threshold())


def set_max_send_queue(messages):
    """Messages per peer held in RAM (queued, or written and awaiting acknowledgement) before
    sends to that peer fail with ``ERR_BUSY``; 0 (the default) means no count limit.
    Process-wide, read at every send. Returns False for a negative value."""
    return _set_limit("max_send_queue", messages, "messages")


def get_max_send_queue():
    """The process-wide per-peer message limit (0: none)."""
    return int(loaded_lib().lnr_get_max_send_queue())


def set_max_send_queue_bytes(nbytes):
    """liner: bytes per peer held in RAM before sends fail with ``ERR_BUSY`` (default 8 MiB;
    always enforced). Process-wide, read at every send. Returns False for 0 or a negative
    value."""
    return _set_limit("max_send_queue_bytes", nbytes, "nbytes")


def get_max_send_queue_bytes():
    """The process-wide per-peer byte limit."""
    return int(loaded_lib().lnr_get_max_send_queue_bytes())


def set_store_wait(ms):
    """liner: how long, in milliseconds, creating a ``Client`` and ``run`` keep trying a Redis
    that does not answer (refuses connections, does not reply, or replies LOADING) before they
    fail with ``ERR_STORE``: for services that may start before their Redis. Default 0: fail
    at once, as liner_broker does. Process-wide, read when a client is created or run.
    Returns False (and changes nothing) for a negative value or one over 3,600,000 (an hour).
    """
    return _set_limit("store_wait", ms, "ms")


def get_store_wait():
    """The process-wide store wait, in milliseconds (0: none)."""
    return int(loaded_lib().lnr_get_store_wait())


def set_lease(ms):
    """liner: how long, in milliseconds, a running client's directory entries outlive its last
    lease renewal (it renews every second). A client that crashed, was killed or lost Redis for
    longer is removed from the directory by the next client that reads the topic, about this
    long after, and registers again by itself if it was only cut off. Default 7000; from 3000
    to 3,600,000. Process-wide, read at each renewal. Returns False (and changes nothing)
    outside that range."""
    return _set_limit("lease", ms, "ms")


def get_lease():
    """The process-wide lease, in milliseconds."""
    return int(loaded_lib().lnr_get_lease())
