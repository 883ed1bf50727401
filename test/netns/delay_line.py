"""A TCP delay line for the multi-host test bed where the kernel has no netem qdisc: accepts on
LISTEN (host:port) and relays each connection to TARGET, holding every chunk for DELAY_MS in
each direction, in order. Run inside a host's namespace; prints "READY" once listening.

    delay_line.py LISTEN TARGET DELAY_MS
"""
import collections
import socket
import sys
import threading
import time


def split(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def pump(src, dst, delay):
    line = collections.deque()
    cv = threading.Condition()
    done = [False]

    def reader():
        while True:
            try:
                data = src.recv(1 << 16)
            except OSError:
                data = b""
            with cv:
                line.append((time.monotonic() + delay, data))
                cv.notify()
            if not data:
                return

    threading.Thread(target=reader, daemon=True).start()
    while True:
        with cv:
            while not line:
                cv.wait()
            due, data = line.popleft()
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if not data:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return
        try:
            dst.sendall(data)
        except OSError:
            return


def serve(conn, target, delay):
    try:
        up = socket.create_connection(target)
    except OSError:
        conn.close()
        return
    for s in (conn, up):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=pump, args=(conn, up, delay), daemon=True).start()
    threading.Thread(target=pump, args=(up, conn, delay), daemon=True).start()


def main():
    listen, target, delay = split(sys.argv[1]), split(sys.argv[2]), float(sys.argv[3]) / 1000
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(listen)
    srv.listen(128)
    print("READY", flush=True)
    while True:
        conn, _ = srv.accept()
        serve(conn, target, delay)


if __name__ == "__main__":
    main()
