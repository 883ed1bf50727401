"""The ``Client`` class: one liner peer (a listener plus a sender) over the loaded library.

Every open client is in ``_live_clients``, so that the clients a program left open are closed
at interpreter exit, while their callbacks can still run.
"""
import atexit
import ctypes
import weakref

from . import settings
from ._args import data_arg, name_arg, old_keywords, text
from ._callbacks import receive_trampoline, row_collector, status_trampoline
from ._library import ADDR_CB, PENDING_CB, RECEIVE_CB, STATS_FIELDS, STATUS_CB, Stats, loaded_lib
from .errors import ERR_INVALID_ARG, OK, LinerError

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
    settings.restore_stderr_logging()


def _send_method(name, c_function, doc):
    """``Client.send_to`` or ``Client.send_all``: the same body around ``lnr_send_to`` or
    ``lnr_send_all``, which take the same arguments. The body is written once here but is the
    method itself, not a helper it calls: a send pays no extra Python frame."""
    def send(self, topic, data, at_least_once=True):
        h = self._handle()
        if not h:
            return False
        buf, n = data_arg(data)
        return getattr(self._lib, c_function)(h, name_arg(topic), buf, n, 1 if at_least_once else 0) != 0
    send.__name__ = name
    send.__qualname__ = "Client." + name
    send.__doc__ = doc
    return old_keywords(to_topic="topic", at_least_once_delivery="at_least_once")(send)


class Client:
    """One liner peer: a listener on ``localhost`` plus a sender, sharing one Redis store.

    Args:
        unique_name: name of this client, unique across the mesh (used in Redis key names).
            Restarting with the same name and topic resumes the same channels (pending
            at-least-once messages, acknowledgements).
        topic: the client's source topic: what it listens on, and what receivers see as
            ``from_``. Several clients may share a topic (replicas): ``send_to`` then
            round-robins over them and ``send_all`` reaches all of them.
        localhost: TCP address to listen on, ``"host:port"`` or ``"[v6]:port"``; port 0 picks
            a free port (see ``bound_listen_addr()``). Its form is checked here; it is
            resolved and bound by ``run``.
        redis_url: ``"redis://[user:pass@]host[:port][/db]"`` or ``"unix:///path/to/socket"``;
            ``"rediss://…?ca=FILE&cert=FILE&key=FILE&sni=NAME"`` for TLS (the server always
            verified), ``"redis+sentinel://h1:p1,h2:p2/master_name[/db]"`` for Sentinel,
            ``"redis+cluster://h1:p1,h2:p2"`` for a Cluster (``rediss+…`` over TLS); see
            docs/using-redis.md. SQLite and PostgreSQL URLs work too.

    liner_broker 1.3.1's keyword names ``uniqName`` and ``redisPath`` are accepted too.

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

    @old_keywords(uniqName="unique_name", redisPath="redis_url")
    def __init__(self, unique_name, topic, localhost, redis_url):
        self._init("lnr_new_client_redis", unique_name, topic, localhost, redis_url)

    def _init(self, constructor, unique_name, topic, localhost, store, *extra):
        # hClient_ (the handle) and recvCBack_ keep liner_broker 1.3.1's attribute names: its
        # programs may read them.
        self.hClient_ = None
        self.recvCBack_ = None
        # Every ctypes callback handed to the library for this client stays referenced as long
        # as the client object lives: after a callback is replaced, a background thread may
        # still be inside the old one.
        self._callbacks = []
        self._closed_error = None
        args = [name_arg(a) for a in (unique_name, topic, localhost, store) + extra]  # TypeError first
        self._unique_name = unique_name if isinstance(unique_name, str) else text(unique_name)
        lib = loaded_lib()
        self._lib = lib
        handle = getattr(lib, constructor)(*args)
        if not handle:
            # The library owns the rules and says which one failed (ERR_INVALID_ARG for a bad
            # argument, ERR_STORE, ERR_INTERNAL_TOPIC...).
            raise LinerError(lib.lnr_last_create_error_code(),
                             text(lib.lnr_last_create_error()) or "error init client, check redisPath")
        self.hClient_ = handle
        _live_clients.add(self)

    @classmethod
    @old_keywords(uniqName="unique_name")
    def new_sqlite(cls, unique_name, topic, localhost, sqlite_path, receivers_json=""):
        """A client whose store is the SQLite file ``sqlite_path`` (peers on one host, no server).

        ``receivers_json``: liner_broker's peer catalogue for peers on files of their own, a JSON
        array of ``{"topic", "addr", "client_name"}``; "" (the default) when peers share one file.
        Raises LinerError (ERR_INVALID_ARG for bad JSON, ERR_STORE for a file that cannot be opened).
        See lnr_new_client_sqlite in liner.h.
        """
        self = cls.__new__(cls)
        self._init("lnr_new_client_sqlite", unique_name, topic, localhost, sqlite_path, receivers_json)
        return self

    @classmethod
    @old_keywords(uniqName="unique_name")
    def new_postgres(cls, unique_name, topic, localhost, postgres_url):
        """A client whose store is a PostgreSQL database (peers on several hosts).

        ``postgres_url``: ``postgres://user:pass@host:port/dbname`` or libpq's
        ``"host=... dbname=..."`` form. Raises LinerError (ERR_STORE when the server cannot be
        reached or libpq is not installed). See lnr_new_client_postgres in liner.h.
        """
        self = cls.__new__(cls)
        self._init("lnr_new_client_postgres", unique_name, topic, localhost, postgres_url)
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
            self.recvCBack_ = RECEIVE_CB(receive_trampoline(receive_cback))
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
        return bool(h) and self._lib.lnr_stop(h) != 0

    def is_running(self):
        """True between a successful ``run`` and ``stop``/``close``."""
        h = self._handle()
        return bool(h) and self._lib.lnr_is_running(h) != 0

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
        if not ok and self._lib.lnr_last_error_message(h) is not None:
            # Refused (e.g. called from this client's own callback): the handle is still known,
            # the client is still alive.
            self._closed_error = None
            return False
        self.hClient_ = None
        self._closed_error = None
        _live_clients.discard(self)
        return ok

    # ---- sending ---------------------------------------------------------------------------
    # liner_broker 1.3.1 named the parameters to_topic and at_least_once_delivery: those
    # keywords are accepted too.

    send_to = _send_method(
        "send_to", "lnr_send_to",
        """Sends one message to one peer serving ``topic`` (round-robin over its replicas).

        Args:
            topic: destination topic (str).
            data: payload, 1 byte .. 1 GiB: ``bytes``, ``bytearray``, ``memoryview`` or
                ``str`` (sent as UTF-8). Copied before return. Payloads over 1 MiB are
                zstd-compressed on the wire.
            at_least_once: True: kept until the receiver acknowledges it, stored in
                Redis while the receiver is offline and delivered when it comes back.
                False: best effort, dropped if the receiver is down.

        liner_broker 1.3.1's keywords ``to_topic`` and ``at_least_once_delivery`` are accepted
        too.

        Only the first send to a topic reads Redis on the calling thread (its directory, so
        that nobody serving it is ``ERR_NO_ADDR`` at once). A peer without a channel yet (the
        first send to it, or a new replica) gets it opened on the client's own thread while
        the message waits: the call never waits on Redis for that.

        Returns:
            True when queued for sending. False with ``ERR_NO_ADDR`` (nobody serves the topic),
            ``ERR_SELF_TOPIC``, ``ERR_NOT_RUNNING``, ``ERR_INVALID_ARG``, ``ERR_STORE`` (reading
            a new topic's directory failed) or ``ERR_BUSY`` (the receiver's queue is full:
            retry a little later).
        """)

    send_all = _send_method(
        "send_all", "lnr_send_all",
        """Sends one copy of the message to every peer serving ``topic`` (its source owners
        and its subscribers). Same arguments as ``send_to``; True only if every copy was
        queued. A peer whose queue is full (``ERR_BUSY``) does not hold the others up: their
        copies are queued all the same. Retrying is safe: the next ``send_all`` from the same
        thread with the same topic, bytes and ``at_least_once`` sends only the copies
        that were refused; any other ``send_all`` from that thread ends the retry.""")

    @old_keywords(to_topic="topic", at_least_once_delivery="at_least_once")
    def send_to_many(self, topic, messages, at_least_once=True):
        """Sends ``messages``, in order, to ONE peer serving ``topic``: round-robin picks the
        peer once per call, so the batch arrives whole and in order. One call into the library,
        one route look-up and one queue lock for the batch, where a loop of ``send_to`` pays
        them per message. (An extension of liner: liner_broker has no batch send.)

        Args:
            topic: destination topic (str).
            messages: a sequence of payloads, each as ``send_to``'s ``data``. Every one is
                checked before any is queued: an empty or too big one refuses the batch
                (``ERR_INVALID_ARG``, naming its index).
            at_least_once: as ``send_to``'s, for every message.

        Returns:
            How many messages were queued, counted from the first: ``len(messages)``; fewer
            (possibly 0) with ``ERR_BUSY`` when the peer's queue filled up part-way (send the
            rest a little later); 0 with any other error (those of ``send_to``).
        """
        h = self._handle()
        if not h:
            return 0
        payloads = [data_arg(m) for m in messages]  # kept alive until the call returns
        n = len(payloads)
        data = (ctypes.c_void_p * max(n, 1))()
        sizes = (ctypes.c_size_t * max(n, 1))()
        for i, (buf, size) in enumerate(payloads):
            data[i] = ctypes.cast(buf, ctypes.c_void_p).value
            sizes[i] = size
        queued = ctypes.c_size_t(0)
        self._lib.lnr_send_to_many(h, name_arg(topic), data, sizes, n, 1 if at_least_once else 0,
                                   ctypes.byref(queued))
        return queued.value

    # ---- topics ----------------------------------------------------------------------------
    # Each also accepts liner_broker 1.3.1's keyword to_topic.

    @old_keywords(to_topic="topic")
    def subscribe(self, topic):
        """Registers this client under ``topic`` too: messages sent to it reach this client
        (the callback sees ``to == topic``). Allowed before and after ``run``; the own source
        topic is refused (``ERR_SELF_TOPIC``)."""
        h = self._handle()
        return bool(h) and self._lib.lnr_subscribe(h, name_arg(topic)) != 0

    @old_keywords(to_topic="topic")
    def unsubscribe(self, topic):
        """Undoes ``subscribe``, and marks this client as unsubscribed so that senders stop
        keeping at-least-once messages for it (a client that stops is still waited for).
        Running senders learn of it within a fraction of a second, at once after their
        ``refresh_address_topic``; then sends to a topic nobody else serves return False with
        ``ERR_NO_ADDR``."""
        h = self._handle()
        return bool(h) and self._lib.lnr_unsubscribe(h, name_arg(topic)) != 0

    @old_keywords(to_topic="topic")
    def refresh_address_topic(self, topic):
        """Re-reads the addresses serving ``topic`` from Redis (liner also does it by itself).
        True iff at least one address serves the topic."""
        h = self._handle()
        return bool(h) and self._lib.lnr_refresh_address_topic(h, name_arg(topic)) != 0

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
                ``SENDER_WRITABLE`` (10) or ``STORE_RECOVERED`` (11); ``topic``, the topic
                concerned ("" if none; for the listener side, the sender's source topic);
                ``peer``, the peer's address ("" when unknown, e.g. a sender seen by a
                listener); ``message``, short free text. All ``str``. Peer events concern only topics this client uses: those it sent to,
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
        if fn is None:
            return self._lib.lnr_set_status_cb(h, None, None) != 0
        cb = STATUS_CB(status_trampoline(fn))
        self._callbacks.append(cb)
        return self._lib.lnr_set_status_cb(h, ctypes.cast(cb, ctypes.c_void_p), None) != 0

    # ---- addresses -------------------------------------------------------------------------

    def unique_name(self):
        """The ``unique_name`` this client was created with (str)."""
        return self._unique_name

    def bound_listen_addr(self):
        """The address the listener is bound to, e.g. ``"127.0.0.1:40123"`` (str); None before
        the first successful ``run`` and after ``close``. Kept after ``stop``."""
        return self._address(self._lib.lnr_bound_listen_addr)

    def advertise_addr(self):
        """The advertise address set with ``set_advertise_addr`` (str, as given), or None."""
        return self._address(self._lib.lnr_advertise_addr)

    def published_addr(self):
        """The address registered in the directory while running, e.g. ``"127.0.0.1:40123"``:
        the advertise address (its port 0 replaced by the bound port) or else the bound one.
        None when not running."""
        return self._address(self._lib.lnr_published_addr)

    def _address(self, fn):
        h = self.hClient_
        if not h:
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
        return bool(h) and self._lib.lnr_set_advertise_addr(h, name_arg(addr)) != 0

    # ---- hand-over -------------------------------------------------------------------------

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
        return bool(h) and self._lib.lnr_set_handover(h, 1 if on else 0) != 0

    def handover(self):
        """Whether hand-over is on (bool); None after ``close``."""
        h = self.hClient_
        if not h:
            return None
        return self._lib.lnr_handover(h) == 1

    # ---- introspection ---------------------------------------------------------------------

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
        on_row = row_collector(rows, "list_addresses", lambda addr, name: (text(addr), text(name)))
        ok = self._lib.lnr_list_addresses(h, name_arg(topic), ADDR_CB(on_row), None)
        return rows if ok else None

    def pending_count(self):
        """Messages waiting in this sender's offline queues in Redis, all peers together (int),
        or -1 on error (``ERR_STORE``; see ``last_error_code()``). Messages still held in RAM
        are not counted: see ``stats()``."""
        h = self._handle()
        if not h:
            return -1
        return int(self._lib.lnr_pending_count(h))

    def pending_by_peer(self):
        """This sender's offline queues: ``[(addr, topic, unique_name, count)]``, one per peer
        it has a queue for (``count`` may be 0), or None on error."""
        h = self._handle()
        if not h:
            return None
        rows = []
        on_queue = row_collector(rows, "pending_by_peer", lambda addr, topic, name, count: (
            text(addr), text(topic), text(name), int(count)))
        ok = self._lib.lnr_pending_by_peer(h, PENDING_CB(on_queue), None)
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
        out = Stats()
        out.size = ctypes.sizeof(Stats)
        if not self._lib.lnr_stats(h, ctypes.byref(out)):
            return None
        return {name: int(getattr(out, name)) for name in STATS_FIELDS}

    # ---- errors ----------------------------------------------------------------------------

    def last_error_code(self):
        """Code of the last call on this client made from this thread: ``OK`` or an ``ERR_*``
        constant. After ``close`` a refused call reports ``ERR_INVALID_ARG``."""
        if self._closed_error is not None or not self.hClient_:
            return self._closed_error[0] if self._closed_error else OK
        return self._lib.lnr_last_error_code(self.hClient_)

    def last_error_message(self):
        """Message of the last call on this client made from this thread ("" when it
        succeeded)."""
        if self._closed_error is not None or not self.hClient_:
            return self._closed_error[1] if self._closed_error else ""
        return text(self._lib.lnr_last_error_message(self.hClient_))
