"""A multi-host test bed made of Linux network namespaces: three peer hosts (h1, h2, h3) and a
Redis host (rd), each joined by a veth link to one bridge in a switch namespace, on a /24 of
its own. A test partitions two hosts from each other (blackhole routes on both sides: packets
between them vanish, every other path still works) and heals them, delays a path with a delay
line (delay_line.py: a TCP relay that holds each chunk, in order), drops a share of the packets
a host sends (an nftables rule: random, per packet), and runs peers (faultkit.Peer) and the
Redis server inside the hosts. Neither delay nor loss uses tc netem: the kernels of some test
machines (this project's CI among them) have no netem qdisc.

Needs root and `ip netns` (iproute2); TestBed.available() says why not where they are missing,
TestBed.loss_available() where `nft` (nftables) is."""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fault"))
from faultkit import Peer, wait_until  # noqa: E402

HOSTS = ("h1", "h2", "h3", "rd")
REDIS_PORT = 6379


def run(*args):
    out = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(str(a) for a in args), out.stderr.strip()))
    return out.stdout


class TestBed:
    __test__ = False  # not a pytest class

    @staticmethod
    def available():
        """'' when namespaces can be made here, else why not."""
        if os.geteuid() != 0:
            return "network namespaces need root"
        if not shutil.which("ip") or not shutil.which("tc"):
            return "iproute2 (ip, tc) is not installed"
        probe = "lnrprobe%d" % os.getpid()
        try:
            run("ip", "netns", "add", probe)
            run("ip", "netns", "del", probe)
        except Exception as e:  # a container without CAP_SYS_ADMIN, say
            return "cannot create a network namespace: %s" % e
        return ""

    def __init__(self):
        n = os.getpid() % 200 + 20
        self.tag = "ln%d" % os.getpid()  # interface names stay within 15 characters
        self.ip = {h: "10.213.%d.%d" % (n, i + 1) for i, h in enumerate(HOSTS)}
        self.ns = {h: "%s%s" % (self.tag, h) for h in HOSTS}
        self.switch = self.tag + "sw"
        self.procs = []
        self.dir = tempfile.mkdtemp(prefix="liner-netns-")
        self.made = []
        try:
            self._build()
        except Exception:
            self.close()
            raise

    def _build(self):
        run("ip", "netns", "add", self.switch)
        self.made.append(self.switch)
        run("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", self.switch, "link", "set", "br0", "up")
        for h in HOSTS:
            ns, inner, outer = self.ns[h], self.tag + h + "a", self.tag + h + "b"
            run("ip", "netns", "add", ns)
            self.made.append(ns)
            run("ip", "link", "add", inner, "type", "veth", "peer", "name", outer)
            run("ip", "link", "set", inner, "netns", ns)
            run("ip", "link", "set", outer, "netns", self.switch)
            run("ip", "-n", self.switch, "link", "set", outer, "master", "br0", "up")
            run("ip", "-n", ns, "addr", "add", self.ip[h] + "/24", "dev", inner)
            run("ip", "-n", ns, "link", "set", inner, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    def iface(self, host):
        return self.tag + host + "a"

    # ---- links ---------------------------------------------------------------------------

    @staticmethod
    def loss_available():
        """'' when lose() works here, else why not."""
        return "" if shutil.which("nft") else "nft (nftables) is not installed: scripts/bootstrap.sh installs it"

    def lose(self, host, per_mille):
        """Drops `per_mille` of every thousand packets `host` sends on its link (at random, each
        packet on its own, TCP retransmissions included); 0 stops dropping."""
        ns, table = self.ns[host], "lnrloss"
        if table in run("ip", "netns", "exec", ns, "nft", "list", "tables"):
            run("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", table)
        if per_mille:
            run("ip", "netns", "exec", ns, "nft", "add", "table", "inet", table)
            run("ip", "netns", "exec", ns, "nft", "add", "chain", "inet", table, "out",
                "{ type filter hook output priority 0; }")
            run("ip", "netns", "exec", ns, "nft", "add", "rule", "inet", table, "out", "oifname", self.iface(host),
                "numgen", "random", "mod", "1000", "<", str(per_mille), "counter", "drop")

    def lost(self, host):
        """Packets lose() dropped on `host` so far."""
        rules = run("ip", "netns", "exec", self.ns[host], "nft", "list", "table", "inet", "lnrloss")
        return int(rules.split("counter packets ")[1].split()[0])

    def delay_line(self, host, port, target, ms):
        """Relays host:port to `target` ("ip:port"), `ms` each way. Returns "ip:port" to use."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns[host], sys.executable, os.path.join(HERE, "delay_line.py"),
                                 "%s:%d" % (self.ip[host], port), target, str(ms)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        if proc.stdout.readline().strip() != b"READY":
            raise RuntimeError("the delay line did not start")
        return "%s:%d" % (self.ip[host], port)

    def partition(self, a, b):
        """Packets between hosts a and b vanish (both directions); other paths still work."""
        run("ip", "-n", self.ns[a], "route", "add", "blackhole", self.ip[b] + "/32")
        run("ip", "-n", self.ns[b], "route", "add", "blackhole", self.ip[a] + "/32")

    def heal(self, a, b):
        run("ip", "-n", self.ns[a], "route", "del", "blackhole", self.ip[b] + "/32")
        run("ip", "-n", self.ns[b], "route", "del", "blackhole", self.ip[a] + "/32")

    # ---- processes -------------------------------------------------------------------------

    def start_redis(self):
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns["rd"], shutil.which("redis-server") or "redis-server",
                                 "--bind", self.ip["rd"], "--port", str(REDIS_PORT), "--save", "",
                                 "--appendonly", "no", "--protected-mode", "no", "--dir", self.dir],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        if not wait_until(lambda: self.redis("PING") == "PONG", 10, 0.05):
            raise RuntimeError("redis-server did not start in the redis host")
        return "redis://%s:%d/0" % (self.ip["rd"], REDIS_PORT)

    def redis(self, *args):
        """redis-cli run in the redis host."""
        try:
            return run("ip", "netns", "exec", self.ns["rd"], "redis-cli", "-h", self.ip["rd"], "-p", REDIS_PORT,
                       "--raw", *args).rstrip("\n")
        except Exception:
            return None

    def peer(self, host, *args, **kwargs):
        p = Peer(*args, netns=self.ns[host], **kwargs)
        self.procs.append(p)
        return p

    def path(self, name):
        return os.path.join(self.dir, name)

    def close(self):
        for p in reversed(self.procs):
            if isinstance(p, Peer):
                p.close()
            else:
                p.kill()
                p.wait(10)
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
