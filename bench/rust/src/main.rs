//! lbbench: one benchmark role over the published liner_broker 1.3.1 crate.
//!
//! bench/run.py starts one process per role and talks to it as bench/PROTOCOL.md says: options on
//! the command line, `go`/`stop` on stdin, JSON lines on stdout. Roles: `pair-recv`, `pair-send`
//! (throughput) and `ping-server`, `ping-client` (latency). Names: receiver `PREFIX.sink`, sender
//! `PREFIX.source`, ping server `PREFIX.pong`, ping client `PREFIX.ping`; unique name = topic.
//!
//! The client is driven through the crate's exported entry points (`lnr_new_client_redis`,
//! `lnr_run`, `lnr_send_to`, `lnr_delete_client`). They are the very functions the crate's `Liner`
//! wrapper calls, minus its per-call `CString` copy of the topic, and they let the callback reach
//! the client: the ping server answers from inside the callback (see `echo`), which `Liner` cannot
//! do soundly because its callback runs while the wrapper is mutably borrowed.
//!
//! Things 1.3.1 does that shape this program (src/client.rs, sender.rs, listener.rs of the crate):
//! - the listen address may use port 0: `run` binds it, then re-registers the bound address in
//!   Redis, so there is no window in which another process could take a port we picked;
//! - the callback runs on the listener's receive thread, one message at a time, so the receiver
//!   checks sequence numbers right there and only hands milestones (warm, done) to main;
//! - `send_to` only queues (the queue is unbounded): it never reports "full", so `busy` is always
//!   0, and `false` means the destination could not be resolved (Redis has no address yet);
//! - its listener can miss a readiness edge and leave the tail of a burst unread in the socket
//!   until more data arrives (shared/spec/compat-1.3.1.md §5 item 15). Nothing more arrives in
//!   these runs, so such a run stalls until the 60 s watchdog fails it (seen in about 1 of 10-20
//!   runs with 1 KiB messages). It is deliberately not papered over (e.g. by extra "nudge"
//!   messages): that stall is part of what 1.3.1 does.

use liner_broker::{lnr_delete_client, lnr_new_client_redis, lnr_run, lnr_send_to, Client};
use std::ffi::{c_void, CStr, CString};
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A receiver (or ping client) that sees nothing new for this long gives up (PROTOCOL.md).
const STALL: Duration = Duration::from_secs(60);
/// How long a warm-up `send_to` may keep failing while the peer's address is not yet in Redis.
const RESOLVE_WAIT: Duration = Duration::from_secs(10);

enum Role {
    PairRecv,
    PairSend,
    PingServer,
    PingClient,
}

struct Opts {
    role: Role,
    size: usize,
    count: u64,
    warmup: u64,
    redis: String,
    prefix: String,
    alo: bool,
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "lbbench: {msg}\nusage: lbbench --role pair-recv|pair-send|ping-server|ping-client \
         --size BYTES --count N --warmup W --redis URL --prefix PREFIX [--alo 0|1] [--port P]"
    );
    std::process::exit(2);
}

fn parse_opts() -> Opts {
    let (mut role, mut size, mut count, mut warmup) = (None, None, None, None);
    let (mut redis, mut prefix, mut alo) = (None, None, true);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let val = args.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let num = || val.parse::<u64>().unwrap_or_else(|_| usage(&format!("bad number for {flag}")));
        match flag.as_str() {
            "--role" => {
                role = Some(match val.as_str() {
                    "pair-recv" => Role::PairRecv,
                    "pair-send" => Role::PairSend,
                    "ping-server" => Role::PingServer,
                    "ping-client" => Role::PingClient,
                    _ => usage(&format!("unknown role {val}")),
                })
            }
            "--size" => size = Some(num() as usize),
            "--count" => count = Some(num()),
            "--warmup" => warmup = Some(num()),
            "--redis" => redis = Some(val),
            "--prefix" => prefix = Some(val),
            "--alo" => alo = num() != 0,
            "--port" => {} // for the socket baselines; a liner_broker client picks its own port
            _ => usage(&format!("unknown option {flag}")),
        }
    }
    let opts = Opts {
        role: role.unwrap_or_else(|| usage("--role is required")),
        size: size.unwrap_or_else(|| usage("--size is required")),
        count: count.unwrap_or_else(|| usage("--count is required")),
        warmup: warmup.unwrap_or_else(|| usage("--warmup is required")),
        redis: redis.unwrap_or_else(|| usage("--redis is required")),
        prefix: prefix.unwrap_or_else(|| usage("--prefix is required")),
        alo,
    };
    if opts.size < 8 {
        usage("--size must be at least 8");
    }
    opts
}

// ---- output, clocks ------------------------------------------------------------------------

/// Writes one JSON line and flushes, so the runner sees each event the moment it happens.
fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn fail(msg: &str) -> ! {
    emit(&format!("{{\"event\":\"error\",\"message\":{}}}", json_str(msg)));
    std::process::exit(1);
}

/// CLOCK_MONOTONIC in ns: one clock for every process, so a sender's t0 and a receiver's t1 can
/// be subtracted.
fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// User + system CPU seconds of the whole process, liner_broker's threads included.
fn cpu_s() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Blocks until stdin has a line equal to `word` (true) or ends (false).
fn wait_line(word: &str) -> bool {
    for line in std::io::stdin().lock().lines() {
        match line {
            Ok(l) if l.trim() == word => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

fn seq_of(data: &[u8]) -> u64 {
    u64::from_le_bytes(data[..8].try_into().unwrap())
}

// ---- the client ------------------------------------------------------------------------------

type Callback = extern "C" fn(*const i8, *const i8, *const u8, usize, *mut c_void);

/// One running liner_broker client. Dropping it closes it the way 1.3.1 does: its sender stops
/// (unacknowledged at-least-once messages go to Redis), then its listener (final ack to Redis).
struct Peer(*mut Client);

impl Peer {
    /// Creates client `name` (topic = unique name), listening on 127.0.0.1 with a port the
    /// kernel picks, and starts it with `cb`/`udata`. `udata` must outlive the client.
    fn start(name: &str, redis: &str, cb: Callback, udata: *mut c_void) -> Peer {
        let c = |s: &str| CString::new(s).unwrap_or_else(|_| fail("NUL in a name"));
        let (name, listen, redis) = (c(name), c("127.0.0.1:0"), c(redis));
        let h = unsafe {
            lnr_new_client_redis(name.as_ptr(), name.as_ptr(), listen.as_ptr(), redis.as_ptr())
        };
        if h.is_null() {
            fail("liner_broker could not create the client (is Redis reachable?)");
        }
        let peer = Peer(h);
        if !unsafe { lnr_run(h, cb, udata) } {
            fail("liner_broker could not run the client");
        }
        peer
    }

    fn send(&self, topic: &CStr, data: &[u8], alo: bool) -> bool {
        unsafe { lnr_send_to(self.0, topic.as_ptr(), data.as_ptr(), data.len(), alo) }
    }

    /// Sends during warm-up: `false` there means the peer's address is not resolvable yet, which
    /// is worth a few retries. Fails the run if it never becomes resolvable.
    fn send_resolving(&self, topic: &CStr, data: &[u8], alo: bool) {
        let deadline = Instant::now() + RESOLVE_WAIT;
        while !self.send(topic, data, alo) {
            if Instant::now() > deadline {
                fail(&format!("send_to {} kept failing", topic.to_string_lossy()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        lnr_delete_client(self.0);
    }
}

extern "C" fn ignore(_: *const i8, _: *const i8, _: *const u8, _: usize, _: *mut c_void) {}

/// Payload `seq` in place: bytes 0..7 the little-endian sequence number, the rest 'x' already.
fn stamp(buf: &mut [u8], seq: u64) {
    buf[..8].copy_from_slice(&seq.to_le_bytes());
}

// ---- pair-recv -------------------------------------------------------------------------------

enum RecvEvent {
    Warm { cpu0: f64 },
    Done { t1: u64, cpu_end: f64, received: u64, dups: u64, gaps: u64, bad: u64 },
}

/// The receiver's bookkeeping, touched only by liner_broker's receive thread (the Mutex is never
/// contended; it is there so the state may be shared with that thread at all).
struct Tracker {
    next: u64, // the sequence number expected next
    received: u64,
    dups: u64,
    gaps: u64,
    bad: u64, // messages of the wrong size
    warm: bool,
    done: bool,
    tx: Sender<RecvEvent>,
}

struct RecvState {
    size: usize,
    warmup: u64,
    end: u64, // warmup + count
    seen: AtomicU64, // every message, for main's stall watchdog
    tracker: Mutex<Tracker>,
}

extern "C" fn on_pair_message(_: *const i8, _: *const i8, data: *const u8, len: usize, ud: *mut c_void) {
    let st = unsafe { &*(ud as *const RecvState) };
    let data = unsafe { std::slice::from_raw_parts(data, len) };
    st.seen.fetch_add(1, Ordering::Relaxed);
    let mut t = st.tracker.lock().unwrap();
    if t.done {
        return; // a late duplicate after the last message: outside the measurement
    }
    if len != st.size {
        t.bad += 1;
        return;
    }
    let seq = seq_of(data);
    if seq < t.next {
        t.dups += 1;
    } else {
        t.gaps += seq - t.next;
        t.next = seq + 1;
        if seq >= st.warmup {
            t.received += 1;
        }
    }
    if !t.warm && t.next >= st.warmup {
        t.warm = true;
        let _ = t.tx.send(RecvEvent::Warm { cpu0: cpu_s() });
    }
    if t.next >= st.end {
        // t1 first, before anything else costs time.
        let t1 = now_ns();
        t.done = true;
        let ev = RecvEvent::Done {
            t1, cpu_end: cpu_s(), received: t.received, dups: t.dups, gaps: t.gaps, bad: t.bad,
        };
        let _ = t.tx.send(ev);
    }
}

fn pair_recv(o: &Opts) -> i32 {
    let (tx, rx) = channel();
    // Warm-up 0: warm from the start (nothing to wait for, and the sender waits for `go`).
    let warm_at_start = o.warmup == 0;
    let st = Box::new(RecvState {
        size: o.size,
        warmup: o.warmup,
        end: o.warmup + o.count,
        seen: AtomicU64::new(0),
        tracker: Mutex::new(Tracker {
            next: 0, received: 0, dups: 0, gaps: 0, bad: 0,
            warm: warm_at_start, done: false, tx,
        }),
    });
    let ud = &*st as *const RecvState as *mut c_void;
    let peer = Peer::start(&format!("{}.sink", o.prefix), &o.redis, on_pair_message, ud);
    emit("{\"event\":\"ready\"}");
    let mut cpu0 = cpu_s();
    if warm_at_start {
        emit("{\"event\":\"warm\"}");
    }
    let (mut last_seen, mut last_progress) = (0, Instant::now());
    let done = loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(RecvEvent::Warm { cpu0: c }) => {
                cpu0 = c;
                emit("{\"event\":\"warm\"}");
            }
            Ok(done @ RecvEvent::Done { .. }) => break done,
            Err(RecvTimeoutError::Timeout) => {
                let seen = st.seen.load(Ordering::Relaxed);
                if seen != last_seen {
                    (last_seen, last_progress) = (seen, Instant::now());
                } else if last_progress.elapsed() > STALL {
                    let t = st.tracker.lock().unwrap();
                    fail(&format!(
                        "no message for {} s: {} messages seen, next expected seq {} of {}",
                        STALL.as_secs(), seen, t.next, st.end
                    ));
                }
            }
            Err(RecvTimeoutError::Disconnected) => fail("receive state went away"),
        }
    };
    let RecvEvent::Done { t1, cpu_end, received, dups, gaps, bad } = done else { unreachable!() };
    // Close *before* reporting (t1 and the CPU figure are already taken, so nothing measured
    // changes; closing takes a few ms). Closing writes the listener's final ack to Redis, and the
    // runner tells the sender to stop as soon as it reads `done`. Reported first, the sender often
    // closed before that ack landed, believed nothing was delivered (acks are otherwise written
    // once a second) and pushed every at-least-once message of the run into Redis, one RPUSH each:
    // seconds of exit time and up to ~130 MB of Redis per 1 KiB run, all of it already delivered.
    drop(peer);
    drop(st);
    emit(&format!(
        "{{\"event\":\"done\",\"t1_ns\":{t1},\"received\":{received},\"dups\":{dups},\
         \"gaps\":{gaps},\"cpu_s\":{:.6}}}",
        cpu_end - cpu0
    ));
    if gaps != 0 || bad != 0 || received != o.count {
        fail(&format!("received {received} of {}, {gaps} gaps, {bad} of the wrong size", o.count));
    }
    0
}

// ---- pair-send -------------------------------------------------------------------------------

fn pair_send(o: &Opts) -> i32 {
    // The sender's own listener gets nothing; it only has to exist because `run` starts both.
    let peer = Peer::start(&format!("{}.source", o.prefix), &o.redis, ignore, std::ptr::null_mut());
    let sink = CString::new(format!("{}.sink", o.prefix)).unwrap();
    let mut buf = vec![b'x'; o.size];
    for seq in 0..o.warmup {
        stamp(&mut buf, seq);
        peer.send_resolving(&sink, &buf, o.alo);
    }
    if !wait_line("go") {
        fail("stdin ended before go");
    }
    let cpu0 = cpu_s();
    let t0 = now_ns();
    for seq in o.warmup..o.warmup + o.count {
        stamp(&mut buf, seq);
        // With warm-up 0 the first sends may still be resolving the address.
        if !peer.send(&sink, &buf, o.alo) {
            if o.warmup > 0 {
                fail(&format!("send_to failed at seq {seq}"));
            }
            peer.send_resolving(&sink, &buf, o.alo);
        }
    }
    // `busy` is always 0: 1.3.1's send queue is unbounded and never pushes back.
    emit(&format!("{{\"event\":\"sent\",\"t0_ns\":{t0},\"busy\":0}}"));
    wait_line("stop"); // `stop` or EOF, both mean "finish"
    emit(&format!("{{\"event\":\"end\",\"cpu_s\":{:.6}}}", cpu_s() - cpu0));
    drop(peer);
    0
}

// ---- ping-server -----------------------------------------------------------------------------

/// The echo runs on liner_broker's receive thread, inside the callback: handing each message to
/// main first would add a thread wake-up (tens of µs) to every round trip, which is not
/// liner_broker's cost. `open` keeps echoes and closing apart: `lnr_delete_client` takes the
/// client's lock and then joins the receive thread, so an echo caught between them would
/// deadlock (or find the sender gone); main flips `open` under the lock before closing.
struct EchoState {
    client: *mut Client,
    alo: bool,
    open: Mutex<bool>,
    failed: AtomicU64,
}

extern "C" fn echo(_: *const i8, from: *const i8, data: *const u8, len: usize, ud: *mut c_void) {
    let st = unsafe { &*(ud as *const EchoState) };
    let open = st.open.lock().unwrap();
    // `from` is the sender's topic as a C string: exactly what lnr_send_to wants, no copy.
    if *open && !unsafe { lnr_send_to(st.client, from, data, len, st.alo) } {
        st.failed.fetch_add(1, Ordering::Relaxed);
    }
}

fn ping_server(o: &Opts) -> i32 {
    let name = CString::new(format!("{}.pong", o.prefix)).unwrap();
    let redis = CString::new(o.redis.as_str()).unwrap_or_else(|_| fail("NUL in --redis"));
    let listen = CString::new("127.0.0.1:0").unwrap();
    // Created by hand rather than by Peer::start: the callback state needs the handle first.
    let h = unsafe {
        lnr_new_client_redis(name.as_ptr(), name.as_ptr(), listen.as_ptr(), redis.as_ptr())
    };
    if h.is_null() {
        fail("liner_broker could not create the client (is Redis reachable?)");
    }
    let peer = Peer(h);
    let st = Box::new(EchoState {
        client: h, alo: o.alo, open: Mutex::new(true), failed: AtomicU64::new(0),
    });
    if !unsafe { lnr_run(h, echo, &*st as *const EchoState as *mut c_void) } {
        fail("liner_broker could not run the client");
    }
    emit("{\"event\":\"ready\"}");
    wait_line("stop");
    *st.open.lock().unwrap() = false;
    drop(peer);
    let failed = st.failed.load(Ordering::Relaxed);
    if failed > 0 {
        fail(&format!("{failed} echoes could not be sent"));
    }
    0
}

// ---- ping-client -----------------------------------------------------------------------------

/// Stamps each echo the moment liner_broker hands it over, then passes (seq, time) to main.
extern "C" fn on_echo(_: *const i8, _: *const i8, data: *const u8, len: usize, ud: *mut c_void) {
    let t = now_ns();
    let tx = unsafe { &*(ud as *const Mutex<Sender<(u64, u64, usize)>>) };
    let data = unsafe { std::slice::from_raw_parts(data, len) };
    let seq = if len >= 8 { seq_of(data) } else { u64::MAX };
    let _ = tx.lock().unwrap().send((seq, t, len));
}

fn ping_client(o: &Opts) -> i32 {
    let (tx, rx) = channel();
    let tx = Box::new(Mutex::new(tx));
    let ud = &*tx as *const Mutex<Sender<(u64, u64, usize)>> as *mut c_void;
    let peer = Peer::start(&format!("{}.ping", o.prefix), &o.redis, on_echo, ud);
    let pong = CString::new(format!("{}.pong", o.prefix)).unwrap();
    let mut buf = vec![b'x'; o.size];
    let mut rtts = Vec::with_capacity(o.count as usize);
    for seq in 0..o.warmup + o.count {
        stamp(&mut buf, seq);
        let t_send = now_ns();
        if !peer.send(&pong, &buf, o.alo) {
            if seq >= o.warmup {
                fail(&format!("send_to failed at seq {seq}"));
            }
            peer.send_resolving(&pong, &buf, o.alo);
        }
        let t_echo = loop {
            match rx.recv_timeout(STALL) {
                Ok((s, t, len)) if s == seq && len == o.size => break t,
                Ok((s, _, _)) if s < seq => {} // a duplicate of an earlier echo
                Ok((s, _, len)) => fail(&format!("expected echo {seq}, got {s} ({len} bytes)")),
                Err(_) => fail(&format!("no echo of seq {seq} within {} s", STALL.as_secs())),
            }
        };
        if seq >= o.warmup {
            rtts.push(t_echo - t_send);
        }
    }
    drop(peer);
    drop(tx);
    if rtts.is_empty() {
        fail("--count 0: nothing measured");
    }
    rtts.sort_unstable();
    let n = rtts.len() as u64;
    // sorted[ceil(q*N) - 1], with q as a fraction num/den so no float rounding creeps in.
    let pct = |num: u64, den: u64| rtts[((n * num).div_ceil(den) - 1) as usize];
    let mean = rtts.iter().sum::<u64>() / n;
    emit(&format!(
        "{{\"event\":\"done\",\"n\":{n},\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\
         \"mean_ns\":{mean},\"max_ns\":{}}}",
        pct(50, 100), pct(99, 100), pct(999, 1000), rtts[rtts.len() - 1]
    ));
    0
}

fn main() {
    let o = parse_opts();
    let code = match o.role {
        Role::PairRecv => pair_recv(&o),
        Role::PairSend => pair_send(&o),
        Role::PingServer => ping_server(&o),
        Role::PingClient => ping_client(&o),
    };
    std::process::exit(code);
}
