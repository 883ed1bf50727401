"""A liner peer in its own process, for the fault tests: the test SIGKILLs, SIGSTOPs and
SIGCONTs it, and reads its CPU time and RSS from /proc.

    fault_peer.py listen UNIQUE TOPIC REDIS_URL --out FILE [--addr HOST:PORT] [--work-us N]
                         [--advertise HOST:PORT]
    fault_peer.py send   UNIQUE TOPIC REDIS_URL --to TOPIC --count N [--first K] [--rate R]
                         [--size B] [--all] [--best-effort] [--tag T] [--no-retry]

Both print "READY <published address>" once running, then run until stdin reaches EOF (the
test's way of asking for a clean close) or a signal ends them.

listen: every delivered message is appended to FILE as one line "<tag> <seq> <sent> <received>
<from>" with os.write *inside* the receive callback, before it returns. liner acknowledges a
message only after its callback returned, so a line is on disk (in the page cache, which
survives a SIGKILL of this process) before the sender can learn that the message was
delivered. --work-us adds a busy wait per message (a slow consumer).

send: sends messages TAG:<seq>:<monotonic time>: for seq = first .. first+count-1, at most
--rate per second (0 = as fast as possible), at-least-once unless --best-effort, with send_to
(or send_all with --all). A refusal with ERR_BUSY is retried (send_to), or with --no-retry /
--all reported as "BUSY <seq>" and skipped (retrying send_all would send the other copies
twice). Any other refusal is reported as "REFUSED <seq> <code> <message>". After every
--progress accepted messages (default 1000) it prints "SENT <seq of the last accepted one>",
and "DONE <number accepted>" at the end. time.monotonic() is CLOCK_MONOTONIC, the same clock
in every process of the machine, so the listener can compute latencies.
"""
import argparse
import os
import sys
import time

import liner


def emit(line):
    os.write(1, (line + "\n").encode())


def payload(tag, seq, size):
    head = b"%s:%d:%.6f:" % (tag, seq, time.monotonic())
    return head + b"." * max(0, size - len(head))


def listen(args, client):
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    work = args.work_us / 1e6

    def on_message(to, from_, data):
        received = time.monotonic()
        parts = data.split(b":", 3)
        try:
            tag, seq, sent = parts[0].decode(), int(parts[1]), float(parts[2])
        except (IndexError, ValueError):
            tag, seq, sent = "raw", len(data), 0.0
        os.write(fd, ("%s %d %.6f %.6f %s\n" % (tag, seq, sent, received, from_ or "-")).encode())
        if work:
            end = time.perf_counter() + work
            while time.perf_counter() < end:
                pass

    ok = client.run(on_message)
    if not ok:
        emit("FAILED %d %s" % (client.last_error_code(), client.last_error_message()))
        return 1
    emit("READY %s" % client.published_addr())
    sys.stdin.read()
    client.close()
    os.close(fd)
    return 0


def send(args, client):
    if not client.run(lambda *a: None):
        emit("FAILED %d %s" % (client.last_error_code(), client.last_error_message()))
        return 1
    emit("READY %s" % client.published_addr())
    fn = client.send_all if args.all else client.send_to
    alo = not args.best_effort
    tag = args.tag.encode()
    period = 1.0 / args.rate if args.rate else 0.0
    start = time.monotonic()
    sent = 0
    for i in range(args.count):
        seq = args.first + i
        if period:
            delay = start + i * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        deadline = time.monotonic() + 30
        while not fn(args.to, payload(tag, seq, args.size), alo):
            code = client.last_error_code()
            if code == liner.ERR_BUSY and not (args.all or args.no_retry) \
                    and time.monotonic() < deadline:
                time.sleep(0.001)
                continue
            if code == liner.ERR_BUSY:
                emit("BUSY %d" % seq)
            else:
                emit("REFUSED %d %d %s" % (seq, code, client.last_error_message()))
            break
        else:
            sent += 1
            if sent % args.progress == 0:
                emit("SENT %d" % seq)
    emit("DONE %d" % sent)
    sys.stdin.read()
    client.close()
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["listen", "send"])
    ap.add_argument("unique")
    ap.add_argument("topic")
    ap.add_argument("redis_url")
    ap.add_argument("--addr", default="127.0.0.1:0")
    ap.add_argument("--out")
    ap.add_argument("--work-us", type=float, default=0)
    ap.add_argument("--to")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--best-effort", action="store_true")
    ap.add_argument("--no-retry", action="store_true")
    ap.add_argument("--tag", default="m")
    ap.add_argument("--progress", type=int, default=1000)
    ap.add_argument("--max-send-queue-bytes", type=int, default=0)
    ap.add_argument("--max-message-size", type=int, default=0)
    ap.add_argument("--lease-ms", type=int, default=0)
    ap.add_argument("--advertise", default="")
    args = ap.parse_args()

    liner.loadLib()
    if args.max_send_queue_bytes:
        liner.set_max_send_queue_bytes(args.max_send_queue_bytes)
    if args.max_message_size:
        liner.set_max_message_size(args.max_message_size)
    if args.lease_ms:
        assert liner.set_lease(args.lease_ms)
    client = liner.Client(args.unique, args.topic, args.addr, args.redis_url)
    if args.advertise:
        assert client.set_advertise_addr(args.advertise), client.last_error_message()
    return listen(args, client) if args.role == "listen" else send(args, client)


if __name__ == "__main__":
    sys.exit(main())
