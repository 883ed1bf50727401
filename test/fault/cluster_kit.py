"""A Redis Cluster of this test alone: `primaries` redis-servers with `cluster-enabled yes` (and
`replicas` replicas of each) on free loopback ports, joined with `redis-cli --cluster create`,
ready once every node reports cluster_state:ok. Every process it started is stopped by close()
(the `redis_cluster` fixture of test_redis_cluster.py calls it whether the test passed or not).

The cluster bus port is chosen free too (`cluster-port`, Redis >= 7), not port + 10000, which
may lie above 65535 for an ephemeral port. cluster-node-timeout is short (1 s) so that a replica
takes over from a dead primary in a few seconds."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

from faultkit import end_server, free_port, redis_command, wait_until

NODE_TIMEOUT_MS = 1000


class ClusterNode:
    def __init__(self, directory):
        self.host = "127.0.0.1"
        self.port = free_port()
        self.bus_port = free_port()
        self.dir = os.path.join(directory, str(self.port))
        os.makedirs(self.dir)
        self.proc = None

    @property
    def name(self):
        return "%s:%d" % (self.host, self.port)

    def start(self):
        args = [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
                "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-port", str(self.bus_port),
                "--cluster-config-file", os.path.join(self.dir, "nodes.conf"),
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-replica-validity-factor", "0",
                "--save", "", "--appendonly", "no",
                "--dir", self.dir, "--logfile", os.path.join(self.dir, "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_until(self.alive, 10, 0.02):
            raise RuntimeError("redis-server did not start on port %d" % self.port)

    def alive(self):
        try:
            return redis_command(self.host, self.port, "PING") == "PONG"
        except Exception:
            return False

    def cmd(self, *args):
        return redis_command(self.host, self.port, *args)

    def info(self, section):
        text = self.cmd("INFO", section)
        text = text.decode() if isinstance(text, bytes) else text
        return dict(l.split(":", 1) for l in text.splitlines() if ":" in l and not l.startswith("#"))

    def kill(self):
        """SIGKILL: a crash, nothing written on the way out."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.proc:
            end_server(self.proc)


class RedisClusterKit:
    def __init__(self, primaries=3, replicas=0):
        self.dir = tempfile.mkdtemp(prefix="liner-cluster-")
        self.nodes = []
        try:
            self.nodes = [ClusterNode(self.dir) for _ in range(primaries * (1 + replicas))]
            for n in self.nodes:
                n.start()
            out = subprocess.run(["redis-cli", "--cluster", "create"] + [n.name for n in self.nodes]
                                 + ["--cluster-replicas", str(replicas), "--cluster-yes"],
                                 capture_output=True, timeout=60)
            if out.returncode != 0:
                raise RuntimeError("redis-cli --cluster create failed: %s" % out.stdout.decode()[-2000:])
            if not wait_until(self.healthy, 30, 0.1):
                raise RuntimeError("the cluster did not reach cluster_state:ok")
        except BaseException:
            self.close()
            raise
        self.url = "redis+cluster://" + ",".join(n.name for n in self.nodes[:2])

    def state(self, node):
        text = node.cmd("CLUSTER", "INFO")
        text = text.decode() if isinstance(text, bytes) else text
        return dict(l.strip().split(":", 1) for l in text.splitlines() if ":" in l)

    def healthy(self):
        """Every running node says cluster_state:ok and knows every slot, and every replica has
        its link to its primary up (a replica that never synced does not take over)."""
        try:
            for n in self.running():
                st = self.state(n)
                if st.get("cluster_state") != "ok" or st.get("cluster_slots_assigned") != "16384":
                    return False
                info = n.info("replication")
                if info.get("role") == "slave" and info.get("master_link_status") != "up":
                    return False
            return True
        except Exception:
            return False

    def running(self):
        return [n for n in self.nodes if n.proc and n.proc.poll() is None]

    def primaries(self):
        """The running nodes that are primaries now (roles change in a fail-over)."""
        return [n for n in self.running() if n.info("replication").get("role") == "master"]

    def replica_of(self, primary):
        for n in self.running():
            info = n.info("replication")
            if info.get("role") == "slave" and int(info.get("master_port", 0)) == primary.port:
                return n
        return None

    def keys_by_node(self, pattern="*"):
        """{node name: sorted key names} over every running primary."""
        out = {}
        for n in self.primaries():
            keys, cursor = [], b"0"
            while True:
                cursor, batch = n.cmd("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
                keys += [k.decode() for k in batch]
                if cursor in (b"0", "0"):
                    break
            out[n.name] = sorted(keys)
        return out

    def node_of(self, key):
        """The running primary that owns `key` now."""
        slot = self.primaries()[0].cmd("CLUSTER", "KEYSLOT", key)
        for n in self.primaries():
            for first, last, *_ in n.cmd("CLUSTER", "SLOTS"):
                if first <= slot <= last and _[0][1] == n.port:
                    return n
        raise RuntimeError("no primary owns %r" % key)

    def get(self, key):
        return self.node_of(key).cmd("GET", key)

    def close(self):
        for n in self.nodes:
            n.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
