"""N liner clients in this one process, each sending to K others: creates and runs them all,
exchanges messages, closes them all (20 one by one, the rest from 10 threads), and prints one
JSON line of counts and timings, among them this process's descriptors (/proc/self/fd) and
threads (/proc/self/task) at the start, while running and after close.

    many_clients.py REDIS_URL [--clients N] [--targets K] [--messages M]
"""
import argparse
import json
import os
import sys
import threading
import time

import liner

SEQUENTIAL = 20
CLOSERS = 10


def counts():
    return len(os.listdir("/proc/self/fd")), len(os.listdir("/proc/self/task"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("redis_url")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--targets", type=int, default=3)
    ap.add_argument("--messages", type=int, default=5)
    args = ap.parse_args()
    n, k, m = args.clients, args.targets, args.messages

    liner.loadLib()
    liner.version()
    fds0, threads0 = counts()
    lock = threading.Condition()
    received = [0] * n
    bad = []

    def callback_of(i):
        def on_message(to, from_, data):
            with lock:
                if to != "mc_t%03d" % i or not from_.startswith("mc_t"):
                    bad.append((i, to, from_))
                received[i] += 1
                lock.notify_all()
        return on_message

    t = time.monotonic()
    clients = [liner.Client("mc%03d" % i, "mc_t%03d" % i, "127.0.0.1:0", args.redis_url)
               for i in range(n)]
    created_s = time.monotonic() - t
    t = time.monotonic()
    for i, c in enumerate(clients):
        if not c.run(callback_of(i)):
            print(json.dumps({"error": "run %d: %s" % (i, c.last_error_message())}), flush=True)
            return 1
    run_s = time.monotonic() - t
    fds_running, threads_running = counts()

    # Client i sends to i+1, i+7, i+31 ... (mod n): every client sends and receives.
    steps = [1, 7, 31, 63, 101][:k]
    t = time.monotonic()
    refused = 0
    for i, c in enumerate(clients):
        for step in steps:
            for j in range(m):
                if not c.send_to("mc_t%03d" % ((i + step) % n), b"%d:%d" % (i, j), True):
                    refused += 1
    expected = n * len(steps) * m - refused
    with lock:
        deadline = time.monotonic() + 30
        while sum(received) < expected and time.monotonic() < deadline:
            lock.wait(deadline - time.monotonic())
        delivered = sum(received)
    deliver_s = time.monotonic() - t
    fds_peak, threads_peak = counts()
    time.sleep(1.2)  # acknowledgements flushed: closes need not wait for them

    # The first SEQUENTIAL clients are closed one by one (for the time one close takes), the
    # rest from CLOSERS threads at once (concurrent closes, and a bounded test time).
    t = time.monotonic()
    closed = sum(1 for c in clients[:SEQUENTIAL] if c.close())
    one_close_s = (time.monotonic() - t) / max(1, min(SEQUENTIAL, n))
    t = time.monotonic()
    rest = clients[SEQUENTIAL:]
    results = []

    def closer(part):
        results.extend(c.close() for c in part)
    workers = [threading.Thread(target=closer, args=(rest[w::CLOSERS],)) for w in range(CLOSERS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    closed += sum(1 for r in results if r)
    close_rest_s = time.monotonic() - t
    del clients
    deadline = time.monotonic() + 5
    while counts() != (fds0, threads0) and time.monotonic() < deadline:
        time.sleep(0.05)
    fds1, threads1 = counts()
    print(json.dumps({
        "clients": n, "sent": n * len(steps) * m, "refused": refused, "delivered": delivered,
        "bad_meta": len(bad), "closed": closed,
        "created_s": round(created_s, 2), "run_s": round(run_s, 2),
        "deliver_s": round(deliver_s, 2), "one_close_s": round(one_close_s, 3),
        "close_rest_s": round(close_rest_s, 2),
        "fds_start": fds0, "fds_running": fds_running, "fds_peak": fds_peak, "fds_end": fds1,
        "threads_start": threads0, "threads_running": threads_running,
        "threads_peak": threads_peak, "threads_end": threads1,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
