"""Python binding of liner, a serverless peer-to-peer message broker.

liner peers find each other through Redis (topic -> TCP address) and exchange messages over plain
TCP; Redis also keeps the offline queue of at-least-once messages. There is no broker process.
This module loads the C library ``libliner_broker`` with ctypes and offers the Python API of
liner_broker 1.3.1 (``loadLib``, ``Client``), plus error codes, ``version()`` and a few
introspection methods.

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

lib_ = None            # the loaded ctypes.CDLL, None until loadLib()
_lib_lock = threading.Lock()


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


def _name_arg(value):
    """str/bytes/None -> bytes/None for a char* argument.

    A str that is not valid Unicode text (lone surrogates, e.g. from os.fsdecode of a bad
    name) is passed as its surrogateescape bytes, so the library refuses it as invalid UTF-8
    like any other bad name instead of Python raising UnicodeEncodeError.
    """
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    raise TypeError("expected str, bytes or None, got %s" % type(value).__name__)


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

    Names are ``str`` (UTF-8) or ``bytes``; they must be non-empty valid UTF-8 without ``:``
    or ``\\``.

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
        self._closed_error = None
        self._unique_name = uniqName if isinstance(uniqName, str) else _text(uniqName)
        lib = _lib()
        self._lib = lib
        args = [_name_arg(a) for a in (uniqName, topic, localhost, store) + extra]
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
        if self.recvCBack_ is None:
            self.recvCBack_ = _RECEIVE_CB(_make_trampoline(receive_cback))
        # If the client is already running the library keeps its first callback, so the ctypes
        # object made for it stays referenced here for the client's lifetime.
        return self._lib.lnr_run(h, self.recvCBack_, None) != 0

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

        Returns:
            True when queued for sending. False with ``ERR_NO_ADDR`` (nobody serves the topic),
            ``ERR_SELF_TOPIC``, ``ERR_NOT_RUNNING``, ``ERR_INVALID_ARG``, ``ERR_STORE`` or
            ``ERR_BUSY`` (the receiver's queue is full: retry a little later).
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
        queued."""
        h = self._handle()
        if not h:
            return False
        buf, n = _data_arg(data)
        return self._lib.lnr_send_all(h, _name_arg(to_topic), buf, n,
                                      1 if at_least_once_delivery else 0) != 0

    # ---- topics ----------------------------------------------------------------------------

    def subscribe(self, to_topic):
        """Registers this client under ``to_topic`` too: messages sent to it reach this client
        (the callback sees ``to == to_topic``). Allowed before and after ``run``; the own source
        topic is refused (``ERR_SELF_TOPIC``)."""
        h = self._handle()
        return bool(h) and self._lib.lnr_subscribe(h, _name_arg(to_topic)) != 0

    def unsubscribe(self, to_topic):
        """Undoes ``subscribe``. Running senders learn of it within a fraction of a second;
        sends to a topic nobody serves any more return False with ``ERR_NO_ADDR``."""
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

    # ---- introspection ---------------------------------------------------------------------

    def unique_name(self):
        """The ``uniqName`` this client was created with (str)."""
        return self._unique_name

    def bound_listen_addr(self):
        """The address the listener is bound to, e.g. ``"127.0.0.1:40123"`` (str); None before
        the first successful ``run`` and after ``close``."""
        h = self.hClient_
        fn = getattr(self._lib, "lnr_bound_listen_addr", None)
        if not h or fn is None:
            return None
        addr = fn(h)
        return addr.decode("utf-8", "replace") if addr else None

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
