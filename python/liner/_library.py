"""Loading the C library ``libliner_broker`` and declaring its functions for ctypes.

The loaded library is process-wide state, held here only (``lib_``): every other module reads
it through :func:`loaded_lib` or ``_library.lib_`` at call time, never copies it at import,
so that a later ``load_lib`` is seen everywhere.
"""
import ctypes
import ctypes.util
import os
import sys
import threading

from .errors import ERR_STARTUP, LinerError

_LIB_BASENAME = "liner_broker"

# The receive callback of include/liner.h. `data` is declared as a void pointer so that it is
# read with string_at(data, size) (payloads are binary and not NUL-terminated).
RECEIVE_CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
                              ctypes.c_size_t, ctypes.c_void_p)

# Status, log, directory-row and offline-queue callbacks of include/liner.h.
STATUS_CB = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                             ctypes.c_void_p)
LOG_CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)
ADDR_CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)
PENDING_CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                              ctypes.c_longlong, ctypes.c_void_p)


class Stats(ctypes.Structure):
    """lnr_stats_t."""
    _fields_ = [("size", ctypes.c_size_t)] + [(name, ctypes.c_ulonglong) for name in (
        "messages_sent", "bytes_sent", "messages_delivered", "bytes_delivered", "duplicates",
        "persisted", "reloaded", "dropped", "reconnects", "send_queue_messages",
        "send_queue_bytes", "receive_queue_bytes")]


STATS_FIELDS = tuple(name for name, _ in Stats._fields_[1:])


_LIMITS = ("max_message_size", "compress_threshold", "max_send_queue", "max_send_queue_bytes",
          "store_wait", "lease")


def _signatures():
    """restype and argtypes of every function of include/liner.h, by name."""
    c_int, c_char_p, c_void_p, c_size_t = ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t
    hclient = c_void_p
    # BOOL is an int-sized enum (0/1); c_int reads the full value.
    sigs = {
        "lnr_new_client_redis": (hclient, [c_char_p, c_char_p, c_char_p, c_char_p]),
        "lnr_new_client": (hclient, [c_char_p, c_char_p, c_char_p, c_char_p]),
        "lnr_new_client_sqlite": (hclient, [c_char_p, c_char_p, c_char_p, c_char_p, c_char_p]),
        "lnr_new_client_postgres": (hclient, [c_char_p, c_char_p, c_char_p, c_char_p]),
        "lnr_postgres_enabled": (ctypes.c_uint8, []),
        "lnr_run": (c_int, [hclient, RECEIVE_CB, c_void_p]),
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
        "lnr_version": (c_char_p, []),
        "lnr_last_error_code": (c_int, [hclient]),
        "lnr_last_error_message": (c_char_p, [hclient]),
        "lnr_last_create_error": (c_char_p, []),
        "lnr_last_create_error_code": (c_int, []),
        "lnr_bound_listen_addr": (c_char_p, [hclient]),
        # Callback parameters that may be NULL are void pointers (a CFUNCTYPE object is passed
        # cast, None as NULL).
        "lnr_stop": (c_int, [hclient]),
        "lnr_is_running": (c_int, [hclient]),
        "lnr_set_status_cb": (c_int, [hclient, c_void_p, c_void_p]),
        "lnr_set_log_cb": (c_int, [c_void_p, c_void_p]),
        "lnr_list_addresses": (c_int, [hclient, c_char_p, ADDR_CB, c_void_p]),
        "lnr_pending_count": (ctypes.c_longlong, [hclient]),
        "lnr_pending_by_peer": (c_int, [hclient, PENDING_CB, c_void_p]),
        "lnr_set_advertise_addr": (c_int, [hclient, c_char_p]),
        "lnr_advertise_addr": (c_char_p, [hclient]),
        "lnr_published_addr": (c_char_p, [hclient]),
        "lnr_set_handover": (c_int, [hclient, c_int]),
        "lnr_handover": (c_int, [hclient]),
        "lnr_stats": (c_int, [hclient, ctypes.POINTER(Stats)]),
    }
    # The process-wide limits (settings.py): BOOL lnr_set_<limit>(size_t), size_t lnr_get_<limit>().
    for limit in _LIMITS:
        sigs["lnr_set_" + limit] = (c_int, [c_size_t])
        sigs["lnr_get_" + limit] = (c_size_t, [])
    return sigs


lib_ = None            # the loaded ctypes.CDLL, None until load_lib()
_lib_lock = threading.Lock()


def _candidate_paths():
    """Where load_lib looks, in order (see its docstring for why this order)."""
    package = os.path.dirname(os.path.abspath(__file__))
    # The folder that holds this package (python/ in the repository), where liner.py stood
    # before the binding became a package: a library put next to it is still found.
    here = os.path.dirname(package)
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
    paths += [os.path.join(package, n) for n in names]
    paths += [os.path.join(repo, "build", n) for n in names]
    paths += [os.path.join(here, n) for n in names]
    return paths


def _bind(lib):
    """Declares restype/argtypes of every function of include/liner.h. A library without one
    of them is not liner's (e.g. liner_broker's own): it is refused here, at load, rather
    than failing later in whichever call needs the missing function."""
    for name, (restype, argtypes) in _signatures().items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise LinerError(ERR_STARTUP, "%s: missing symbol %s" % (lib._name, name))
        fn.restype = restype
        fn.argtypes = argtypes


def load_lib(path=None):
    """Loads the liner C library; must be called once before creating a client.
    ``loadLib`` is the same function under liner_broker 1.3.1's name.

    Args:
        path: file name of ``libliner_broker``. Without it, the first of these that exists is
            loaded:

            1. ``$LINER_LIB``: an explicit choice beats every guess.
            2. ``libliner_broker.so`` inside the ``liner`` package: the copy an installed wheel
               (``pip install liner_broker-*.whl``) carries. It was built from the same commit
               as this Python code, so it is the one that matches it; a library found
               elsewhere on the machine may be older or newer.
            3. ``<repo>/build/libliner_broker.so``: what this repository's CMake build makes,
               for a developer running the package from ``python/``. There the package folder
               holds no library (``scripts/build_wheel.sh`` stages its copy under ``build/``,
               never in ``python/liner/``), so step 2 finds nothing and each rebuild is picked
               up without a stale copy shadowing it. Installed in site-packages, this path
               points at nothing.
            4. ``libliner_broker.so`` next to the ``liner`` package folder (in the folder that
               holds it), where liner.py's library stood before the binding became a package.
            5. whatever ``ctypes.util.find_library("liner_broker")`` finds (a system install).

    Returns:
        the ``ctypes.CDLL`` object. Calling it again loads the library again (the last one
        loaded is used by clients created afterwards).

    Raises:
        LinerError: (``ERR_STARTUP``) the library cannot be found or loaded, or it lacks a
            function of include/liner.h.
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
                         "install the liner-broker wheel, build it with cmake or set LINER_LIB"
                         % (", ".join(_candidate_paths()), _LIB_BASENAME))
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


loadLib = load_lib  # liner_broker 1.3.1's name


def loaded_lib():
    """The library ``load_lib`` loaded last; LinerError ``"lib not load"`` (liner_broker
    1.3.1's words) before that."""
    lib = lib_
    if lib is None:
        raise LinerError(ERR_STARTUP, "lib not load")
    return lib


def version():
    """Version string of the loaded library, e.g. ``"1.3.1-liner.0.1.0"``.

    Raises:
        LinerError: the library is not loaded.
    """
    v = loaded_lib().lnr_version()
    return v.decode("utf-8", "replace") if v else ""
