"""A Redis proxy for fault tests: forwards a client's connections to a real redis-server and
can hold back the reply to chosen commands, deterministically.

    with RedisProxy(upstream_port) as proxy:
        proxy.delay_reply({"LPOP", "EVAL"}, seconds=2.5, times=1)
        client = liner.Client(..., proxy.url)

It reads the RESP stream both ways, so it knows which reply answers which command (Redis
answers in order on a connection). A held reply holds every later reply on that connection
too, as a stalled network would; the server has already run the command, so a client that
gives up on the reply (liner's 2 s time-out) sees exactly "it ran, but I was not told".
Pub/sub pushes, which answer no command, pass through unchanged.
"""
import collections
import socket
import threading
import time


def _resp_end(buf, pos):
    """End offset of the complete RESP value starting at buf[pos], or None if incomplete."""
    if pos >= len(buf):
        return None
    eol = buf.find(b"\r\n", pos)
    if eol < 0:
        return None
    kind, head = buf[pos:pos + 1], buf[pos + 1:eol]
    if kind in (b"+", b"-", b":"):
        return eol + 2
    if kind == b"$":
        n = int(head)
        if n < 0:
            return eol + 2
        end = eol + 2 + n + 2
        return end if end <= len(buf) else None
    if kind == b"*":
        n = int(head)
        at = eol + 2
        for _ in range(max(n, 0)):
            at = _resp_end(buf, at)
            if at is None:
                return None
        return at
    raise ValueError("not RESP: %r" % buf[pos:pos + 20])


def _command_name(buf, pos):
    """The command name of the RESP array of bulk strings at buf[pos] (upper case)."""
    eol = buf.find(b"\r\n", pos)
    if buf[pos:pos + 1] != b"*":
        return buf[pos:eol].split(b" ", 1)[0].decode().upper()  # inline command
    first = eol + 2
    eol2 = buf.find(b"\r\n", first)
    n = int(buf[first + 1:eol2])
    return bytes(buf[eol2 + 2:eol2 + 2 + n]).decode(errors="replace").upper()


class RedisProxy:
    def __init__(self, upstream_port, upstream_host="127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = self._server.getsockname()[1]
        self.url = "redis://127.0.0.1:%d/0" % self.port
        self._lock = threading.Lock()
        self._rules = []  # [commands, seconds, times left]
        self.held = []    # (command, seconds) of every reply held so far
        self.counts = collections.Counter()  # commands seen
        self._socks = []
        self._closed = False
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def delay_reply(self, commands, seconds, times=1):
        """Holds the reply to the next `times` commands named in `commands` for `seconds`."""
        with self._lock:
            self._rules.append([{c.upper() for c in commands}, seconds, times])

    def _delay_for(self, command):
        with self._lock:
            self.counts[command] += 1
            for rule in self._rules:
                if command in rule[0] and rule[2] > 0:
                    rule[2] -= 1
                    self.held.append((command, rule[1]))
                    return rule[1]
        return 0.0

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._socks += [client, upstream]
            pending = collections.deque()
            pumps = [threading.Thread(target=self._commands, args=(client, upstream, pending), daemon=True),
                     threading.Thread(target=self._replies, args=(upstream, client, pending), daemon=True)]
            with self._lock:
                self._threads += pumps
            for t in pumps:
                t.start()

    def _pump(self, src, dst, on_value):
        """Forwards src to dst one complete RESP value at a time, calling on_value(buf, at)
        before each value goes out (it may note the value, or hold it back)."""
        buf = bytearray()
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                buf += data
                at = 0
                while True:
                    end = _resp_end(buf, at)
                    if end is None:
                        break
                    on_value(buf, at)
                    dst.sendall(bytes(buf[at:end]))
                    at = end
                del buf[:at]
        except OSError:
            pass
        self._shut(src, dst)

    def _commands(self, client, upstream, pending):
        # Noted before it is forwarded: its reply cannot come back first.
        self._pump(client, upstream, lambda buf, at: pending.append(_command_name(buf, at)))

    def _replies(self, upstream, client, pending):
        def hold(buf, at):
            command = pending.popleft() if pending else ""  # pub/sub pushes answer nothing
            delay = self._delay_for(command) if command else 0.0
            if delay:
                time.sleep(delay)
        self._pump(upstream, client, hold)

    @staticmethod
    def _shut(*socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self, timeout=10.0):
        """Stops accepting, cuts every connection and waits for the proxy's threads, so that a
        test counting its process's threads afterwards sees none of them. (close() alone does
        not wake a thread blocked in accept() on Linux; shutdown() does.)"""
        self._closed = True
        self._shut(self._server)
        with self._lock:
            socks, self._socks = self._socks, []
        self._shut(*socks)
        deadline = time.monotonic() + timeout  # a held reply sleeps out its delay first
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._server.close()
        for s in socks:
            s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
