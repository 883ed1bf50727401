"""Python binding of liner, a serverless peer-to-peer message broker.

liner peers find each other through Redis (topic -> TCP address) and exchange messages over plain
TCP; Redis also keeps the offline queue of at-least-once messages. There is no broker process.
This package loads the C library ``libliner_broker`` with ctypes and offers the Python API of
liner_broker 1.4 (``load_lib``, ``Client`` and its 1.4 additions: status events, error codes,
``stop``, limits, introspection), plus liner's ``stats()`` and its ``SENDER_WRITABLE`` and
``STORE_RECOVERED`` events.

Quick start::

    import liner
    liner.load_lib()                      # the wheel's own library, or this repository's build

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

liner_broker 1.3.1 names
------------------------
Programs written for liner_broker 1.3.1 run unchanged: its names still work, as aliases of
the snake_case ones.

- ``loadLib(path)`` is ``load_lib(path)``.
- ``Client(uniqName=..., redisPath=...)`` is ``Client(unique_name=..., redis_url=...)`` (the
  same four positional arguments); also for ``Client.new_sqlite``/``new_postgres``.
- The keyword ``to_topic=`` is ``topic=`` and ``at_least_once_delivery=`` is
  ``at_least_once=``, in ``send_to``, ``send_all``, ``send_to_many``, ``subscribe``,
  ``unsubscribe`` and ``refresh_address_topic``.
- ``liner.lib_`` is the loaded ``ctypes.CDLL`` (None before ``load_lib``), and a client's
  ``hClient_`` its handle, as in 1.3.1.

Modules
-------
Everything public is imported here; the modules say where each part lives:
``errors`` (error codes, status event kinds, ``LinerError``), ``settings`` (process-wide
limits and the log callback), ``client`` (``Client``), ``_library`` (finding and loading the
library, the C declarations), ``_args`` (Python values to C arguments), ``_callbacks`` (the
functions liner's threads call into Python through).
"""
from . import _library
from ._library import load_lib, loadLib, version
from .client import Client
from .errors import (
    ERR_ALREADY_RUNNING, ERR_BIND, ERR_BUSY, ERR_CLEAR_WHILE_RUNNING, ERR_INTERNAL_TOPIC,
    ERR_INVALID_ARG, ERR_NO_ADDR, ERR_NOT_RUNNING, ERR_SELF_TOPIC, ERR_STARTUP, ERR_STORE,
    LISTENER_STORE_ERROR, OK, PEER_CONNECTED, PEER_DISCONNECTED, PEER_SUBSCRIBED,
    PEER_UNSUBSCRIBED, SENDER_BUSY, SENDER_ROUTE_LOST, SENDER_SEND_ERROR, SENDER_STORE_ERROR,
    SENDER_WRITABLE, STORE_RECOVERED, LinerError,
)
from .settings import (
    get_compress_threshold, get_lease, get_max_message_size, get_max_send_queue,
    get_max_send_queue_bytes, get_store_wait, set_compress_threshold, set_lease,
    set_log_callback, set_max_message_size, set_max_send_queue, set_max_send_queue_bytes,
    set_store_wait,
)

__all__ = [
    "load_lib", "loadLib", "version", "Client", "LinerError",
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


def __getattr__(name):
    """``liner.lib_``: the ``ctypes.CDLL`` that ``load_lib`` loaded last, None before
    (liner_broker 1.3.1's name). It is read from ``_library`` at each access: a copy taken
    here at import would stay None after ``load_lib``."""
    if name == "lib_":
        return _library.lib_
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
