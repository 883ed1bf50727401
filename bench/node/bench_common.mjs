// What the Node benchmark programs share: the command line, the JSON lines on stdout, the
// payload layout, the receiver's sequence check and the sender's go/stop steps, all as
// bench/PROTOCOL.md defines them. Each program only supplies its transport.
import readline from 'node:readline';

const ROLES = ['pair-recv', 'pair-send', 'ping-server', 'ping-client', 'drain-send', 'drain-recv'];
// Every option of the protocol, so that the runner can pass one command line to every program.
const OPTIONS = {
  role: undefined, size: undefined, count: undefined, warmup: undefined,
  port: undefined, redis: undefined, prefix: undefined, alo: '1',
  replica: undefined, fanout: '0', slow: '0', batch: '1',
};
const TEXT_OPTIONS = new Set(['role', 'redis', 'prefix']);

/** Command-line mistakes: message on stderr, exit 2. */
export function usage(message) {
  process.stderr.write(`${process.argv[1]}: ${message}\n`);
  process.exit(2);
}

/**
 * Parses `--name value` pairs. `needs` lists the options this program cannot run without;
 * `extras` the liner-only options (replica, fanout, slow, batch) it implements; the others are
 * accepted only at their "off" value, so nobody measures a mode the program silently skipped.
 */
export function parseOptions({ needs = [], extras = [] } = {}) {
  const args = process.argv.slice(2);
  const raw = { ...OPTIONS };
  for (let i = 0; i < args.length; i += 2) {
    const name = args[i].startsWith('--') ? args[i].slice(2) : undefined;
    if (!name || !Object.hasOwn(OPTIONS, name)) usage(`unknown option '${args[i]}'`);
    if (i + 1 >= args.length) usage(`option --${name} needs a value`);
    raw[name] = args[i + 1];
  }
  for (const name of ['role', 'size', 'count', 'warmup', ...needs]) {
    if (raw[name] === undefined) usage(`option --${name} is required`);
  }
  const opts = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined || TEXT_OPTIONS.has(name)) opts[name] = value;
    else if (/^\d+$/.test(value) && Number.isSafeInteger(Number(value))) opts[name] = Number(value);
    else usage(`option --${name} must be a non-negative integer, not '${value}'`);
  }
  if (!ROLES.includes(opts.role)) usage(`unknown role '${opts.role}'`);
  if (opts.role !== 'pair-recv' && opts.role !== 'pair-send') usage(`role '${opts.role}' is not implemented by this program`);
  if (opts.size < 8) usage('--size must be at least 8 (the sequence number)');
  if (opts.alo > 1 || opts.fanout > 1 || opts.slow > 1) usage('--alo, --fanout and --slow take 0 or 1');
  if (opts.batch < 1) usage('--batch must be at least 1');
  const off = { replica: undefined, fanout: 0, slow: 0, batch: 1 };
  for (const [name, value] of Object.entries(off)) {
    if (!extras.includes(name) && opts[name] !== value) usage(`option --${name} is not implemented by this program`);
  }
  return opts;
}

/** One JSON line on stdout. BigInts (nanosecond timestamps) are written as exact integers. */
export function emit(event) {
  const fields = Object.entries(event).map(([k, v]) => `${JSON.stringify(k)}:${typeof v === 'bigint' ? v : JSON.stringify(v)}`);
  // process.stdout is synchronous for pipes and files on Linux: the line is out when this returns.
  process.stdout.write(`{${fields.join(',')}}\n`);
}

/** Prints an `error` event and exits 1. */
export function fail(error) {
  if (error?.stack) process.stderr.write(`${error.stack}\n`);
  emit({ event: 'error', message: String(error?.message ?? error) });
  process.exit(1);
}

/** Runs a program's async body; any failure becomes an `error` event and exit 1. */
export function run(body) {
  body().then(() => process.exit(0), fail);
}

/** CLOCK_MONOTONIC in ns (libuv's uv_hrtime), comparable across processes. */
export const now = () => process.hrtime.bigint();

/** User + system CPU µs of the whole process, native threads included (getrusage). */
function cpuMicros() {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** CPU seconds since a `cpuMicros()` reading (µs are integers: no float noise in the JSON). */
const cpuSecondsSince = (micros0) => (cpuMicros() - micros0) / 1e6;

/** A payload of `size` bytes of filler 'x'; the sequence number goes into its first 8 bytes. */
export const filler = (size) => Buffer.alloc(size, 'x');

/** Writes `seq` as a little-endian u64 at `offset` (two u32 halves: cheaper than BigInt). */
export function writeSeq(buf, offset, seq) {
  buf.writeUInt32LE(seq % 0x1_0000_0000, offset);
  buf.writeUInt32LE(Math.floor(seq / 0x1_0000_0000), offset + 4);
}

export function readSeq(buf, offset = 0) {
  return buf.readUInt32LE(offset) + buf.readUInt32LE(offset + 4) * 0x1_0000_0000;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The receiving side of the pair roles: counts what `see(seq)` reports, prints `warm` once
 * seq W-1 was passed and `done` once seq W+N-1 was, and resolves `finished` then. A sequence
 * number lower than the next one expected is a duplicate, a higher one skips (gaps) the ones
 * between: every transport here delivers in order, so a late arrival cannot be mistaken.
 */
export class Receiver {
  next = 0; // the next sequence number expected
  seen = 0; // every message, duplicates included (the watchdog's progress)
  received = 0; // distinct measured messages
  dups = 0;
  gaps = 0;
  warmed = false;
  done = false;

  constructor({ warmup, count }, { dupsAllowed }) {
    this.warmup = warmup;
    this.end = warmup + count;
    this.dupsAllowed = dupsAllowed;
    this.finished = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.finished.catch(() => {}); // a failure before the program awaits it is not "unhandled"
  }

  /** Set up: prints `ready` and starts the 60 s no-progress watchdog. */
  ready() {
    emit({ event: 'ready' });
    let last = -1;
    let idleSince = Date.now();
    this.watchdog = setInterval(() => {
      if (this.seen !== last) [last, idleSince] = [this.seen, Date.now()];
      else if (Date.now() - idleSince >= 60_000) this.reject(new Error(`no progress for 60 s (next expected seq ${this.next})`));
    }, 1000);
    this.#advanced(); // W = 0: warm at once; N = 0 too: done at once
  }

  see(seq) {
    this.seen++;
    if (seq === this.next) this.next++;
    else if (seq < this.next) {
      this.dups++;
      return;
    } else {
      if (seq >= this.end) this.reject(new Error(`seq ${seq} is beyond the last one, ${this.end - 1}`));
      this.gaps += seq - this.next;
      this.next = seq + 1;
    }
    if (seq >= this.warmup) this.received++;
    if (this.next >= this.warmup) this.#advanced();
  }

  #advanced() {
    if (!this.warmed && this.next >= this.warmup) {
      this.warmed = true;
      this.cpu0 = cpuMicros();
      emit({ event: 'warm' });
    }
    if (!this.done && this.next >= this.end) {
      const t1 = now();
      this.done = true;
      clearInterval(this.watchdog);
      const { received, dups, gaps } = this;
      emit({ event: 'done', t1_ns: t1, received, dups, gaps, cpu_s: cpuSecondsSince(this.cpu0) });
      if (gaps > 0) this.reject(new Error(`${gaps} sequence numbers were skipped`));
      else if (dups > 0 && !this.dupsAllowed) this.reject(new Error(`${dups} duplicates without at-least-once`));
      else this.resolve();
    }
  }
}

/** The lines the runner writes on stdin, taken one at a time. */
function stdinLines() {
  const lines = [];
  let ended = false;
  let wake = () => {};
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line.trim()) lines.push(line.trim());
    wake();
  });
  rl.on('close', () => {
    ended = true;
    wake();
  });
  /** Resolves on the line `word`; EOF resolves too if `eofOk`, else rejects. */
  return async function expect(word, { eofOk = false } = {}) {
    while (!lines.length && !ended) await new Promise((resolve) => (wake = resolve));
    if (!lines.length) {
      if (eofOk) return;
      throw new Error(`stdin ended before '${word}'`);
    }
    const line = lines.shift();
    if (line !== word) throw new Error(`expected '${word}' on stdin, got '${line}'`);
  };
}

/**
 * The sending side of the pair roles. `send(from, to, measured)` sends seq from..to-1 as fast
 * as the transport allows and resolves to how often it had to wait for room; `close()` shuts
 * the transport down after `stop`.
 */
export async function runSender({ warmup, count }, { send, close }) {
  const expect = stdinLines(); // reading from now on: a `go` written early is kept
  await send(0, warmup, false);
  await expect('go');
  const cpu0 = cpuMicros();
  const t0 = now();
  const busy = await send(warmup, warmup + count, true);
  emit({ event: 'sent', t0_ns: t0, busy });
  await expect('stop', { eofOk: true });
  emit({ event: 'end', cpu_s: cpuSecondsSince(cpu0) });
  await close();
}
