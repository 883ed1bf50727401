// What most test files need: clients on this file's Redis database (flushed before each test,
// every client closed after it), bounded waits, an inbox, sequence-numbered payloads, a peer
// that reads nothing, and fixture processes.
import { type ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';

import { afterEach, beforeEach, expect, inject } from 'vitest';

import { Client, type ClientOptions, LinerError, type Message } from '../../../dist/index.mjs';
import { Redis } from './redis.js';

export { Client, LinerError } from '../../../dist/index.mjs';
export type { ClientOptions, Message, StatusEvent } from '../../../dist/index.mjs';
export { freePort } from './net.js';

/**
 * This file's database: test files run in parallel, one per vitest worker, and each worker
 * uses the database numbered after it (database 0 is left to the Python suites).
 */
export const redisUrl = inject('redisUrl').replace(/(\/\d*)?$/, `/${Number(process.env.VITEST_POOL_ID ?? 1)}`);

/** The `code` of the LinerError that `call` throws, or undefined when it returns. */
export function codeOf(call: () => unknown): string | undefined {
  try {
    call();
  } catch (e) {
    expect(e).toBeInstanceOf(LinerError);
    return (e as LinerError).code;
  }
  return undefined;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `condition` until it is truthy or `timeoutMs` passed; returns its last value. */
export async function waitUntil<T>(condition: () => T | Promise<T>, timeoutMs = 5000, intervalMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value || Date.now() >= deadline) return value;
    await sleep(intervalMs);
  }
}

/** Received messages, copied (data as Buffer copies). */
export class Inbox {
  readonly items: { to: string; from: string; data: Buffer }[] = [];

  constructor(client?: Client) {
    if (client) client.on('message', this.push);
  }

  readonly push = (m: Message): void => {
    this.items.push({ to: m.to, from: m.from, data: Buffer.from(m.data) });
  };

  get length(): number {
    return this.items.length;
  }

  payloads(): string[] {
    return this.items.map((m) => m.data.toString());
  }

  async waitCount(n: number, timeoutMs = 5000): Promise<number> {
    await waitUntil(() => this.items.length >= n, timeoutMs);
    return this.items.length;
  }
}

/** A payload of `size` bytes that starts with its ten-digit sequence number. */
export function seqPayload(i: number, size = 100): Buffer {
  const b = Buffer.alloc(size, '.');
  b.write(String(i).padStart(10, '0'), 0, 'latin1');
  return b;
}

export function seqOf(data: Buffer): number {
  return Number(data.toString('latin1', 0, 10));
}

/** Checks sequence-numbered deliveries: counts, order, duplicates. */
export class SeqChecker {
  count = 0;
  next = 1;
  readonly seen: number[] = [];
  readonly errors: [expected: number, got: number][] = [];
  readonly badMeta: [string, string][] = [];

  constructor(private readonly meta?: [to: string, from: string], private readonly keep = true) {}

  readonly push = (m: Message): void => {
    const n = seqOf(m.data);
    if (n !== this.next && this.errors.length < 20) this.errors.push([this.next, n]);
    this.next = n + 1;
    this.count++;
    if (this.keep) this.seen.push(n);
    if (this.meta && (m.to !== this.meta[0] || m.from !== this.meta[1]) && this.badMeta.length < 20) {
      this.badMeta.push([m.to, m.from]);
    }
  };
}

export const FLAG_COMPRESS = 0x01;
export const FLAG_AT_LEAST_ONCE = 0x02;

/** A stored frame (spec §1.8, with its length prefix) as its fields. */
export function parseFrame(frame: Buffer): { number: bigint; ck: number; tk: number; flags: number; data: Buffer } {
  const bodyLen = frame.readUInt32BE(0);
  if (bodyLen !== frame.length - 4) throw new Error(`body_len ${bodyLen} but frame is ${frame.length} bytes`);
  const dataLen = frame.readUInt32BE(21);
  return {
    number: frame.readBigUInt64BE(4),
    ck: frame.readInt32BE(12),
    tk: frame.readInt32BE(16),
    flags: frame.readUInt8(20),
    data: frame.subarray(25, 25 + dataLen),
  };
}

/** sendTo (or sendAll) that waits with drain() while the client answers BUSY. */
export async function sendRetrying(
  client: Client,
  topic: string,
  data: string | Buffer,
  options: { atLeastOnce?: boolean; all?: boolean; timeoutMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    try {
      if (options.all) client.sendAll(topic, data, options);
      else client.sendTo(topic, data, options);
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== 'BUSY' || Date.now() > deadline) throw e;
      await client.drain();
    }
  }
}

/**
 * Sends numbered at-least-once messages to `topic` for `ms`, `burst` at a time with `pauseMs`
 * between bursts; returns the next number.
 */
export async function pumpNumbered(
  client: Client,
  topic: string,
  first: number,
  ms: number,
  burst: number,
  pauseMs: number,
): Promise<number> {
  let seq = first;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    for (let i = 0; i < burst; i++) await sendRetrying(client, topic, seqPayload(seq++));
    await sleep(pauseMs);
  }
  return seq;
}

/** Waits for messages 1..last, then a second more: each exactly once, in order, to/from right. */
export async function expectExactlyOnceInOrder(checker: SeqChecker, last: number): Promise<void> {
  await waitUntil(() => checker.count >= last, 20_000);
  await sleep(1000); // a duplicate would show up here
  const seen = new Set(checker.seen);
  const missing = [];
  for (let i = 1; i <= last && missing.length < 10; i++) if (!seen.has(i)) missing.push(i);
  expect(missing, 'lost messages').toEqual([]);
  expect(checker.count, 'deliveries').toBe(last);
  expect(checker.errors, 'order').toEqual([]);
  expect(checker.badMeta).toEqual([]);
}

/**
 * Registers the per-test set-up of a file that talks to Redis, and returns a client factory
 * (every client made is closed after the test) and a Redis connection for assertions.
 */
export function useMesh(): {
  client: (name: string, topic: string, options?: Partial<ClientOptions>) => Client;
  started: (name: string, topic: string, onMessage?: (m: Message) => void, options?: Partial<ClientOptions>) => Promise<Client>;
  listenerAndSender: (
    onMessage?: (m: Message) => void,
    listenerOptions?: Partial<ClientOptions>,
  ) => Promise<{ listener: Client; sender: Client }>;
  rdb: () => Redis;
} {
  const made: Client[] = [];
  let rdb: Redis | undefined;
  beforeEach(async () => {
    rdb = await Redis.connect(redisUrl);
    await rdb.cmd('FLUSHDB');
  });
  afterEach(async () => {
    // Newest first, one at a time (receivers are usually made after their senders: closing
    // them first lets the senders see the final acknowledgements at once).
    for (const c of made.splice(0).reverse()) await c.close();
    rdb?.close();
    rdb = undefined;
  });
  const client = (name: string, topic: string, options: Partial<ClientOptions> = {}): Client => {
    const c = new Client({ name, topic, listen: '127.0.0.1:0', redis: redisUrl, ...options });
    made.push(c);
    return c;
  };
  /** A client of the mesh, started; its messages go to `onMessage` from before it starts. */
  const started = async (name: string, topic: string, onMessage?: (m: Message) => void, options: Partial<ClientOptions> = {}) => {
    const c = client(name, topic, options);
    if (onMessage) c.on('message', onMessage);
    await c.start();
    return c;
  };
  return {
    client,
    started,
    /**
     * The usual pair, started in this order: 'listener' on 'listener_topic' (its messages go to
     * `onMessage` from before it starts), then 'sender' on 'sender_topic'.
     */
    async listenerAndSender(onMessage, listenerOptions = {}) {
      const listener = await started('listener', 'listener_topic', onMessage, listenerOptions);
      const sender = await started('sender', 'sender_topic');
      return { listener, sender };
    },
    rdb: () => rdb!,
  };
}

/** A peer that accepts connections and reads nothing until resumed: see {@link stalledPeer}. */
export interface StalledPeer {
  /** Its `"127.0.0.1:port"`, registered under the topic. */
  address: string;
  /** Starts reading (and keeps reading) on every connection so far. */
  resume: () => void;
  /** Bytes read so far. */
  bytes: () => number;
  /** Connections accepted so far. */
  connections: () => number;
  close: () => Promise<void>;
}

/**
 * A TCP "peer" registered in Redis under `topic` (as `${topic}_peer`) that accepts connections
 * but reads nothing until resumed: its senders' queues fill up.
 */
export async function stalledPeer(rdb: Redis, topic: string): Promise<StalledPeer> {
  const sockets: net.Socket[] = [];
  let bytes = 0;
  const server = net.createServer((s) => {
    s.pause();
    s.on('data', (d) => (bytes += d.length));
    sockets.push(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  await rdb.cmd('HSET', `lnr_topic:${topic}:addr`, address, `${topic}_peer`);
  return {
    address,
    resume: () => sockets.forEach((s) => s.resume()),
    bytes: () => bytes,
    connections: () => sockets.length,
    close: () => {
      sockets.forEach((s) => s.destroy());
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** A running fixture process: see {@link spawnFixture}. */
export interface Fixture {
  child: ChildProcess;
  /** Resolves to its exit code and signal. */
  exit: Promise<[code: number | null, signal: string | null]>;
  /** What it wrote so far, stdout and stderr together. */
  output: () => string;
}

/** Runs `node [...nodeFlags] test/ts/fixtures/<fixture> <redisUrl> ...args`. */
export function spawnFixture(fixture: string, args: string[] = [], nodeFlags: string[] = []): Fixture {
  const script = path.join(__dirname, '..', 'fixtures', fixture);
  const child = spawn(process.execPath, [...nodeFlags, script, redisUrl, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exit = new Promise<[number | null, string | null]>((resolve) => child.on('exit', (code, signal) => resolve([code, signal])));
  return { child, exit, output: () => output };
}
