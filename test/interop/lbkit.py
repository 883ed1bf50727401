"""The interop test kit: lbpeer processes, the two stores, and the scenarios both files run.

test_interop.py runs liner and liner_broker 1.3.1 peers on one Redis, test_interop_sql_stores.py
on one SQLite file and on one PostgreSQL database; conftest.py here turns this
kit into the `peers` and `clients` fixtures over each module's `store` fixture (a RedisStore, a
SqliteStore or a PostgresStore). The scenarios below take those fixtures and the store, so each
behaviour is written once and pinned on every store.
"""
import json
import os
import re
import subprocess
import threading
import time
import uuid

import liner
# The shared test kit (test/conftest.py puts it on the path).
from liner_testkit import Inbox, free_port, sqlite_query, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_DIR = os.path.join(HERE, "peer")
PEER_BIN = os.path.join(PEER_DIR, "target", "release", "lbpeer")

# 1.3.1's reconnect tick is 10 s; a restarted listener is reached within one tick after it is up.
OFFLINE_DELIVERY_TIMEOUT = 45.0
FLOW_TIMEOUT = 20.0
MIB = 1024 * 1024


# ---- payloads and waiting -----------------------------------------------------------------

def gen_payload(seq, size):
    """Twin of lbpeer's gen_payload: b"seq=NNNNNN|" then bytes (seq + j) & 0xff, cut to size."""
    head = b"seq=%06d|" % seq
    n = max(0, size - len(head))
    pattern = bytes((seq + j) & 0xff for j in range(256))
    return (head + pattern * (n // 256 + 1))[:size]


def deliver(count, n, timeout, nudge=None, grace=15.0):
    """Waits until count() >= n; returns count().

    With `nudge` (used when an lbpeer listens): calls it every 0.25 s once something arrived
    (or after `grace` seconds), so that a burst tail that 1.3.1's listener left unread is read.
    """
    start = deadline = time.monotonic()
    deadline += timeout
    while count() < n and time.monotonic() < deadline:
        time.sleep(0.25)
        if nudge and (count() > 0 or time.monotonic() - start > grace):
            nudge()
    return count()


def seq_of(data):
    """Sequence number of a gen_payload() payload (None for anything else)."""
    m = re.match(rb"seq=(\d{6})\|", data)
    return int(m.group(1)) if m else None


def describe(payloads):
    """Short form of a payload list for assertion messages."""
    return [(len(p), p[:16]) for p in payloads]


def flow_payloads():
    """Payloads for the flow tests: edge sizes around the compression threshold (> 1 MiB is zstd,
    exactly 1 MiB is not), binary with NULs, incompressible and compressible big ones."""
    rnd = os.urandom
    return [
        b"x",
        b"hello from the other side",
        bytes(range(256)) * 4,                      # every byte value, NULs included
        rnd(200 * 1024),                            # spans many 64 KiB buffers
        rnd(MIB),                                   # exactly 1 MiB: not compressed
        b"\x00" + b"compressible " * (MIB // 13 + 1),   # 1 MiB + a bit: zstd, shrinks a lot
        rnd(3 * MIB + 7),                           # zstd output larger than input, still used
        b"tail",
    ]


def flow_plan(topic, sub, at_least_once=lambda i: i % 2 == 0):
    """[(topic, payload, at_least_once)]: flow_payloads() to `topic` and, every third, `sub`."""
    return [(topic if i % 3 else sub, p, at_least_once(i)) for i, p in enumerate(flow_payloads())]


def assert_flow(got, plan, source, log):
    """The (to, from, data) triples `got` are the (topic, data, at-least-once) `plan`, in order:
    the same topics, `source` as from, byte-identical payloads. log() explains a failure."""
    assert [(to, frm) for to, frm, _ in got] == [(t, source) for t, _, _ in plan], log()
    for i, ((_, _, data), (_, sent, _)) in enumerate(zip(got, plan)):
        assert data == sent, "payload #%d differs: got %d bytes, sent %d" % (
            i, len(data), len(sent))


def run_client(client, inbox):
    assert client.run(inbox), "liner run failed: %s %s" % (client.last_error_code(),
                                                           client.last_error_message())
    return client.bound_listen_addr()


# ---- lbpeer -------------------------------------------------------------------------------

class Peer:
    """One lbpeer process; a thread collects its stdout lines (see peer/src/main.rs).

    `store_args` names its store: ("--redis", URL), ("--sqlite", PATH) or ("--postgres", URL)
    (Store.peer_args()).
    """

    def __init__(self, log_dir, store_args, name, topic, listen, *args, stdin=False,
                 timeout_ms=60000):
        self.name = name
        self.log_path = os.path.join(log_dir, "lbpeer-%s-%d.log" % (name, time.monotonic_ns()))
        self.cond = threading.Condition()
        self.lines = []
        self.cursor = 0  # first line not yet consumed by command()
        cmd = [PEER_BIN, "--name", name, "--topic", topic, "--listen", listen,
               *store_args, "--timeout-ms", str(timeout_ms)] + [str(a) for a in args]
        if stdin:
            cmd.append("--stdin")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=log)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # EOF marker
            self.cond.notify_all()

    def _wait_line(self, pred, start, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    if line is None:
                        return None, i
                    if pred(line):
                        return line, i
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, i
                self.cond.wait(left)

    def wait_ready(self, timeout=15.0):
        """Waits for READY; returns the bound address."""
        line, i = self._wait_line(lambda l: l.startswith(("READY\t", "FAIL\t")), 0, timeout)
        assert line and line.startswith("READY\t"), "lbpeer %s did not start: %r\n%s" % (
            self.name, line, self.log())
        self.cursor = i + 1
        return line.split("\t", 1)[1]

    def command(self, text, timeout=30.0):
        """Sends one stdin command and waits for its OK/FAIL answer; returns True on OK."""
        try:
            self.proc.stdin.write(text.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise AssertionError("lbpeer %s is gone\n%s" % (self.name, self.log())) from None
        line, i = self._wait_line(lambda l: l.startswith(("OK\t", "FAIL\t")), self.cursor, timeout)
        assert line is not None, "lbpeer %s: no answer to %r\n%s" % (
            self.name, text[:80], self.log())
        self.cursor = i + 1
        return line.startswith("OK\t")

    def quit(self, timeout=15.0):
        """Ends the stdin session gracefully (the client is dropped); returns the exit code."""
        try:
            self.proc.stdin.write(b"quit\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass
        return self.wait_exit(timeout)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def received(self):
        """[(to, from_, data)] in callback order."""
        with self.cond:
            lines = [l for l in self.lines if l is not None and l.startswith("RECV\t")]
        out = []
        for l in lines:
            _, to, from_, hexdata = l.split("\t", 3)
            out.append((to, from_, bytes.fromhex(hexdata)))
        return out

    def log(self):
        """The tail of this peer's stdout events and stderr, for assertion messages."""
        with self.cond:
            events = [l[:120] for l in self.lines if l is not None][-15:]
        try:
            with open(self.log_path, "rb") as f:
                err = f.read()[-3000:].decode("utf-8", "replace")
        except OSError:
            err = ""
        return "lbpeer %s exit=%s\nstdout tail:\n  %s\nstderr tail:\n%s" % (
            self.name, self.proc.poll(), "\n  ".join(events), err)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                try:
                    stream.close()
                except OSError:
                    pass


# ---- the stores ---------------------------------------------------------------------------
#
# All speak the protocol's words (spec 2.2): a sender's connection key for one listener, the
# listener's ack (`mess_number`) and the sender's offline queue on that connection.

def normaliser(names):
    """Replaces the scenario's names in a text by placeholders ("{S_name}"), longest first."""
    ordered = sorted(names.items(), key=lambda kv: -len(kv[1]))

    def norm(text):
        for placeholder, value in ordered:
            text = text.replace(value, "{%s}" % placeholder)
        return text
    return norm


class RedisStore:
    """The session's redis-server (test/conftest.py), as the interop scenarios see a store."""

    def __init__(self, redis):
        self.redis = redis

    def peer_args(self):
        return ("--redis", self.redis.url)

    def client(self, name, topic, localhost="127.0.0.1:0"):
        return liner.Client(name, topic, localhost, self.redis.url)

    def _int(self, *command):
        value = self.redis.cli(*command)
        return int(value) if re.fullmatch(r"-?\d+", value) else None

    def connection_key(self, sender, sender_topic, listener):
        return self._int("GET", "lnr_connection:%s:%s:%s:key" % (sender, sender_topic, listener))

    def acked(self, ck):
        return self._int("GET", "lnr_connection:%s:mess_number" % ck)

    def queued(self, ck):
        return self._int("LLEN", "lnr_connection:%s:messages" % ck)

    def clear(self):
        self.redis.cli("FLUSHALL")

    def describe(self):
        """Every key with its type and (short) value, one per line, for assertion messages."""
        redis, lines = self.redis, []
        for key in redis.keys():
            kind = redis.cli("TYPE", key)
            if kind == "string":
                value = redis.cli("GET", key)[:60]
            elif kind == "hash":
                value = redis.cli("HGETALL", key).replace("\n", " ")
            elif kind == "list":
                value = "%s elements" % redis.cli("LLEN", key)
            else:
                value = ""
            lines.append("  %s (%s) %s" % (key, kind, value))
        return "\n".join(lines)

    def dump(self, names, ck, addrs):
        """Every key as {normalised name: (type, normalised value)}; names, the connection key and
        addresses are replaced by placeholders, allocated integers by "{int}"."""
        redis, norm, out = self.redis, normaliser(names), {}
        for key in redis.keys():
            kind = redis.cli("TYPE", key)
            name = norm(key).replace("lnr_connection:%s:" % ck, "lnr_connection:{ck}:")
            if kind == "string":
                value = redis.cli("GET", key, raw=True)
                if key == "lnr_unique_key" or key.endswith(":key"):
                    value = "{int}" if re.fullmatch(r"-?\d+", value) else value
                else:
                    value = norm(value)
            elif kind == "hash":
                flat = redis.cli("HGETALL", key, raw=True).split("\n")
                value = {addrs.get(flat[i], flat[i]): norm(flat[i + 1])
                         for i in range(0, len(flat) - 1, 2)}
            elif kind == "list":
                value = "list of %s" % redis.cli("LLEN", key)
            else:
                value = None
            out[name] = (kind, value)
        return out


class SqlTables:
    """What the SQLite and PostgreSQL stores share: liner_broker 1.3.1's tables (src/store/sqlite.rs
    and src/store/postgres.rs of the crate have the same tables and columns), the scenarios'
    questions asked of them, and their normalised dump. A subclass gives query(sql, *params) ->
    [row tuple] ([] while no peer has made the tables yet) and tables()."""

    # The one integer column whose value the scenarios compare (the ack count); every other
    # integer is allocated (seq, topic keys, row ids) and compared as "{int}" or "{ck}".
    KEPT_INTEGERS = {("conn_mess_number", "v")}
    # The one column liner adds to a 1.3.1 table (docs/using-sqlite.md, docs/using-postgres.md):
    # the listener's unique name beside each listener a sender remembers. 1.3.1 never names it,
    # so it is not compared.
    LINER_COLUMNS = {("sender_listener", "client_name")}

    def _int(self, sql, *params):
        rows = self.query(sql, *params)
        return rows[0][0] if rows else None

    def connection_key(self, sender, sender_topic, listener):
        return self._int("SELECT connection_key FROM conn_key_map WHERE composite = ?",
                         "%s:%s:%s" % (sender, sender_topic, listener))

    def acked(self, ck):
        return self._int("SELECT v FROM conn_mess_number WHERE connection_key = ?", ck)

    def queued(self, ck):
        return self._int("SELECT COUNT(*) FROM conn_messages WHERE connection_key = ?", ck)

    def describe(self):
        """Every table with its rows, for assertion messages."""
        def short(v):
            return "<%d bytes>" % len(v) if isinstance(v, bytes) else v
        return "\n".join("  %s %s: %s" % (table, columns,
                                           [tuple(map(short, row)) for row in rows[:20]])
                         for table, (columns, rows) in self.tables().items())

    def dump(self, names, ck, addrs):
        """Every table as {name: (columns, sorted normalised rows)}: names and addresses become
        placeholders, `ck` becomes "{ck}", allocated integers "{int}", blobs their kind."""
        norm = normaliser(names)

        def cell(table, column, value):
            if isinstance(value, bytes):
                return "{blob}"
            if isinstance(value, str):
                return addrs.get(value) or norm(value)
            if column == "connection_key" and value == ck:
                return "{ck}"
            return value if (table, column) in self.KEPT_INTEGERS else "{int}"

        def compared(table, columns, rows):
            keep = [i for i, c in enumerate(columns) if (table, c) not in self.LINER_COLUMNS]
            return (tuple(columns[i] for i in keep),
                    sorted((tuple(cell(table, columns[i], row[i]) for i in keep) for row in rows), key=repr))

        return {table: compared(table, columns, rows) for table, (columns, rows) in self.tables().items()}


class SqliteStore(SqlTables):
    """One SQLite file shared by every peer of a test, in liner_broker 1.3.1's tables
    (src/store/sqlite.rs of the crate); read with Python's sqlite3 module in a child process
    (liner_testkit.sqlite_query says why)."""

    def __init__(self, path):
        self.path = str(path)

    def peer_args(self):
        return ("--sqlite", self.path)

    def client(self, name, topic, localhost="127.0.0.1:0"):
        return liner.Client.new_sqlite(name, topic, localhost, self.path)

    def query(self, sql, *params):
        """The rows of one query; [] while no peer has created the file yet."""
        if not os.path.exists(self.path):
            return []
        return sqlite_query(self.path, sql, *params)

    def clear(self):
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(self.path + suffix):
                os.remove(self.path + suffix)

    def tables(self):
        """{table: (column names, rows)} of every table, as stored."""
        out = {}
        for (table,) in self.query("SELECT name FROM sqlite_master WHERE type = 'table' "
                                   "AND name NOT LIKE 'sqlite_%' ORDER BY name"):
            columns = tuple(row[1] for row in self.query("PRAGMA table_info(%s)" % table))
            out[table] = (columns, self.query("SELECT * FROM %s" % table))
        return out


class PostgresStore(SqlTables):
    """One PostgreSQL database shared by every peer of a test, in liner_broker 1.3.1's tables
    (src/store/postgres.rs of the crate). Each store is a NEW database on the server `server_url`
    names (the run's throwaway one, $LINER_TEST_POSTGRES_URL); clear() moves to another new one.
    Read with psql (no PostgreSQL module for Python is needed), without the sanitizer runtime
    scripts/sanitize.sh may preload (it hangs psql at exit)."""

    def __init__(self, server_url):
        self.server_url = server_url
        self.env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        self.url = None
        self.clear()

    def peer_args(self):
        return ("--postgres", self.url)

    def client(self, name, topic, localhost="127.0.0.1:0"):
        return liner.Client.new_postgres(name, topic, localhost, self.url)

    def psql(self, url, sql):
        out = subprocess.run(["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                              "-c", sql], capture_output=True, stdin=subprocess.DEVNULL,
                             env=self.env, timeout=30)
        if out.returncode != 0:
            raise RuntimeError("psql %r: %s" % (sql[:200], out.stderr.decode("utf-8", "replace")))
        return out.stdout.decode("utf-8")

    @staticmethod
    def literal(value):
        if isinstance(value, int):
            return str(value)
        return "'%s'" % str(value).replace("'", "''")

    def _json(self, sql):
        """The rows of `sql` as a list of JSON objects (columns in order; bytea as "\\x..")."""
        text = self.psql(self.url, "SELECT COALESCE(json_agg(q), '[]') FROM (%s) q" % sql).strip()
        return json.loads(text, object_pairs_hook=lambda pairs: pairs)

    def query(self, sql, *params):
        """The rows of one query (`?` placeholders); [] while no peer has made the table yet."""
        parts = sql.split("?")
        assert len(parts) == len(params) + 1, sql
        sql = parts[0] + "".join(self.literal(p) + rest for p, rest in zip(params, parts[1:]))
        try:
            rows = self._json(sql)
        except RuntimeError as e:
            if "does not exist" in str(e):
                return []
            raise
        return [tuple(v for _, v in row) for row in rows]

    def clear(self):
        """Moves to a new, empty database (the old one stays until the server goes)."""
        name = "interop_" + uuid.uuid4().hex[:12]
        self.psql(self.server_url, "CREATE DATABASE " + name)
        self.url = self.server_url.rsplit("/", 1)[0] + "/" + name

    def tables(self):
        """{table: (column names, rows)} of every table of the public schema, bytea as bytes."""
        columns = {}
        for table, column, kind in self.query(
                "SELECT table_name::text, column_name::text, data_type::text "
                "FROM information_schema.columns WHERE table_schema = 'public' "
                "ORDER BY table_name, ordinal_position"):
            columns.setdefault(table, []).append((column, kind))
        out = {}
        for table, cols in columns.items():
            rows = self.query("SELECT * FROM %s" % table)
            rows = [tuple(bytes.fromhex(v[2:]) if kind == "bytea" and v is not None else v
                          for v, (_, kind) in zip(row, cols)) for row in rows]
            out[table] = (tuple(c for c, _ in cols), rows)
        return out


# ---- scenarios both stores run ------------------------------------------------------------

def flow_liner_to_lb_listener(peers, clients, plan, route=lambda lb_addr: None):
    """liner client ln_sender (topic ln_topic) sends `plan` [(topic, payload, at_least_once)] with
    send_to to lbpeer lb_listener (topic lb_topic, subscribed to lb_sub) and checks with
    assert_flow what it received, late duplicates included. `route(lb_addr)` runs once the
    listener is up, before the sender starts (the Redis test puts a relay in between)."""
    lb = peers("lb_listener", "lb_topic", "127.0.0.1:0", "--subscribe", "lb_sub",
               "--nudge-topic", "lb_nudge", "--expect", len(plan), "--linger-ms", 1500)
    route(lb.wait_ready())

    sender = clients("ln_sender", "ln_topic")
    run_client(sender, Inbox())
    for i, (topic, data, alo) in enumerate(plan):
        assert sender.send_to(topic, data, alo), "send_to #%d failed: %s %s" % (
            i, sender.last_error_code(), sender.last_error_message())

    deliver(lambda: len(lb.received()), len(plan), FLOW_TIMEOUT,
            nudge=lambda: sender.send_to("lb_nudge", b"nudge", False))
    assert lb.wait_exit(10) == 0, lb.log()
    assert_flow(lb.received(), plan, "ln_topic", lb.log)


def flow_lb_to_liner_listener(peers, clients, plan, route=lambda ln_addr: None):
    """The reverse direction: lbpeer lb_sender (topic lb_topic) sends `plan` to liner client
    ln_listener (topic ln_topic, subscribed to ln_sub after run, like lbpeer), which receives it
    byte-identical, once, in order. `route(ln_addr)` as above."""
    inbox = Inbox()
    listener = clients("ln_listener", "ln_topic")
    ln_addr = run_client(listener, inbox)
    assert listener.subscribe("ln_sub")  # after run, like lbpeer (send_all tests do it before)
    route(ln_addr)

    lb = peers("lb_sender", "lb_topic", "127.0.0.1:0", stdin=True)
    lb.wait_ready()
    for topic, data, alo in plan:
        assert lb.command("send_to %s %s %s" % (topic, data.hex(), "alo" if alo else "be")), (
            lb.log())

    inbox.wait_count(len(plan), FLOW_TIMEOUT)
    time.sleep(1.5)  # late duplicates would show up here
    assert_flow(inbox.snapshot(), plan, "lb_topic", lb.log)
    assert lb.quit() == 0, lb.log()


OFFLINE_COUNT = 20
OFFLINE_SIZE = 300


def assert_offline_queue_drained(store, sender, sender_topic, listener):
    """Once everything is delivered, the channel's offline queue (spec 2.2
    `lnr_connection:{ck}:messages`, table conn_messages) is empty, so a later restart of the
    sender cannot replay it."""
    ck = store.connection_key(sender, sender_topic, listener)
    assert ck is not None, store.describe()
    assert wait_until(lambda: store.queued(ck) == 0, 5), (
        "connection %s still holds %s frames after delivery\n%s" % (ck, store.queued(ck),
                                                                    store.describe()))


def offline_delivery_to_restarted_lb_listener(peers, clients, store):
    """liner sender, liner_broker listener offline: messages sent while it is down reach it once,
    in order, after it restarts with the same name, topic and address."""
    listen = "127.0.0.1:%d" % free_port()
    first = peers("lb_listener", "lb_topic", listen, "--expect", 1)
    first.wait_ready()

    sender = clients("ln_sender", "ln_topic")
    run_client(sender, Inbox())
    assert sender.send_to("lb_topic", b"warm-up", True)
    # The first run ends by itself after the warm-up, flushing its ack on the way out.
    assert first.wait_exit(FLOW_TIMEOUT) == 0, first.log()
    assert [d for _, _, d in first.received()] == [b"warm-up"], first.log()

    expected = [gen_payload(seq, OFFLINE_SIZE) for seq in range(1, OFFLINE_COUNT + 1)]
    for i, data in enumerate(expected):
        assert sender.send_to("lb_topic", data, True), (
            "send_to #%d while the listener is down: %s %s" % (
                i, sender.last_error_code(), sender.last_error_message()))
    time.sleep(1.0)  # the listener stays down a little while

    second = peers("lb_listener", "lb_topic", listen, "--nudge-topic", "lb_nudge",
                   "--expect", OFFLINE_COUNT, "--linger-ms", 2000,
                   timeout_ms=int(OFFLINE_DELIVERY_TIMEOUT * 1000))
    assert second.wait_ready() == listen
    # Nudges are best-effort and numbered after the backlog, so they never overtake it.
    deliver(lambda: len(second.received()), OFFLINE_COUNT, OFFLINE_DELIVERY_TIMEOUT,
            nudge=lambda: sender.send_to("lb_nudge", b"nudge", False))
    assert second.wait_exit(10) == 0, second.log()
    got = second.received()
    assert [(to, frm) for to, frm, _ in got] == [("lb_topic", "ln_topic")] * len(got)
    assert [d for _, _, d in got] == expected, (
        "got %s\n%s" % (describe([d for _, _, d in got]), second.log()))
    assert_offline_queue_drained(store, "ln_sender", "ln_topic", "lb_listener")


def offline_delivery_to_restarted_liner_listener(peers, clients, store):
    """liner_broker sender, liner listener offline: same contract in the other direction."""
    listen = "127.0.0.1:%d" % free_port()
    inbox = Inbox()
    first = clients("ln_listener", "ln_topic", listen)
    assert run_client(first, inbox) == listen

    lb = peers("lb_sender", "lb_topic", "127.0.0.1:0", stdin=True,
               timeout_ms=int((OFFLINE_DELIVERY_TIMEOUT + 60) * 1000))
    lb.wait_ready()
    assert lb.command("gen_to ln_topic 0 1 %d alo" % OFFLINE_SIZE)
    assert inbox.wait_count(1, FLOW_TIMEOUT) == 1, lb.log()
    assert first.close()  # stops the listener; acks what it delivered

    # 1.3.1 notices the closed connection only when a write fails, which takes a second write
    # after the peer went away: hence the 100 ms spacing. Then it stores the messages and
    # retries the connection every 10 s.
    assert lb.command("gen_to ln_topic 1 %d %d alo 100" % (OFFLINE_COUNT, OFFLINE_SIZE)), lb.log()
    time.sleep(1.0)

    inbox2 = Inbox()
    second = clients("ln_listener", "ln_topic", listen)
    assert run_client(second, inbox2) == listen
    inbox2.wait_count(OFFLINE_COUNT, OFFLINE_DELIVERY_TIMEOUT)
    time.sleep(2.0)  # late duplicates would show up here
    got = inbox2.snapshot()
    expected = [gen_payload(seq, OFFLINE_SIZE) for seq in range(1, OFFLINE_COUNT + 1)]
    assert [d for _, _, d in got] == expected, (
        "got %s\nstore:\n%s\n%s" % (describe([d for _, _, d in got]), store.describe(), lb.log()))
    assert [(to, frm) for to, frm, _ in got] == [("ln_topic", "lb_topic")] * len(got)
    assert_offline_queue_drained(store, "lb_sender", "lb_topic", "ln_listener")
    assert lb.quit() == 0, lb.log()


# ---- send_all over mixed replicas ---------------------------------------------------------

FANOUT_COUNT = 5
WARM_UP = b"warm-up"


def send_all_to_mixed_replicas(peers, clients, store, sender_kind, layout):
    """send_all to a topic served by 2 liner clients and 1 liner_broker peer (as subscribers, or
    as replicas with it as their source topic) delivers every message to each, once, in order."""
    topic = "fanout"

    def identity(name):
        # (source topic, extra lbpeer args / liner subscription)
        return (name + "_t", topic) if layout == "subscribers" else (topic, None)

    # ln_r1 subscribes before run, ln_r2 after: liner registers its bound address either way
    # (1.3.1 registered the unresolved "127.0.0.1:0" before run, which is why lbpeer subscribes
    # after run).
    inboxes, bound = [], {}
    for name, before_run in (("ln_r1", True), ("ln_r2", False)):
        own, sub = identity(name)
        client = clients(name, own)
        if sub and before_run:
            assert client.subscribe(sub)
        inbox = Inbox()
        bound[name] = run_client(client, inbox)
        if sub and not before_run:
            assert client.subscribe(sub)
        inboxes.append((name, inbox))
    messages = [gen_payload(seq, 64) for seq in range(1, FANOUT_COUNT + 1)]
    if sender_kind == "liner_broker":
        # 1.3.1's sender can lose a new address added while it is connecting another one (its
        # write loop overwrites the pending-address list after connecting), which a send_all to
        # three new replicas hits at random. So it meets them one by one first: send_to
        # round-robins over the directory, one warm-up message each.
        messages = [WARM_UP] + messages
    own, sub = identity("lb_r3")
    lb_replica = peers("lb_r3", own, "127.0.0.1:0", *(["--subscribe", sub] if sub else []),
                       "--expect", len(messages), "--linger-ms", 1500)
    bound["lb_r3"] = lb_replica.wait_ready()

    # Spaced by 200 ms so that the lbpeer replica reads each message on its own (no nudging here:
    # a nudge topic would be one more send_all target).
    if sender_kind == "liner":
        sender = clients("ln_sender", "sender_t")
        run_client(sender, Inbox())
        for data in messages:
            assert sender.send_all(topic, data, True), (sender.last_error_code(),
                                                        sender.last_error_message())
            time.sleep(0.2)
    else:
        lb_sender = peers("lb_sender", "sender_t", "127.0.0.1:0", stdin=True)
        lb_sender.wait_ready()
        for _ in range(3):
            assert lb_sender.command("send_to %s %s alo" % (topic, WARM_UP.hex())), lb_sender.log()
            time.sleep(0.3)
        assert lb_sender.command("gen_all %s 1 %d 64 alo 200" % (topic, FANOUT_COUNT)), (
            lb_sender.log())

    for name, inbox in inboxes:
        inbox.wait_count(len(messages), FLOW_TIMEOUT)
    assert lb_replica.wait_exit(FLOW_TIMEOUT) == 0, lb_replica.log()
    time.sleep(0.5)
    results = {name: inbox.snapshot() for name, inbox in inboxes}
    results["lb_r3"] = lb_replica.received()
    wrong = {name: ([seq_of(d) for _, _, d in got], sorted({(to, frm) for to, frm, _ in got}))
             for name, got in results.items()
             if [d for _, _, d in got] != messages
             or {(to, frm) for to, frm, _ in got} != {(topic, "sender_t")}}
    assert not wrong, (
        "replicas that did not get %s with (to, from) = %s: %s\nbound: %s\n"
        "store:\n%s\n%s\n%s" % (
            [seq_of(d) for d in messages], (topic, "sender_t"), wrong, bound, store.describe(),
            lb_replica.log(), lb_sender.log() if sender_kind == "liner_broker" else ""))
    if sender_kind == "liner_broker":
        assert lb_sender.quit() == 0, lb_sender.log()


KEYS_MESSAGES = [(b"one", True), (b"two", True), (b"three", False), (b"four", True)]


def pair_scenario(kind_sender, kind_listener, peers, clients, store, tag):
    """A listener runs, a sender runs and sends KEYS_MESSAGES to it, the listener acks them.

    Returns store.dump() (names, the connection key and addresses normalised), read while both
    still run: a liner client removes its address on close, which 1.3.1 never does; that
    difference is deliberate and not compared here.
    """
    names = {"S_name": tag + "snd", "S_topic": tag + "snd_t",
             "L_name": tag + "lsn", "L_topic": tag + "lsn_t"}
    stop = []
    received = None
    if kind_listener == "liner":
        inbox = Inbox()
        listener = clients(names["L_name"], names["L_topic"])
        l_addr = run_client(listener, inbox)
        received = lambda: len(inbox.snapshot())  # noqa: E731
    else:
        lp = peers(names["L_name"], names["L_topic"], "127.0.0.1:0", stdin=True)
        l_addr = lp.wait_ready()
        received = lambda: len(lp.received())  # noqa: E731
        stop.append(lp.quit)
    if kind_sender == "liner":
        sender = clients(names["S_name"], names["S_topic"])
        s_addr = run_client(sender, Inbox())
        for data, alo in KEYS_MESSAGES:
            assert sender.send_to(names["L_topic"], data, alo)
            time.sleep(0.3)  # spaced: an lbpeer listener then reads each message on its own
    else:
        sp = peers(names["S_name"], names["S_topic"], "127.0.0.1:0", stdin=True)
        s_addr = sp.wait_ready()
        for data, alo in KEYS_MESSAGES:
            assert sp.command("send_to %s %s %s" % (names["L_topic"], data.hex(),
                                                     "alo" if alo else "be"))
            time.sleep(0.3)
        stop.insert(0, sp.quit)

    assert wait_until(lambda: received() >= len(KEYS_MESSAGES), FLOW_TIMEOUT), (
        kind_sender, kind_listener, received())
    ck = wait_until(lambda: store.connection_key(names["S_name"], names["S_topic"],
                                                 names["L_name"]), 5)
    assert ck is not None, (names, store.describe())
    # Acks are written about once a second after delivery.
    assert wait_until(lambda: store.acked(ck) == len(KEYS_MESSAGES), 5), (
        ck, store.acked(ck), store.describe())
    time.sleep(1.5)  # let any periodic writer run once more before the snapshot
    snapshot = store.dump(names, ck, {l_addr: "{L_addr}", s_addr: "{S_addr}"})
    for fn in stop:
        fn()
    return snapshot
