//! lbpeer — one liner_broker 1.3.1 peer, driven from the command line and stdin.
//!
//! The interop tests (test/interop/test_interop.py on one Redis, test_interop_sql_stores.py on
//! one SQLite file and one PostgreSQL database) run this next to liner peers to check that liner
//! and the reference crate understand each other. It uses only the crate's public `Liner` wrapper, so everything on the
//! wire and in the store is exactly what 1.3.1 does.
//!
//! ```text
//! lbpeer --name U --topic S --listen IP:PORT (--redis URL | --sqlite PATH | --postgres URL)
//!        [--subscribe T]...                       subscribe (after run, see below)
//!        [--nudge-topic T]                        subscribe T, but neither print nor count its
//!                                                 messages (see below)
//!        [--send-to T | --send-all T]             after run, send generated payloads 1..=count
//!          [--count N] [--size B] [--interval-ms MS] [--best-effort]
//!        [--stdin]                                then execute commands read from stdin
//!        [--expect N] [--linger-ms MS]            wait for N received messages, then MS more
//!        [--timeout-ms MS]                        hard limit on the whole run (default 60000)
//! ```
//!
//! stdin commands (one per line, fields separated by single spaces; `alo` = at-least-once,
//! `be` = best-effort, default `alo`):
//! ```text
//! send_to  TOPIC HEX [alo|be]        send_all TOPIC HEX [alo|be]
//! gen_to   TOPIC FIRST COUNT SIZE [alo|be] [INTERVAL_MS]    (generated payloads FIRST..)
//! gen_all  TOPIC FIRST COUNT SIZE [alo|be] [INTERVAL_MS]
//! subscribe TOPIC    unsubscribe TOPIC    refresh TOPIC    quit
//! ```
//! Each command answers `OK\t<verb>\t<ok>/<total>` or `FAIL\t<verb>\t<ok>/<total>`.
//!
//! stdout, one tab-separated line per event, flushed at once:
//! `READY\t<bound addr>` after `run` succeeded; `RECV\t<to>\t<from>\t<payload hex>` per received
//! message (in callback order); `DONE\t<received>` when `--expect` is met; `TIMEOUT\t<received>`
//! before exiting with code 3; `EXIT` after the client was dropped cleanly.
//! `--redis` creates the client with `Liner::new`, `--sqlite` with `Liner::new_sqlite(.., PATH, "")`
//! (empty receivers JSON: the directory and keys come from the shared file, as when several peers
//! share one database), `--postgres` with `Liner::new_postgres(.., URL)` (the crate's `postgres`
//! feature, enabled in Cargo.toml; URL is anything libpq-style the `postgres` crate accepts,
//! e.g. `postgresql://user@127.0.0.1:5432/db` or `host=... dbname=...`); exactly one of the
//! three is given.
//!
//! Exit codes: 0 done, 2 usage, 3 timeout, 4 `run` or a subscription failed (`FAIL\trun` /
//! `FAIL\tsubscribe\t<topic>`), 101 client creation failed (the wrapper panics).
//!
//! Generated payload `seq` of `size` bytes = `seq=NNNNNN|` followed by bytes `(seq + j) & 0xff`
//! (j = 0, 1, ...), truncated to `size`; the tests rebuild it to compare byte for byte.
//!
//! 1.3.1 behaviour the tests must allow for (see src/sender.rs, src/listener.rs and src/client.rs
//! of the crate):
//! - dropping the client never removes its address from `lnr_topic:*:addr`;
//! - its sender notices a dead connection only when a write fails, then reconnects on a 10 s tick;
//! - its sender can lose a new destination address that is added while it is connecting another
//!   one (`append_streams` overwrites the pending list afterwards): a `send_all` to several new
//!   addresses may leave one of them unconnected for good, so tests introduce them one by one;
//! - its listener writes acks (`lnr_connection:{ck}:mess_number`) about once a second and once
//!   more on drop;
//! - a subscription made before `run` registers the unresolved `--listen` string (useless with
//!   port 0), so lbpeer subscribes after `run`;
//! - its listener can miss a readiness edge when data arrives while it is still reading, leaving
//!   the tail of a burst unread until the next packet arrives. Tests "nudge" it by sending extra
//!   messages to the `--nudge-topic`, which lbpeer drops.

use liner_broker::Liner;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the client keeps its directory, keys and offline queue.
enum Store {
    Redis(String),
    Sqlite(String),
    Postgres(String),
}

struct Args {
    name: String,
    topic: String,
    listen: String,
    store: Store,
    subscribe: Vec<String>,
    nudge_topic: Option<String>,
    send: Option<(bool, String)>, // (send_all, topic)
    count: u64,
    size: usize,
    interval_ms: u64,
    at_least_once: bool,
    stdin: bool,
    expect: usize,
    linger_ms: u64,
    timeout_ms: u64,
}

fn usage(msg: &str) -> ! {
    eprintln!("lbpeer: {msg}\nsee the header of test/interop/peer/src/main.rs for usage");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut a = Args {
        name: String::new(), topic: String::new(), listen: String::new(),
        store: Store::Redis(String::new()), // the one given replaces it below
        subscribe: Vec::new(), nudge_topic: None, send: None, count: 1, size: 16, interval_ms: 0,
        at_least_once: true, stdin: false, expect: 0, linger_ms: 0, timeout_ms: 60_000,
    };
    let mut store = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let num =
            |s: String| s.parse::<u64>().unwrap_or_else(|_| usage(&format!("bad number {s}")));
        match flag.as_str() {
            "--name" => a.name = val(),
            "--topic" => a.topic = val(),
            "--listen" => a.listen = val(),
            "--redis" | "--sqlite" | "--postgres" if store.is_some() => {
                usage("give exactly one of --redis, --sqlite and --postgres")
            }
            "--redis" => store = Some(Store::Redis(val())),
            "--sqlite" => store = Some(Store::Sqlite(val())),
            "--postgres" => store = Some(Store::Postgres(val())),
            "--subscribe" => a.subscribe.push(val()),
            "--nudge-topic" => a.nudge_topic = Some(val()),
            "--send-to" => a.send = Some((false, val())),
            "--send-all" => a.send = Some((true, val())),
            "--count" => a.count = num(val()),
            "--size" => a.size = num(val()) as usize,
            "--interval-ms" => a.interval_ms = num(val()),
            "--at-least-once" => a.at_least_once = true,
            "--best-effort" => a.at_least_once = false,
            "--stdin" => a.stdin = true,
            "--expect" => a.expect = num(val()) as usize,
            "--linger-ms" => a.linger_ms = num(val()),
            "--timeout-ms" => a.timeout_ms = num(val()),
            _ => usage(&format!("unknown argument {flag}")),
        }
    }
    let store = store.filter(|s| {
        !matches!(s, Store::Redis(v) | Store::Sqlite(v) | Store::Postgres(v) if v.is_empty())
    });
    match store {
        Some(store) if !(a.name.is_empty() || a.topic.is_empty() || a.listen.is_empty()) => {
            Args { store, ..a }
        }
        _ => usage(
            "--name, --topic, --listen and one of --redis, --sqlite and --postgres are required",
        ),
    }
}

/// Prints one whole line and flushes, so a reader on a pipe sees events as they happen.
fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn to_hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = Vec::with_capacity(data.len() * 2);
    for b in data {
        s.push(DIGITS[(b >> 4) as usize]);
        s.push(DIGITS[(b & 15) as usize]);
    }
    String::from_utf8(s).unwrap()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The generated payload number `seq` (see the header; test_interop.py has the twin).
fn gen_payload(seq: u64, size: usize) -> Vec<u8> {
    let mut p = format!("seq={seq:06}|").into_bytes();
    let mut j = 0u64;
    while p.len() < size {
        p.push(((seq + j) & 0xff) as u8);
        j += 1;
    }
    p.truncate(size);
    p
}

fn send(peer: &mut Liner, all: bool, topic: &str, data: &[u8], alo: bool) -> bool {
    if all { peer.send_all(topic, data, alo) } else { peer.send_to(topic, data, alo) }
}

/// Sends generated payloads first..first+count; returns how many sends returned true.
fn send_generated(peer: &mut Liner, all: bool, topic: &str, first: u64, count: u64, size: usize,
                  alo: bool, interval_ms: u64) -> u64 {
    let mut ok = 0;
    for seq in first..first + count {
        if seq > first && interval_ms > 0 {
            std::thread::sleep(Duration::from_millis(interval_ms));
        }
        ok += send(peer, all, topic, &gen_payload(seq, size), alo) as u64;
    }
    ok
}

/// Executes one stdin command; returns false on `quit`.
fn command(peer: &mut Liner, line: &str) -> bool {
    let f: Vec<&str> = line.split(' ').filter(|s| !s.is_empty()).collect();
    let Some(&verb) = f.first() else { return true };
    let alo_at = |i: usize| f.get(i).map_or(true, |m| *m != "be");
    let arg = |i: usize| f.get(i).copied().unwrap_or("");
    let num = |i: usize| arg(i).parse::<u64>().ok();
    let (ok, total) = match verb {
        "quit" => return false,
        "send_to" | "send_all" => match from_hex(arg(2)) {
            Some(data) => (send(peer, verb == "send_all", arg(1), &data, alo_at(3)) as u64, 1),
            None => (0, 1),
        },
        "gen_to" | "gen_all" => match (num(2), num(3), num(4)) {
            (Some(first), Some(count), Some(size)) => {
                let interval = num(6).unwrap_or(0);
                (send_generated(peer, verb == "gen_all", arg(1), first, count, size as usize,
                                alo_at(5), interval), count)
            }
            _ => (0, 1),
        },
        "subscribe" => (peer.subscribe(arg(1)) as u64, 1),
        "unsubscribe" => (peer.unsubscribe(arg(1)) as u64, 1),
        "refresh" => (peer.refresh_address_topic(arg(1)) as u64, 1),
        _ => (0, 1),
    };
    emit(&format!("{}\t{verb}\t{ok}/{total}", if ok == total { "OK" } else { "FAIL" }));
    true
}

fn main() {
    let args = parse_args();
    let started = Instant::now();
    let received = Arc::new(AtomicUsize::new(0));

    // The whole run is bounded: a stuck peer must never outlive its test.
    let (timeout, counter) = (args.timeout_ms, received.clone());
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(timeout));
        emit(&format!("TIMEOUT\t{}", counter.load(Ordering::SeqCst)));
        std::process::exit(3);
    });

    // `Liner::run` hands the wrapper's own address to the C callback, so `peer` must stay put.
    let mut peer = match &args.store {
        Store::Redis(url) => Liner::new(&args.name, &args.topic, &args.listen, url),
        Store::Sqlite(path) => Liner::new_sqlite(&args.name, &args.topic, &args.listen, path, ""),
        Store::Postgres(url) => Liner::new_postgres(&args.name, &args.topic, &args.listen, url),
    };
    let (counter, nudge) = (received.clone(), args.nudge_topic.clone().unwrap_or_default());
    // Called on the listener's receive thread only, one message at a time.
    let ok = peer.run(Box::new(move |to: &str, from: &str, data: &[u8]| {
        if to != nudge {
            emit(&format!("RECV\t{to}\t{from}\t{}", to_hex(data)));
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }));
    if !ok {
        emit("FAIL\trun");
        std::process::exit(4);
    }
    for t in args.subscribe.iter().chain(&args.nudge_topic) {
        if !peer.subscribe(t) {
            emit(&format!("FAIL\tsubscribe\t{t}"));
            std::process::exit(4);
        }
    }
    emit(&format!("READY\t{}", peer.bound_listen_addr().unwrap_or_default()));

    if let Some((all, topic)) = &args.send {
        let ok = send_generated(&mut peer, *all, topic, 1, args.count, args.size,
                                args.at_least_once, args.interval_ms);
        let verb = if *all { "send_all" } else { "send_to" };
        let status = if ok == args.count { "OK" } else { "FAIL" };
        emit(&format!("{status}\t{verb}\t{ok}/{}", args.count));
    }
    if args.stdin {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if !command(&mut peer, line.trim_end()) {
                break;
            }
        }
    }
    while received.load(Ordering::SeqCst) < args.expect {
        std::thread::sleep(Duration::from_millis(10));
    }
    if args.expect > 0 {
        emit(&format!("DONE\t{}", received.load(Ordering::SeqCst)));
    }
    std::thread::sleep(Duration::from_millis(args.linger_ms));
    // Dropping stops the sender (persisting unacked at-least-once messages to the store) and then the
    // listener (final ack flush). 1.3.1 leaves the address registered.
    drop(peer);
    emit("EXIT");
    eprintln!("lbpeer {}: exit after {} ms", args.name, started.elapsed().as_millis());
}
