// Raw framed TCP over loopback: the practical ceiling for anything that moves messages over a
// socket on this machine. A frame is a u32 little-endian length followed by the payload. The
// sender batches frames in a 64 KiB userspace buffer; the receiver reads 64 KiB at a time and
// cuts frames out of the stream. Roles and output: bench/PROTOCOL.md.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include "bench_common.hpp"

using namespace bench;

namespace {

constexpr size_t kBufSize = 64 * 1024;
constexpr int kTimeoutSec = 60;         // no progress for this long is a failure
constexpr uint64_t kConnectNs = 5000000000;  // the receiver may still be starting: retry 5 s

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Small frames must leave at once (ping-pong) rather than wait for Nagle.
void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Blocking calls give up after kTimeoutSec (EAGAIN): a stalled peer becomes an error event
// instead of a hang. On a listening socket this bounds accept().
void set_timeouts(int fd) {
  timeval tv{kTimeoutSec, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

const char *io_error(int err) {
  if (err == 0) return "connection closed by peer";
  if (err == EAGAIN || err == EWOULDBLOCK) return "no progress for 60 s";
  return strerror(err);
}

int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = loopback(port);
  if (bind(fd, (sockaddr *)&a, sizeof a) < 0) fail("bind port %d: %s", port, strerror(errno));
  if (listen(fd, 1) < 0) fail("listen: %s", strerror(errno));
  return fd;
}

int connect_to(int port) {
  sockaddr_in a = loopback(port);
  uint64_t deadline = now_ns() + kConnectNs;
  for (;;) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) fail("socket: %s", strerror(errno));
    if (connect(fd, (sockaddr *)&a, sizeof a) == 0) {
      set_nodelay(fd);
      set_timeouts(fd);
      return fd;
    }
    int err = errno;
    close(fd);
    if (now_ns() > deadline) fail("connect port %d: %s", port, strerror(err));
    usleep(10000);
  }
}

// write() until all of p is out. false with errno set on failure, so a server being stopped
// can tell its own shutdown from a real error.
bool write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= (size_t)w;
  }
  return true;
}

void put_u32(char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (char)(v >> (8 * i));
}

uint32_t get_u32(const char *p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= (uint32_t)(unsigned char)p[i] << (8 * i);
  return v;
}

// Outgoing frames collect in a userspace buffer that goes out in one write() when full or at
// the end of a burst: one syscall per ~64 KiB instead of one per message.
struct FrameWriter {
  int fd;
  std::vector<char> buf;
  size_t used = 0;

  FrameWriter(int f, uint64_t size) : fd(f), buf(std::max<size_t>(kBufSize, 4 + size)) {}

  void add(const char *payload, uint32_t len) {
    if (used + 4 + len > buf.size()) flush();
    put_u32(&buf[used], len);
    memcpy(&buf[used + 4], payload, len);
    used += 4 + len;
  }

  void flush() {
    if (!write_all(fd, buf.data(), used)) fail("write: %s", io_error(errno));
    used = 0;
  }
};

// Cuts frames out of the byte stream: read() fills the buffer as far as it goes, complete frames
// are handed out in place, a frame split across reads is moved to the front and completed.
struct FrameReader {
  int fd;
  std::vector<char> buf;
  size_t beg = 0, end = 0;  // unconsumed bytes are buf[beg, end)
  int err = 0;              // after next() returned nullptr: errno, or 0 for EOF

  FrameReader(int f, uint64_t size) : fd(f), buf(std::max<size_t>(kBufSize, 4 + size)) {}

  // The payload of the next frame (valid until the next call) and its length in *len, or
  // nullptr at EOF / on error (see err).
  const char *next(uint32_t *len) {
    for (;;) {
      size_t have = end - beg;
      if (have >= 4) {
        uint32_t n = get_u32(&buf[beg]);
        if (4 + (size_t)n > buf.size()) fail("frame of %u bytes is larger than --size", n);
        if (have >= 4 + (size_t)n) {
          const char *p = &buf[beg + 4];
          beg += 4 + n;
          *len = n;
          return p;
        }
      }
      if (beg > 0) {  // keep the partial frame, make room behind it
        memmove(buf.data(), &buf[beg], have);
        beg = 0, end = have;
      }
      ssize_t r = read(fd, &buf[end], buf.size() - end);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        err = r < 0 ? errno : 0;
        return nullptr;
      }
      end += (size_t)r;
    }
  }
};

int pair_recv(const Options &o) {
  int lfd = listen_on(o.port);
  set_timeouts(lfd);
  emit("{\"event\":\"ready\"}");
  int fd = accept(lfd, nullptr, nullptr);
  if (fd < 0) fail("accept: %s", io_error(errno));
  close(lfd);
  PairRecv check(o);
  check.start();
  set_nodelay(fd);
  set_timeouts(fd);
  FrameReader in(fd, o.size);
  while (!check.finished()) {
    uint32_t len;
    const char *p = in.next(&len);
    if (!p) fail("read: %s", io_error(in.err));
    check.on_message(p, len);
  }
  close(fd);
  return 0;
}

int pair_send(const Options &o) {
  int fd = connect_to(o.port);
  FrameWriter out(fd, o.size);
  run_pair_send(
      o, [&](const char *p) { out.add(p, (uint32_t)o.size); }, [&] { out.flush(); });
  close(fd);
  return 0;
}

// Echoes frames until the client hangs up or `stop` arrives. The stop watcher wakes the blocked
// accept()/read() with shutdown(); `conn` and `stopping` are published in opposite orders so
// that whichever of the two threads comes second sees the other's write.
int ping_server(const Options &o) {
  int lfd = listen_on(o.port);
  emit("{\"event\":\"ready\"}");
  std::atomic<int> conn{-1};
  std::atomic<bool> stopping{false};
  std::thread watcher = watch_for_stop([&] {
    stopping = true;
    shutdown(lfd, SHUT_RDWR);
    int c = conn.load();
    if (c >= 0) shutdown(c, SHUT_RDWR);
  });
  int fd = accept(lfd, nullptr, nullptr);
  conn = fd;
  if (fd < 0 && !stopping) fail("accept: %s", strerror(errno));
  if (fd >= 0 && !stopping) {
    set_nodelay(fd);
    FrameReader in(fd, o.size);
    uint32_t len;
    const char *p;
    while ((p = in.next(&len))) {
      if (!write_all(fd, p - 4, 4 + (size_t)len)) {
        in.err = errno;
        break;
      }
    }
    if (in.err != 0 && !stopping) fail("echo: %s", strerror(in.err));
  }
  watcher.join();  // after the client hung up: wait for `stop` as the protocol says
  if (fd >= 0) close(fd);
  close(lfd);
  return 0;
}

int ping_client(const Options &o) {
  int fd = connect_to(o.port);
  FrameWriter out(fd, o.size);
  FrameReader in(fd, o.size);
  run_ping_client(o, [&](const char *p) {
    out.add(p, (uint32_t)o.size);
    out.flush();
    uint32_t len;
    const char *echo = in.next(&len);
    if (!echo) fail("read: %s", io_error(in.err));
    check_size(o, len);
    return echo;
  });
  close(fd);
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  Options o = parse_options(argc, argv);
  ignore_sigpipe();
  switch (o.role) {
    case Role::pair_recv: return pair_recv(o);
    case Role::pair_send: return pair_send(o);
    case Role::ping_server: return ping_server(o);
    case Role::ping_client: return ping_client(o);
  }
  return 2;
}
