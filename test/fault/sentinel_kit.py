"""A Redis Sentinel set-up of one test: one master, one replica and three sentinels (Debian's
redis-server and redis-sentinel) on free loopback ports in a temporary directory, always stopped.

Sentinels decide fast here (down-after-milliseconds 1000, failover-timeout 3000) so that a
fail-over takes a few seconds. Data servers keep nothing on disk (no RDB, no AOF): what a
promoted replica has is what replication copied before the master died, as in production.

    with SentinelSet() as s:          # or the `sentinels` fixture of test_redis_sentinel.py
        s.url                         # redis+sentinel://127.0.0.1:p1,...,127.0.0.1:p3/liner_m/0
        port = s.master_port()        # as the sentinels see it
        s.kill(port)                  # SIGKILL a data server
        s.wait_master(lambda p: p != port, 15)
        s.start_server(port)          # back on its port; the sentinels make it a replica
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

from faultkit import end_server, free_port, wait_until

MASTER_NAME = "liner_m"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000


def cli(port, *args, timeout=5):
    """redis-cli against 127.0.0.1:port; its text output, or None when it could not connect."""
    try:
        out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--raw"] + [str(a) for a in args],
                             capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    text = out.stdout.decode("utf-8", "replace").rstrip("\n")
    if out.returncode != 0 or text.startswith("Could not connect"):
        return None
    return text


def info_field(port, section, field):
    text = cli(port, "INFO", section) or ""
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return None


class SentinelSet:
    def __init__(self, name=MASTER_NAME, db=0):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="liner-sentinel-")
        self.servers = {}    # port -> Popen of a redis-server
        self.sentinels = {}  # port -> Popen of a redis-sentinel
        try:
            master, replica = free_port(), free_port()
            self.start_server(master)
            self.start_server(replica, replica_of=master)
            for _ in range(3):
                self._start_sentinel(free_port(), master)
            self.url = "redis+sentinel://%s/%s/%d" % (
                ",".join("127.0.0.1:%d" % p for p in self.sentinels), name, db)
            if not wait_until(self._settled, 20, 0.1):
                raise RuntimeError("sentinels did not settle (see %s)" % self.dir)
        except BaseException:
            self.close()
            raise

    # ---- processes ----

    def start_server(self, port, replica_of=None):
        """A redis-server on `port` (again, after kill()). One restarted after a fail-over comes
        up as a master with its old data gone; the sentinels turn it into a replica."""
        d = os.path.join(self.dir, "redis-%d" % port)
        os.makedirs(d, exist_ok=True)
        args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", d, "--logfile", os.path.join(d, "redis.log")]
        if replica_of:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.servers[port] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_until(lambda: cli(port, "PING") == "PONG", 10, 0.02):
            raise RuntimeError("redis-server did not start on port %d" % port)

    def _start_sentinel(self, port, master):
        conf = os.path.join(self.dir, "sentinel-%d.conf" % port)
        with open(conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n" % (
                port, self.dir, os.path.join(self.dir, "sentinel-%d.log" % port)))
            f.write("sentinel monitor %s 127.0.0.1 %d 2\n" % (self.name, master))
            f.write("sentinel down-after-milliseconds %s %d\n" % (self.name, DOWN_AFTER_MS))
            f.write("sentinel failover-timeout %s %d\n" % (self.name, FAILOVER_TIMEOUT_MS))
            f.write("sentinel parallel-syncs %s 1\n" % self.name)
        self.sentinels[port] = subprocess.Popen(["redis-sentinel", conf], stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
        if not wait_until(lambda: cli(port, "PING") == "PONG", 10, 0.02):
            raise RuntimeError("redis-sentinel did not start on port %d" % port)

    def kill(self, port):
        """SIGKILL of a data server: no goodbye, and what it had not replicated is gone."""
        proc = self.servers.pop(port, None)
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    def stop_sentinels(self):
        for port in list(self.sentinels):
            end_server(self.sentinels.pop(port))

    def close(self):
        for procs in (self.sentinels, self.servers):
            for port in list(procs):
                end_server(procs.pop(port))
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- what the sentinels see ----

    def master_port(self, sentinel=None):
        """The master's port as one sentinel (default: the first that answers) names it."""
        for port in ([sentinel] if sentinel else list(self.sentinels)):
            text = cli(port, "SENTINEL", "get-master-addr-by-name", self.name)
            if text:
                return int(text.splitlines()[1])
        return None

    def _settled(self):
        """Every sentinel names the same master, knows the other two and the replica, and the
        replica's link is up: a fail-over can happen."""
        masters = {self.master_port(p) for p in self.sentinels}
        if len(masters) != 1 or None in masters:
            return False
        for port in self.sentinels:
            fields = (cli(port, "SENTINEL", "master", self.name) or "").splitlines()
            info = dict(zip(fields[0::2], fields[1::2]))
            if info.get("num-other-sentinels") != "2" or info.get("num-slaves", "0") == "0":
                return False
            if "s_down" in info.get("flags", "") or "o_down" in info.get("flags", ""):
                return False
        master = masters.pop()
        replicas = [p for p in self.servers if p != master]
        return all(info_field(p, "replication", "master_link_status") == "up" for p in replicas)

    def wait_master(self, accept, timeout):
        """Waits until every sentinel names a master whose port `accept`s and the set is
        settled again (the replica attached); returns the port or None."""
        found = []

        def done():
            ports = {self.master_port(p) for p in self.sentinels}
            if len(ports) == 1 and None not in ports and accept(next(iter(ports))) and \
                    cli(next(iter(ports)), "ROLE", timeout=2) and \
                    (cli(next(iter(ports)), "ROLE", timeout=2) or "").splitlines()[0] == "master":
                found[:] = [ports.pop()]
                return True
            return False
        return found[0] if wait_until(done, timeout, 0.1) else None

    def wait_replica_synced(self, port, timeout=20):
        return wait_until(lambda: info_field(port, "replication", "role") == "slave" and
                          info_field(port, "replication", "master_link_status") == "up" and
                          self._settled(), timeout, 0.1)
