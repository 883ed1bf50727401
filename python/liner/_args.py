"""Python values to and from the C types of include/liner.h.

Only conversions live here: whether a name, payload or size is acceptable is the library's rule
(it refuses with ``ERR_INVALID_ARG`` and a message), so the binding passes values through and
only refuses what cannot be passed at all (a wrong Python type raises TypeError).
"""
import ctypes
import functools


def name_arg(value):
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


def data_arg(data):
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


def size_arg(value, name):
    """An int for a size_t argument; -1 (refused by every setter) when it does not fit, so that
    ctypes never silently wraps 2**64 + 5 into 5."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, got %s" % (name, type(value).__name__))
    return value if value < 2 ** 64 else -1


def text(b):
    """A char* result or callback argument as str ("" for NULL)."""
    return b.decode("utf-8", "replace") if b else ""


def old_keywords(**renamed):
    """Lets a function also be called with liner_broker 1.3.1's keyword names, given as
    ``old_name="new_name"``: ``send_to(to_topic="t", data=b"x")`` is ``send_to(topic="t",
    data=b"x")``. Positional calls are untouched; ``help()`` shows the new signature."""
    renamed = tuple(renamed.items())

    def decorate(fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            if not kwargs:  # the common, positional call: as quick as the wrapper can be
                return fn(*args)
            for old, new in renamed:
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError("%s() got both %r and its old name %r" % (fn.__name__, new, old))
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)
        return call
    return decorate
