"""Python binding of liner, a serverless peer-to-peer message broker.

liner peers find each other through Redis (topic -> TCP address) and exchange messages over plain
TCP; Redis also keeps the offline queue of at-least-once messages. There is no broker process.
This module loads the C library ``libliner_broker`` with ctypes and offers the Python API of
liner_broker 1.4 (``loadLib``, ``Client`` and its 1.4 additions: status events, error codes,
``stop``, limits, introspection), plus liner's ``stats()`` and its ``SENDER_WRITABLE`` and ``STORE_RECOVERED`` events.

Quick start::

    import liner
    liner.loadLib()                       # finds the library built by this repository

    def on_message(to, from_, data):      # runs on the client's delivery thread
        print(to, from_, data)

    with liner.Client("worker-1", "jobs", "127.0.0.1:0", "redis://127.0.0.1:6379/0") as c:
        c.run(on_message)
        c.send_to("results", b"hello")    # True: queued for sending

Threads
-------
- A client may be used from any thread; calls on one client are serialised by the library.
- The receive callback runs on the client's single delivery thread, never on the thread that
  called ``run``; calls for one client never overlap. It may call ``send_to``, ``send_all``,
  ``subscribe`` and ``unsubscribe`` (on any client), but must not ``close`` its own client.
- An exception raised by the callback is printed to stderr with its traceback; delivery goes on
  and the message still counts as delivered.
- The status callback (``Client.set_status_callback``) runs on the client's background threads
  (sender, delivery, directory watch) and, for ``SENDER_BUSY``, on the thread whose ``send_to``
  found the queue full; it may run at the same time as the receive callback. It may call
  ``send_to``, ``send_all``, ``subscribe`` and ``unsubscribe``, must return quickly (it holds up
  that thread) and must not ``stop`` or ``close`` its own client.
- The log callback (``set_log_callback``) is process-wide, may run on any thread (one call at a
  time) and must not call into liner.
- Exceptions raised by status and log callbacks are printed to stderr too; they are never fatal.
- A callback that blocks holds up the liner thread that runs it (callbacks take the GIL).

Errors
------
Methods return ``True``/``False`` like liner_broker 1.3.1 did. After a ``False``, read the reason
with ``last_error_code()`` (one of the ``ERR_*`` constants) and ``last_error_message()`` from the
same thread. Creation failures raise :class:`LinerError`.
"""
import atexit
import ctypes
import ctypes.util
import os
import sys
import threading
import traceback
import weakref

__all__ = [
    "loadLib", "version", "Client", "LinerError",
    "OK", "ERR_NOT_RUNNING", "ERR_ALREADY_RUNNING", "ERR_SELF_TOPIC", "ERR_INTERNAL_TOPIC",
    "ERR_NO_ADDR", "ERR_BIND", "ERR_STORE", "ERR_INVALID_ARG", "ERR_CLEAR_WHILE_RUNNING",
    "ERR_STARTUP", "ERR_BUSY",
    "PEER_CONNECTED", "PEER_DISCONNECTED", "PEER_SUBSCRIBED", "PEER_UNSUBSCRIBED",
    "SENDER_ROUTE_LOST", "SENDER_STORE_ERROR", "SENDER_SEND_ERROR", "LISTENER_STORE_ERROR",
    "SENDER_BUSY", "SENDER_WRITABLE", "STORE_RECOVERED",
    "set_log_callback", "set_max_message_size", "get_max_message_size",
    "set_compress_threshold", "get_compress_threshold", "set_max_send_queue",
    "get_max_send_queue", "set_max_send_queue_bytes", "get_max_send_queue_bytes",
    "set_store_wait", "get_store_wait", "set_lease", "get_lease",
]

# Error codes: the LNR_* values of include/liner.h.
OK = 0
ERR_NOT_RUNNING = 1          #: the call needs a running client (run first)
ERR_ALREADY_RUNNING = 2      #: the call needs a stopped client
ERR_SELF_TOPIC = 3           #: the topic is the client's own source topic
ERR_INTERNAL_TOPIC = 4       #: the topic is reserved by liner
ERR_NO_ADDR = 5              #: no peer serves the topic
ERR_BIND = 6                 #: the listen address cannot be resolved or bound
ERR_STORE = 7                #: Redis is unreachable or answered with an error
ERR_INVALID_ARG = 8          #: None / empty / invalid UTF-8 / oversize argument, closed client
ERR_CLEAR_WHILE_RUNNING = 9  #: clear_* needs a client that is not running
ERR_STARTUP = 10             #: the client could not start its threads or listener
ERR_BUSY = 11                #: a per-peer send queue is full: retry later

# Status event kinds: the LNR_* kinds of include/liner.h, as liner_broker 1.4 numbers them.
# "Topics the client uses" are those it sent to, refreshed, subscribed to or owns.
PEER_CONNECTED = 1        #: a peer joined a topic the client uses, or a connection opened
PEER_DISCONNECTED = 2     #: a peer left such a topic, or its connection ended
PEER_SUBSCRIBED = 3       #: a peer subscribed to a topic the client uses
PEER_UNSUBSCRIBED = 4     #: a peer unsubscribed from a topic the client uses
SENDER_ROUTE_LOST = 5     #: connect failed, or a connection closed with messages in flight
SENDER_STORE_ERROR = 6    #: the sender could not read or write Redis
SENDER_SEND_ERROR = 7     #: a write to a peer failed, or waiting messages were dropped
LISTENER_STORE_ERROR = 8  #: the listener could not read or write Redis
SENDER_BUSY = 9           #: a peer's send queue is full (sends fail with ERR_BUSY)
SENDER_WRITABLE = 10      #: liner: that queue has room again
STORE_RECOVERED = 11      #: liner: Redis answers the sender or listener again (after 6 or 8)
# A Redis outage is told once per side: one SENDER_STORE_ERROR / LISTENER_STORE_ERROR when the
# connection is lost, then STORE_RECOVERED when it works again.

_LIB_BASENAME = "liner_broker"


class LinerError(Exception):
    """An error reported by liner.

    Attributes:
        code: one of the ``ERR_*`` constants (int).
        message: the reason, as text.
    """

    def __init__(self, code, message):
        super().__init__(message)
        self.code = int(code)
        self.message = str(message)

    def __repr__(self):
        return f"LinerError(code={self.code}, message={self.message!r})"


# The receive callback of include/liner.h. `data` is declared as a void pointer so that it is
# read with string_at(data, size) (payloads are binary and not NUL-terminated).
_RECEIVE_CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
                               ctypes.c_size_t, ctypes.c_void_p)

# Status, log, directory-row and offline-queue callbacks of include/liner.h.
_STATUS_CB = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                              ctypes.c_void_p)
_LOG_CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)
_ADDR_CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)
_PENDING_CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                               ctypes.c_longlong, ctypes.c_void_p)


class _Stats(ctypes.Structure):
    """lnr_stats_t."""
    _fields_ = [("size", ctypes.c_size_t)] + [(name, ctypes.c_ulonglong) for name in (
        "messages_sent", "bytes_sent", "messages_delivered", "bytes_delivered", "duplicates",
        "persisted", "reloaded", "dropped", "reconnects", "send_queue_messages",
        "send_queue_bytes", "receive_queue_bytes")]


_STATS_FIELDS = tuple(name for name, _ in _Stats._fields_[1:])

lib_ = None            # the loaded ctypes.CDLL, None until loadLib()
_lib_lock = threading.Lock()
_log_cb = None         # the ctypes object of the current log callback, kept alive while set


def _candidate_paths():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    if sys.platform == "darwin":
        names = ["lib%s.dylib" % _LIB_BASENAME]
    elif sys.platform == "win32":
        names = ["%s.dll" % _LIB_BASENAME, "lib%s.dll" % _LIB_BASENAME]
    else:
        names = ["lib%s.so" % _LIB_BASENAME, "lib%s.so.0" % _LIB_BASENAME]
    paths = []
    env = os.environ.get("LINER_LIB")
    if env:
        paths.append(env)
    paths += [os.path.join(repo, "build", n) for n in names]
    paths += [os.path.join(here, n) for n in names]
    return paths


def _bind(lib):
    """Declares restype/argtypes of every function of include/liner.h."""
    c_int, c_char_p, c_void_p, c_size_t = ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t
    hclient = c_void_p
    # BOOL is an int-sized enum (0/1); c_int reads the full value.
    sigs = {
        "lnr_new_client_redis": (hclient, [c_char_p, c_char_p, c_char_p, c_char_p]),
        "lnr_new_client": (hclient, [c_char_p, c_char_p, c_char_p, c_char_p]),
        "lnr_new_client_sqlite": (hclient, [c_char_p, c_char_p, c_char_p, c_char_p, c_char_p]),
        "lnr_run": (c_int, [hclient, _RECEIVE_CB, c_void_p]),
        # data is a void pointer so that bytes and ctypes arrays (over bytearray/memoryview)
        # are passed without a copy.
        "lnr_send_to": (c_int, [hclient, c_char_p, c_void_p, c_size_t, c_int]),
        "lnr_send_all": (c_int, [hclient, c_char_p, c_void_p, c_size_t, c_int]),
        "lnr_send_to_many": (c_int, [hclient, c_char_p, ctypes.POINTER(c_void_p), ctypes.POINTER(c_size_t),
                                     c_size_t, c_int, ctypes.POINTER(c_size_t)]),
        "lnr_subscribe": (c_int, [hclient, c_char_p]),
        "lnr_unsubscribe": (c_int, [hclient, c_char_p]),
        "lnr_refresh_address_topic": (c_int, [hclient, c_char_p]),
        "lnr_clear_stored_messages": (c_int, [hclient]),
        "lnr_clear_addresses_of_topic": (c_int, [hclient]),
        "lnr_delete_client": (c_int, [hclient]),
        # liner extensions: optional, so that a liner_broker 1.3.1 library still loads.
        "lnr_version": (c_char_p, []),
        "lnr_last_error_code": (c_int, [hclient]),
        "lnr_last_error_message": (c_char_p, [hclient]),
        "lnr_last_create_error": (c_char_p, []),
        "lnr_last_create_error_code": (c_int, []),
        "lnr_bound_listen_addr": (c_char_p, [hclient]),
        # liner_broker 1.4 extensions. Callback parameters that may be NULL are void pointers
        # (a CFUNCTYPE object is passed cast, None as NULL).
        "lnr_stop": (c_int, [hclient]),
        "lnr_is_running": (c_int, [hclient]),
        "lnr_set_status_cb": (c_int, [hclient, c_void_p, c_void_p]),
        "lnr_set_log_cb": (c_int, [c_void_p, c_void_p]),
        "lnr_list_addresses": (c_int, [hclient, c_char_p, _ADDR_CB, c_void_p]),
        "lnr_pending_count": (ctypes.c_longlong, [hclient]),
        "lnr_pending_by_peer": (c_int, [hclient, _PENDING_CB, c_void_p]),
        "lnr_set_max_message_size": (c_int, [c_size_t]),
        "lnr_get_max_message_size": (c_size_t, []),
        "lnr_set_compress_threshold": (c_int, [c_size_t]),
        "lnr_get_compress_threshold": (c_size_t, []),
        "lnr_set_max_send_queue": (c_int, [c_size_t]),
        "lnr_get_max_send_queue": (c_size_t, []),
        "lnr_set_max_send_queue_bytes": (c_int, [c_size_t]),
        "lnr_get_max_send_queue_bytes": (c_size_t, []),
        "lnr_set_store_wait": (c_int, [c_size_t]),
        "lnr_get_store_wait": (c_size_t, []),
        "lnr_set_lease": (c_int, [c_size_t]),
        "lnr_get_lease": (c_size_t, []),
        "lnr_set_advertise_addr": (c_int, [hclient, c_char_p]),
        "lnr_advertise_addr": (c_char_p, [hclient]),
        "lnr_published_addr": (c_char_p, [hclient]),
        "lnr_set_handover": (c_int, [hclient, c_int]),
        "lnr_handover": (c_int, [hclient]),
        "lnr_stats": (c_int, [hclient, ctypes.POINTER(_Stats)]),
    }
    required = {"lnr_new_client_redis", "lnr_run", "lnr_send_to", "lnr_send_all", "lnr_subscribe",
                "lnr_unsubscribe", "lnr_refresh_address_topic", "lnr_clear_stored_messages",
                "lnr_clear_addresses_of_topic", "lnr_delete_client"}
    for name, (restype, argtypes) in sigs.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            if name in required:
                raise LinerError(ERR_STARTUP, "%s: missing symbol %s" % (lib._name, name))
            continue
        fn.restype = restype
        fn.argtypes = argtypes


def loadLib(path=None):
    """Loads the liner C library; must be called once before creating a client.

    Args:
        path: file name of ``libliner_broker``. Without it, the first of these that exists is
            loaded: ``$LINER_LIB``, ``<repo>/build/libliner_broker.so`` (what this repository's
            CMake build makes), ``libliner_broker.so`` next to this file, then whatever
            ``ctypes.util.find_library("liner_broker")`` finds.

    Returns:
        the ``ctypes.CDLL`` object. Calling it again loads the library again (the last one
        loaded is used by clients created afterwards).

    Raises:
        LinerError: (``ERR_STARTUP``) the library cannot be found or loaded.
    """
    global lib_
    if path is not None:
        candidates = [os.fspath(path)]
    else:
        candidates = [p for p in _candidate_paths() if os.path.exists(p)]
        if not candidates:  # find_library runs ldconfig: only when nothing local exists
            found = ctypes.util.find_library(_LIB_BASENAME)
            if found:
                candidates.append(found)
    if not candidates:
        raise LinerError(ERR_STARTUP, "libliner_broker not found; tried %s and find_library(%r); "
                         "build it with cmake or set LINER_LIB" % (", ".join(_candidate_paths()),
                                                                   _LIB_BASENAME))
    errors = []
    for candidate in candidates:
        try:
            lib = ctypes.CDLL(candidate)
        except OSError as e:
            errors.append("%s: %s" % (candidate, e))
            continue
        _bind(lib)
        with _lib_lock:
            lib_ = lib
        return lib
    raise LinerError(ERR_STARTUP, "cannot load libliner_broker: " + "; ".join(errors))


def version():
    """Version string of the loaded library, e.g. ``"1.3.1-liner.0.1.0"``.

    Raises:
        LinerError: the library is not loaded.
    """
    lib = _lib()
    fn = getattr(lib, "lnr_version", None)
    if fn is None:
        return "1.3.1"  # liner_broker 1.3.1 has no lnr_version
    v = fn()
    return v.decode("utf-8", "replace") if v else ""


def _lib():
    lib = lib_
    if lib is None:
        raise LinerError(ERR_STARTUP, "lib not load")
    return lib


def _fn(lib, name):
    """The C function `name`, or LinerError when the loaded library predates it (1.3.1)."""
    fn = getattr(lib, name, None)
    if fn is None:
        raise LinerError(ERR_INVALID_ARG, "%s is not in this library (liner_broker < 1.4?)" % name)
    return fn


def _report_callback_exception(what):
    """Prints the exception being handled; a callback must never unwind into C."""
    try:
        sys.stderr.write("liner: exception in %s callback (ignored):\n" % what)
        traceback.print_exc()
    except BaseException:  # noqa: B902 - even a broken stderr must not reach C
        pass


# ---- process-wide settings ------------------------------------------------------------------

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
    lib = _lib()
    if fn is not None and not callable(fn):
        raise TypeError("fn must be callable or None")
    set_cb = _fn(lib, "lnr_set_log_cb")
    if fn is None:
        new = None
        ok = set_cb(None, None)
    else:
        def trampoline(line, _udata):
            try:
                fn(_text(line))
            except BaseException:  # noqa: B902
                _report_callback_exception("log")
        new = _LOG_CB(trampoline)
        ok = set_cb(ctypes.cast(new, ctypes.c_void_p), None)
    # The library takes its log lock to switch sinks, and holds it while a sink runs: once the
    # call returns, the previous callback is not running any more and may be released.
    _log_cb = new
    return ok != 0


def _size_arg(value, name):
    """An int for a size_t argument; -1 (refused by every setter) when it does not fit, so that
    ctypes never silently wraps 2**64 + 5 into 5."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, got %s" % (name, type(value).__name__))
    return value if value < 2 ** 64 else -1


def set_max_message_size(nbytes):
    """Sets the largest payload, in bytes, that ``send_to``/``send_all`` accept (larger ones are
    refused with ``ERR_INVALID_ARG``) and that a listener reads (a larger frame closes the
    sender's connection). Process-wide; listeners apply it from their next ``run``.

    Returns:
        True, or False for 0, a negative value or more than the default (1 GiB - 21 bytes).
    """
    n = _size_arg(nbytes, "nbytes")
    return n > 0 and _fn(_lib(), "lnr_set_max_message_size")(n) != 0


def get_max_message_size():
    """The process-wide maximum payload size in bytes (default 1 GiB - 21 = 1073741803)."""
    return int(_fn(_lib(), "lnr_get_max_message_size")())


def set_compress_threshold(nbytes):
    """Payloads strictly larger than ``nbytes`` are zstd-compressed on the wire (default 1 MiB).
    Process-wide, read at every send. Returns False for 0 or a negative value."""
    n = _size_arg(nbytes, "nbytes")
    return n > 0 and _fn(_lib(), "lnr_set_compress_threshold")(n) != 0


def get_compress_threshold():
    """The process-wide compression threshold in bytes."""
    return int(_fn(_lib(), "lnr_get_compress_threshold")())


def set_max_send_queue(messages):
    """Messages per peer held in RAM (queued, or written and awaiting acknowledgement) before
    sends to that peer fail with ``ERR_BUSY``; 0 (the default) means no count limit.
    Process-wide, read at every send. Returns False for a negative value."""
    n = _size_arg(messages, "messages")
    return n >= 0 and _fn(_lib(), "lnr_set_max_send_queue")(n) != 0


def get_max_send_queue():
    """The process-wide per-peer message limit (0: none)."""
    return int(_fn(_lib(), "lnr_get_max_send_queue")())


def set_max_send_queue_bytes(nbytes):
    """liner: bytes per peer held in RAM before sends fail with ``ERR_BUSY`` (default 8 MiB;
    always enforced). Process-wide, read at every send. Returns False for 0 or a negative
    value."""
    n = _size_arg(nbytes, "nbytes")
    return n > 0 and _fn(_lib(), "lnr_set_max_send_queue_bytes")(n) != 0


def get_max_send_queue_bytes():
    """The process-wide per-peer byte limit."""
    return int(_fn(_lib(), "lnr_get_max_send_queue_bytes")())


def set_store_wait(ms):
    """liner: how long, in milliseconds, creating a ``Client`` and ``run`` keep trying a Redis
    that does not answer (refuses connections, does not reply, or replies LOADING) before they
    fail with ``ERR_STORE``: for services that may start before their Redis. Default 0: fail
    at once, as liner_broker does. Process-wide, read when a client is created or run.
    Returns False (and changes nothing) for a negative value or one over 3,600,000 (an hour).
    """
    n = _size_arg(ms, "ms")
    return n >= 0 and _fn(_lib(), "lnr_set_store_wait")(n) != 0


def get_store_wait():
    """The process-wide store wait, in milliseconds (0: none)."""
    return int(_fn(_lib(), "lnr_get_store_wait")())


def set_lease(ms):
    """liner: how long, in milliseconds, a running client's directory entries outlive its last
    lease renewal (it renews every second). A client that crashed, was killed or lost Redis for
    longer is removed from the directory by the next client that reads the topic, about this
    long after, and registers again by itself if it was only cut off. Default 7000; from 3000
    to 3,600,000. Process-wide, read at each renewal. Returns False (and changes nothing)
    outside that range."""
    n = _size_arg(ms, "ms")
    return n >= 0 and _fn(_lib(), "lnr_set_lease")(n) != 0


def get_lease():
    """The process-wide lease, in milliseconds."""
    return int(_fn(_lib(), "lnr_get_lease")())


def _name_arg(value):
    """str/bytes/None -> bytes/None for a char* argument.

    A str that is not valid Unicode text (lone surrogates, e.g. from os.fsdecode of a bad
    name) is passed as its surrogateescape bytes, so the library refuses it as invalid UTF-8
    like any other bad name instead of Python raising UnicodeEncodeError.
    """
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    elif value is not None and not isinstance(value, bytes):
        raise TypeError("expected str, bytes or None, got %s" % type(value).__name__)
    if value and b"\0" in value:
        # A C string would end at the NUL and "a\0b" would silently become "a". Pass NUL's
        # overlong form instead, which the library refuses as invalid UTF-8.
        value = value.replace(b"\0", b"\xc0\x80")
    return value


def _data_arg(data):
    """Payload -> (pointer-compatible object, length in bytes), without copying when possible."""
    if type(data) is bytes:
        return data, len(data)
    if isinstance(data, str):
        b = data.encode("utf-8")
        return b, len(b)
    if isinstance(data, (bytearray, memoryview)):
        mv = memoryview(data)
        if not mv.contiguous:
            b = mv.tobytes()
            return b, len(b)
        n = mv.nbytes
        if n == 0:
            return b"", 0
        if mv.readonly:
            b = mv.tobytes()
            return b, n
        return (ctypes.c_char * n).from_buffer(mv.cast("B") if mv.format != "B" else mv), n
    if isinstance(data, bytes):  # bytes subclass
        return bytes(data), len(data)
    raise TypeError("data must be bytes, bytearray, memoryview or str, got %s" % type(data).__name__)


def _text(b):
    return b.decode("utf-8", "replace") if b else ""


def _valid_name(value):
    if value is None:
        return False
    if isinstance(value, str):
        try:
            value = value.encode("utf-8")
        except UnicodeEncodeError:
            return False
    if not value:
        return False
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _create_error_code(lib, reason):
    """ERR_* code of a failed creation whose arguments are non-empty valid UTF-8.

    liner's library says it (lnr_last_create_error_code); a liner_broker 1.3.1 library does
    not, and then every such failure is taken as ERR_STORE, its only cause there.
    """
    if hasattr(lib, "lnr_last_create_error_code"):
        code = lib.lnr_last_create_error_code()
        if code != OK:
            return code
    return ERR_STORE


_live_clients = weakref.WeakSet()


@atexit.register
def _close_live_clients():
    # Stop delivery threads while the interpreter can still run their callbacks: a client left
    # running at interpreter shutdown would otherwise call into a finalised interpreter.
    for client in list(_live_clients):
        try:
            client.close()
        except Exception:
            pass
    # Log lines written after this point (none are expected) go to stderr, not to Python.
    if _log_cb is not None and lib_ is not None:
        try:
            set_log_callback(None)
        except Exception:
            pass


class Client:
    """One liner peer: a listener on ``localhost`` plus a sender, sharing one Redis store.

    Args:
        uniqName: name of this client, unique across the mesh (used in Redis key names).
            Restarting with the same name and topic resumes the same channels (pending
            at-least-once messages, acknowledgements).
        topic: the client's source topic: what it listens on, and what receivers see as
            ``from_``. Several clients may share a topic (replicas): ``send_to`` then
            round-robins over them and ``send_all`` reaches all of them.
        localhost: TCP address to listen on, ``"host:port"`` or ``"[v6]:port"``; port 0 picks
            a free port (see ``bound_listen_addr()``). Its form is checked here; it is
            resolved and bound by ``run``.
        redisPath: ``"redis://[user:pass@]host[:port][/db]"`` or ``"unix:///path/to/socket"``.

    Names are ``str`` (UTF-8) or ``bytes``; they must be non-empty valid UTF-8. They are used
    raw in Redis key names, as liner_broker 1.3.1 does: avoid ``:`` and ``\\`` in them (they
    are accepted, as 1.3.1 accepted them, but liner_broker >= 1.3.3 escapes those characters,
    so such names would not match across versions; the TypeScript API refuses them).

    Raises:
        LinerError: the library is not loaded (message ``'lib not load'``), an argument is
            invalid (``ERR_INVALID_ARG``), the topic is reserved (``ERR_INTERNAL_TOPIC``) or
            Redis cannot be reached within about 2 s (``ERR_STORE``); ``message`` gives the
            library's reason.

    A client is a context manager: leaving the ``with`` block calls ``close()``.
    """

    def __init__(self, uniqName, topic, localhost, redisPath):
        self._init(uniqName, topic, localhost, redisPath, "lnr_new_client_redis")

    def _init(self, uniqName, topic, localhost, store, constructor, *extra):
        self.hClient_ = None
        self.recvCBack_ = None
        # Every ctypes callback handed to the library for this client stays referenced as long
        # as the client object lives: after a callback is replaced, a background thread may
        # still be inside the old one.
        self._callbacks = []
        self._closed_error = None
        args = [_name_arg(a) for a in (uniqName, topic, localhost, store) + extra]  # TypeError first
        self._unique_name = uniqName if isinstance(uniqName, str) else _text(uniqName)
        lib = _lib()
        self._lib = lib
        fn = getattr(lib, constructor, None)
        if fn is None:
            raise LinerError(ERR_INVALID_ARG, "%s is not in this library" % constructor)
        handle = fn(*args)
        if not handle:
            reason = ""
            if hasattr(lib, "lnr_last_create_error"):
                reason = _text(lib.lnr_last_create_error())
            if constructor == "lnr_new_client_redis" and all(
                    _valid_name(a) for a in (uniqName, topic, localhost, store)):
                code = _create_error_code(lib, reason)
            else:
                code = ERR_INVALID_ARG
            raise LinerError(code, reason or "error init client, check redisPath")
        self.hClient_ = handle
        _live_clients.add(self)

    @classmethod
    def new_sqlite(cls, uniqName, topic, localhost, sqlite_path, receivers_json=""):
        """liner_broker's SQLite store is not part of liner: always raises LinerError."""
        self = cls.__new__(cls)
        self._init(uniqName, topic, localhost, sqlite_path, "lnr_new_client_sqlite",
                   receivers_json)
        return self

    @classmethod
    def new_postgres(cls, uniqName, topic, localhost, postgres_url):
        """liner has no PostgreSQL store: always raises LinerError."""
        self = cls.__new__(cls)
        self._init(uniqName, topic, localhost, postgres_url, "lnr_new_client_postgres")
        return self

    # ---- lifecycle -----------------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()

    def __del__(self):
        try:
            if getattr(self, "hClient_", None):
                self.close()
        except Exception:
            pass

    def _handle(self):
        """The live handle, or None after close (then the call is refused without a crash)."""
        h = self.hClient_
        if not h:
            self._closed_error = (ERR_INVALID_ARG, "client is closed")
        else:
            self._closed_error = None
        return h

    def run(self, receive_cback):
        """Starts the client: binds the listen address, registers it under the source topic and
        every subscription, starts the threads, and resumes channels with pending messages.

        Args:
            receive_cback: ``fn(to: str, from_: str, data: bytes)`` called for every message:
                ``to`` is the topic it was addressed to (the source topic or a subscription),
                ``from_`` the sender's source topic, ``data`` the payload (decompressed).
                Called on the client's delivery thread; the message is acknowledged to its
                sender once the function returns. Exceptions are printed to stderr.

        Returns:
            True when running. Calling it again on a running client returns True and keeps
            the first callback. False with ``ERR_BIND``, ``ERR_STORE`` or ``ERR_STARTUP``.
        """
        if not callable(receive_cback):
            raise TypeError("receive_cback must be callable")
        h = self._handle()
        if not h:
            return False
        if self.recvCBack_ is None or not self.is_running():
            # A stopped client takes the callback given now. If the client is already running
            # the library keeps its callback, whose ctypes object stays in self._callbacks.
            self.recvCBack_ = _RECEIVE_CB(_make_trampoline(receive_cback))
            self._callbacks.append(self.recvCBack_)
        return self._lib.lnr_run(h, self.recvCBack_, None) != 0

    def stop(self):
        """Stops a running client without closing it: removes its addresses from the directory,
        sends what is queued (up to about 2 s), waits for acknowledgements, stores
        unacknowledged at-least-once messages in Redis, writes its own acknowledgements and
        joins its threads. Afterwards ``clear_*`` are allowed and ``run`` starts it again (with
        the same or another callback); at-least-once traffic resumes where it stopped.

        Returns:
            True, also on a client that is not running. False after ``close``, or when called
            from this client's own receive callback (``ERR_INVALID_ARG``).

        Thread: any thread except this client's receive, status or log callbacks.
        """
        h = self._handle()
        return bool(h) and _fn(self._lib, "lnr_stop")(h) != 0

    def is_running(self):
        """True between a successful ``run`` and ``stop``/``close``."""
        h = self._handle()
        return bool(h) and _fn(self._lib, "lnr_is_running")(h) != 0

    def close(self):
        """Stops and frees the client: removes its addresses from the directory, sends what is
        queued (waiting up to about 2 s), stores unacknowledged at-least-once messages in Redis
        and joins the threads.

        Idempotent: returns True the first time, False afterwards (nothing raised). Every
        other method returns False (or None) after close. Must not be called from this
        client's own receive callback (returns False and the client keeps running).
        """
        h = self.hClient_
        if not h:
            self._closed_error = (ERR_INVALID_ARG, "client is closed")
            return False
        ok = self._lib.lnr_delete_client(h) != 0
        if not ok and self._known(h):
            # Refused (e.g. called from this client's own callback): the client is still alive.
            self._closed_error = None
            return False
        self.hClient_ = None
        self._closed_error = None
        _live_clients.discard(self)
        return ok

    def _known(self, h):
        fn = getattr(self._lib, "lnr_last_error_message", None)
        return fn is not None and fn(h) is not None

    # ---- sending ---------------------------------------------------------------------------

    def send_to(self, to_topic, data, at_least_once_delivery=True):
        """Sends one message to one peer serving ``to_topic`` (round-robin over its replicas).

        Args:
            to_topic: destination topic (str).
            data: payload, 1 byte .. 1 GiB: ``bytes``, ``bytearray``, ``memoryview`` or
                ``str`` (sent as UTF-8). Copied before return. Payloads over 1 MiB are
                zstd-compressed on the wire.
            at_least_once_delivery: True: kept until the receiver acknowledges it, stored in
                Redis while the receiver is offline and delivered when it comes back.
                False: best effort, dropped if the receiver is down.

        Only the first send to a topic reads Redis on the calling thread (its directory, so
        that nobody serving it is ``ERR_NO_ADDR`` at once). A peer without a channel yet (the
        first send to it, or a new replica) gets it opened on the client's own thread while
        the message waits: the call never waits on Redis for that.

        Returns:
            True when queued for sending. False with ``ERR_NO_ADDR`` (nobody serves the topic),
            ``ERR_SELF_TOPIC``, ``ERR_NOT_RUNNING``, ``ERR_INVALID_ARG``, ``ERR_STORE`` (reading
            a new topic's directory failed) or ``ERR_BUSY`` (the receiver's queue is full:
            retry a little later).
        """
        h = self._handle()
        if not h:
            return False
        buf, n = _data_arg(data)
        return self._lib.lnr_send_to(h, _name_arg(to_topic), buf, n,
                                     1 if at_least_once_delivery else 0) != 0

    def send_all(self, to_topic, data, at_least_once_delivery=True):
        """Sends one copy of the message to every peer serving ``to_topic`` (its source owners
        and its subscribers). Same arguments as ``send_to``; True only if every copy was
        queued. A peer whose queue is full (``ERR_BUSY``) does not hold the others up: their
        copies are queued all the same. Retrying is safe: the next ``send_all`` from the same
        thread with the same topic, bytes and ``at_least_once_delivery`` sends only the copies
        that were refused; any other ``send_all`` from that thread ends the retry."""
        h = self._handle()
        if not h:
            return False
        buf, n = _data_arg(data)
        return self._lib.lnr_send_all(h, _name_arg(to_topic), buf, n,
                                      1 if at_least_once_delivery else 0) != 0

    def send_to_many(self, to_topic, messages, at_least_once_delivery=True):
        """Sends ``messages``, in order, to ONE peer serving ``to_topic``: round-robin picks the
        peer once per call, so the batch arrives whole and in order. One call into the library,
        one route look-up and one queue lock for the batch, where a loop of ``send_to`` pays
        them per message. (An extension of liner: liner_broker has no batch send.)

        Args:
            to_topic: destination topic (str).
            messages: a sequence of payloads, each as ``send_to``'s ``data``. Every one is
                checked before any is queued: an empty or too big one refuses the batch
                (``ERR_INVALID_ARG``, naming its index).
            at_least_once_delivery: as ``send_to``'s, for every message.

        Returns:
            How many messages were queued, counted from the first: ``len(messages)``; fewer
            (possibly 0) with ``ERR_BUSY`` when the peer's queue filled up part-way (send the
            rest a little later); 0 with any other error (those of ``send_to``).
        """
        send = getattr(self._lib, "lnr_send_to_many", None)
        if send is None:
            raise LinerError(ERR_STARTUP, "%s has no lnr_send_to_many (not liner's library)" % self._lib._name)
        h = self._handle()
        if not h:
            return 0
        payloads = [_data_arg(m) for m in messages]  # kept alive until the call returns
        n = len(payloads)
        data = (ctypes.c_void_p * max(n, 1))()
        sizes = (ctypes.c_size_t * max(n, 1))()
        for i, (buf, size) in enumerate(payloads):
            data[i] = ctypes.cast(buf, ctypes.c_void_p).value
            sizes[i] = size
        queued = ctypes.c_size_t(0)
        send(h, _name_arg(to_topic), data, sizes, n, 1 if at_least_once_delivery else 0, ctypes.byref(queued))
        return queued.value

    # ---- topics ----------------------------------------------------------------------------

    def subscribe(self, to_topic):
        """Registers this client under ``to_topic`` too: messages sent to it reach this client
        (the callback sees ``to == to_topic``). Allowed before and after ``run``; the own source
        topic is refused (``ERR_SELF_TOPIC``)."""
        h = self._handle()
        return bool(h) and self._lib.lnr_subscribe(h, _name_arg(to_topic)) != 0

    def unsubscribe(self, to_topic):
        """Undoes ``subscribe``, and marks this client as unsubscribed so that senders stop
        keeping at-least-once messages for it (a client that stops is still waited for).
        Running senders learn of it within a fraction of a second, at once after their
        ``refresh_address_topic``; then sends to a topic nobody else serves return False with
        ``ERR_NO_ADDR``."""
        h = self._handle()
        return bool(h) and self._lib.lnr_unsubscribe(h, _name_arg(to_topic)) != 0

    def refresh_address_topic(self, to_topic):
        """Re-reads the addresses serving ``to_topic`` from Redis (liner also does it by itself).
        True iff at least one address serves the topic."""
        h = self._handle()
        return bool(h) and self._lib.lnr_refresh_address_topic(h, _name_arg(to_topic)) != 0

    def clear_stored_messages(self):
        """Deletes the offline queues and acknowledgement counters of every channel this client
        sends on, and its sender->listener map. Only while not running
        (``ERR_CLEAR_WHILE_RUNNING``)."""
        h = self._handle()
        return bool(h) and self._lib.lnr_clear_stored_messages(h) != 0

    def clear_addresses_of_topic(self):
        """Deletes the whole address directory of the source topic (other replicas' addresses
        too). Only while not running (``ERR_CLEAR_WHILE_RUNNING``)."""
        h = self._handle()
        return bool(h) and self._lib.lnr_clear_addresses_of_topic(h) != 0

    # ---- status events ---------------------------------------------------------------------

    def set_status_callback(self, fn):
        """Sets (or with ``None`` clears) the status callback: ``fn(kind, topic, peer, message)``.

        Args:
            fn: called with ``kind``, one of ``PEER_CONNECTED`` .. ``SENDER_BUSY`` (1..9),
                ``SENDER_WRITABLE`` (10) or ``STORE_RECOVERED`` (11); ``topic``, the topic concerned ("" if none; for the
                listener side, the sender's source topic); ``peer``, the peer's address ("" when
                unknown, e.g. a sender seen by a listener); ``message``, short free text. All
                ``str``. Peer events concern only topics this client uses: those it sent to,
                refreshed, subscribed to or owns.

        Returns:
            True; False after ``close``. Allowed at any time, before or after ``run``.

        Thread: ``fn`` runs on the client's background threads (sender, delivery, directory
        watch), possibly at the same time as the receive callback, and for ``SENDER_BUSY`` on
        the thread that called ``send_to``. It may send and subscribe, must return quickly and
        must not ``stop`` or ``close`` this client. Exceptions are printed to stderr and
        ignored. A callback replaced or cleared may still be running on another thread when
        this returns; it is never called after that call completes.
        """
        if fn is not None and not callable(fn):
            raise TypeError("fn must be callable or None")
        h = self._handle()
        if not h:
            return False
        set_cb = _fn(self._lib, "lnr_set_status_cb")
        if fn is None:
            return set_cb(h, None, None) != 0

        def trampoline(kind, topic, peer, message, _udata):
            try:
                fn(int(kind), _text(topic), _text(peer), _text(message))
            except BaseException:  # noqa: B902
                _report_callback_exception("status")
        cb = _STATUS_CB(trampoline)
        self._callbacks.append(cb)
        return set_cb(h, ctypes.cast(cb, ctypes.c_void_p), None) != 0

    # ---- introspection ---------------------------------------------------------------------

    def unique_name(self):
        """The ``uniqName`` this client was created with (str)."""
        return self._unique_name

    def bound_listen_addr(self):
        """The address the listener is bound to, e.g. ``"127.0.0.1:40123"`` (str); None before
        the first successful ``run`` and after ``close``. Kept after ``stop``."""
        return self._address("lnr_bound_listen_addr")

    def advertise_addr(self):
        """The advertise address set with ``set_advertise_addr`` (str, as given), or None."""
        return self._address("lnr_advertise_addr")

    def published_addr(self):
        """The address registered in the directory while running, e.g. ``"127.0.0.1:40123"``:
        the advertise address (its port 0 replaced by the bound port) or else the bound one.
        None when not running."""
        return self._address("lnr_published_addr")

    def _address(self, name):
        h = self.hClient_
        fn = getattr(self._lib, name, None)
        if not h or fn is None:
            return None
        addr = fn(h)
        return addr.decode("utf-8", "replace") if addr else None

    def set_advertise_addr(self, addr):
        """Sets the address registered in the directory instead of the bound one, e.g. when
        listening on ``"0.0.0.0:0"`` or behind NAT.

        Args:
            addr: a literal ``"ip:port"`` or ``"[v6]:port"`` (no host names); port 0 stands for
                the bound port. None or "" clears it.

        Returns:
            True. False with ``ERR_ALREADY_RUNNING`` while running (set it before ``run``, or
            after ``stop``), ``ERR_INVALID_ARG`` when it is not a literal address.
        """
        h = self._handle()
        return bool(h) and _fn(self._lib, "lnr_set_advertise_addr")(h, _name_arg(addr)) != 0

    def set_handover(self, on):
        """Turns hand-over on (the default) or off, before ``run``.

        With hand-over on, at-least-once messages sent with ``send_to``/``send_to_many`` that
        wait (in RAM or in Redis) for a peer that left their topic - its lease lapsed, it
        stopped, it was scaled down; not one that unsubscribed - go to the topic's remaining
        peers about a second after this client learns of the departure. With nobody left they
        wait for that peer. ``send_all`` copies are never handed over. A handed message may
        arrive twice: at the departed peer too if it returns before the replica acknowledged
        it. Off: peer affinity, messages wait for the peer they were sent to (as liner_broker).

        Args:
            on: bool.

        Returns:
            True. False with ``ERR_ALREADY_RUNNING`` while running.
        """
        h = self._handle()
        return bool(h) and _fn(self._lib, "lnr_set_handover")(h, 1 if on else 0) != 0

    def handover(self):
        """Whether hand-over is on (bool); None after ``close``."""
        h = self.hClient_
        fn = getattr(self._lib, "lnr_handover", None)
        if not h or fn is None:
            return None
        return fn(h) == 1

    def list_addresses(self, topic):
        """The directory of ``topic``: ``[(addr, unique_name)]``, one row per peer serving it
        (its source owners and subscribers), ``[]`` if nobody does. Also refreshes the client's
        address cache for it. Works whether or not the client runs.

        Returns:
            the list, or None on error (``ERR_INVALID_ARG``, ``ERR_STORE``; see
            ``last_error_code()``).
        """
        h = self._handle()
        if not h:
            return None
        rows = []

        def on_row(addr, unique_name, _udata):
            try:
                rows.append((_text(addr), _text(unique_name)))
            except BaseException:  # noqa: B902
                _report_callback_exception("list_addresses")
        ok = _fn(self._lib, "lnr_list_addresses")(h, _name_arg(topic), _ADDR_CB(on_row), None)
        return rows if ok else None

    def pending_count(self):
        """Messages waiting in this sender's offline queues in Redis, all peers together (int),
        or -1 on error (``ERR_STORE``; see ``last_error_code()``). Messages still held in RAM
        are not counted: see ``stats()``."""
        h = self._handle()
        if not h:
            return -1
        return int(_fn(self._lib, "lnr_pending_count")(h))

    def pending_by_peer(self):
        """This sender's offline queues: ``[(addr, topic, unique_name, count)]``, one per peer
        it has a queue for (``count`` may be 0), or None on error."""
        h = self._handle()
        if not h:
            return None
        rows = []

        def on_queue(addr, topic, unique_name, count, _udata):
            try:
                rows.append((_text(addr), _text(topic), _text(unique_name), int(count)))
            except BaseException:  # noqa: B902
                _report_callback_exception("pending_by_peer")
        ok = _fn(self._lib, "lnr_pending_by_peer")(h, _PENDING_CB(on_queue), None)
        return rows if ok else None

    def stats(self):
        """liner: counters of this client since its creation, across ``stop``/``run``, as a dict
        of ints: ``messages_sent`` / ``bytes_sent`` (frames written to peers, bytes including
        the frame headers), ``messages_delivered`` / ``bytes_delivered`` (passed to the receive
        callback), ``duplicates`` (received again and dropped), ``persisted`` (stored in offline
        queues), ``reloaded`` (read back from them), ``dropped`` (best-effort messages to
        unreachable peers), ``reconnects`` (connections to peers that broke), and the current
        depths ``send_queue_messages``, ``send_queue_bytes`` (held in RAM: queued or awaiting
        acknowledgement) and ``receive_queue_bytes``. A delivery is counted once the receive
        callback returned.

        Returns:
            the dict, or None after ``close``.
        """
        h = self._handle()
        if not h:
            return None
        out = _Stats()
        out.size = ctypes.sizeof(_Stats)
        if not _fn(self._lib, "lnr_stats")(h, ctypes.byref(out)):
            return None
        return {name: int(getattr(out, name)) for name in _STATS_FIELDS}

    def last_error_code(self):
        """Code of the last call on this client made from this thread: ``OK`` or an ``ERR_*``
        constant. After ``close`` a refused call reports ``ERR_INVALID_ARG``."""
        if self._closed_error is not None or not self.hClient_:
            return self._closed_error[0] if self._closed_error else OK
        fn = getattr(self._lib, "lnr_last_error_code", None)
        return fn(self.hClient_) if fn else OK

    def last_error_message(self):
        """Message of the last call on this client made from this thread ("" when it
        succeeded)."""
        if self._closed_error is not None or not self.hClient_:
            return self._closed_error[1] if self._closed_error else ""
        fn = getattr(self._lib, "lnr_last_error_message", None)
        return _text(fn(self.hClient_)) if fn else ""


def _make_trampoline(callback):
    string_at = ctypes.string_at

    def trampoline(to, from_, data, size, _udata):
        try:
            callback(to.decode("utf-8", "replace") if to else "",
                     from_.decode("utf-8", "replace") if from_ else "",
                     string_at(data, size) if size else b"")
        except BaseException:  # noqa: B902 - a callback must never unwind into C
            try:
                sys.stderr.write("liner: exception in receive callback (delivery goes on):\n")
                traceback.print_exc()
            except BaseException:
                pass
    return trampoline
