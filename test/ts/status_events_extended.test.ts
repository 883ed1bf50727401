// The per-kind status events ('peer-connected', 'peer-disconnected', 'subscribed',
// 'unsubscribed', 'route-lost', 'busy', 'writable', and 'error' for store and send failures):
// each arrives within a second of what caused it, on the sender side and the listener side, for
// a peer (a child process) that starts, subscribes, unsubscribes, stops, starts again and is
// killed.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as path from 'node:path';
import { createInterface } from 'node:readline';

import { afterEach, expect, test } from 'vitest';

import { LinerStatusError } from '../../dist/index.mjs';
import { PrivateRedis } from './support/private_redis.js';
import { Client, Inbox, type StatusEvent, redisUrl, sleep, stalledPeer, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();
const FIXTURE = path.join(__dirname, 'fixtures', 'status_peer.mjs');
const SECOND = 1000;

/** Events of one client, with their arrival time, from its per-kind events (not 'status'). */
class EventLog {
  readonly items: (StatusEvent & { event: string; at: number })[] = [];

  constructor(client: Client) {
    for (const event of ['peer-connected', 'peer-disconnected', 'subscribed', 'unsubscribed', 'route-lost', 'busy',
      'writable'] as const) {
      client.on(event, (e) => this.items.push({ ...e, event, at: Date.now() }));
    }
  }

  mark(): number {
    return this.items.length;
  }

  /** The first event since `mark` matching, waited for at most `timeoutMs`. */
  async next(since: number, match: Partial<StatusEvent> & { event: string }, timeoutMs = 3000) {
    const find = () =>
      this.items.slice(since).find((e) => Object.entries(match).every(([k, v]) => (e as unknown as Record<string, unknown>)[k] === v));
    await waitUntil(find, timeoutMs);
    const found = find();
    expect(found, `${JSON.stringify(match)} in ${JSON.stringify(this.items.slice(since))}`).toBeDefined();
    return found!;
  }

  /**
   * Runs `action`; returns what it returned, the mark and time just before and after it, and
   * `next(match)`: the first event since then that matches, checked to have come within a
   * second of the action's end.
   */
  async after<T>(action: () => T | Promise<T>) {
    const mark = this.mark();
    const result = await action();
    const done = Date.now();
    const next = async (match: Partial<StatusEvent> & { event: string }) => {
      const e = await this.next(mark, match);
      expect(e.at - done).toBeLessThan(SECOND);
      return e;
    };
    return { result, mark, done, next };
  }
}

/** The child peer: commands in, one answer line per command out. */
class ChildPeer {
  readonly process: ChildProcessWithoutNullStreams;
  #lines: string[] = [];
  #waiters: (() => void)[] = [];

  constructor(name: string, topic: string) {
    this.process = spawn(process.execPath, [FIXTURE, redisUrl, name, topic], { stdio: 'pipe' });
    this.process.stderr.resume();
    createInterface({ input: this.process.stdout }).on('line', (line) => {
      this.#lines.push(line);
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Waits for (and consumes) the first line starting with `prefix`. */
  async line(prefix: string, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.#lines.findIndex((l) => l.startsWith(prefix));
      if (i >= 0) return this.#lines.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`no '${prefix}' from the child peer; got ${JSON.stringify(this.#lines)}`);
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  /** Runs one command; resolves to its answer (after "ok <command>"), when the child finished it. */
  async run(command: string): Promise<string> {
    this.process.stdin.write(`${command}\n`);
    const verb = command.split(' ')[0]!;
    const answer = await Promise.race([this.line(`ok ${verb}`), this.line(`error ${verb}`)]);
    expect(answer.startsWith('ok'), answer).toBe(true);
    return answer.slice(`ok ${verb}`.length).trim();
  }

  kill(signal: NodeJS.Signals): void {
    this.process.kill(signal);
  }

  async exited(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    await new Promise((r) => this.process.once('exit', r));
  }
}

/**
 * A listener and a sender on a Redis of their own (tests that stop it), all closed after `body`.
 * `connect(first)` starts both (once `body` attached its handlers) and sends `first` from the
 * sender to the listener; it resolves to the listener's Inbox once that message arrived.
 */
async function onPrivateRedis(
  body: (pair: { redis: PrivateRedis; listener: Client; sender: Client; connect: (first: string) => Promise<Inbox> }) => Promise<void>,
): Promise<void> {
  const redis = await PrivateRedis.start();
  const listener = new Client({ name: 'listener', topic: 'listener_topic', redis: redis.url });
  const sender = new Client({ name: 'sender', topic: 'sender_topic', redis: redis.url });
  const connect = async (first: string): Promise<Inbox> => {
    const inbox = new Inbox(listener);
    await listener.start();
    await sender.start();
    sender.sendTo('listener_topic', first);
    expect(await inbox.waitCount(1)).toBe(1);
    return inbox;
  };
  try {
    await body({ redis, listener, sender, connect });
  } finally {
    await sender.close();
    await listener.close();
    await redis.dispose();
  }
}

const children: ChildPeer[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.kill('SIGKILL');
    await c.exited();
  }
});

test('a peer that starts, subscribes, unsubscribes, stops, starts again and is killed is reported within a second', async () => {
  const observer = mesh.client('observer', 'observer_topic');
  const log = new EventLog(observer);
  const inbox = new Inbox(observer);
  await observer.start();
  // Topics this client uses: its own, and the ones it listed (or sent to).
  expect(await observer.listAddresses('peer_topic')).toEqual([]);
  expect(await observer.listAddresses('news')).toEqual([]);

  const child = new ChildPeer('peer', 'peer_topic');
  children.push(child);
  await child.line('ready');

  // Starts: the directory says it joined the topic.
  let step = await log.after(() => child.run('start'));
  let addr = step.result;
  expect((await step.next({ event: 'peer-connected', topic: 'peer_topic', peer: addr })).kind).toBe('peerConnected');

  // Subscribes and unsubscribes.
  step = await log.after(() => child.run('subscribe news'));
  expect((await step.next({ event: 'subscribed', topic: 'news', peer: addr })).kind).toBe('peerSubscribed');
  step = await log.after(() => child.run('unsubscribe news'));
  expect((await step.next({ event: 'unsubscribed', topic: 'news', peer: addr })).kind).toBe('peerUnsubscribed');

  // Connections both ways: the child's sender to the observer (listener side: only its topic
  // is known), the observer's sender to the child.
  step = await log.after(() => child.run('send observer_topic hello'));
  await step.next({ event: 'peer-connected', topic: 'peer_topic', peer: '' });
  expect(await inbox.waitCount(1)).toBe(1);
  const hi = await log.after(() => observer.sendTo('peer_topic', 'hi'));
  await hi.next({ event: 'peer-connected', topic: 'peer_topic', peer: addr });
  await child.line('message observer_topic hi');
  // Acknowledged (the sender reads acknowledgements from Redis every second): nothing in flight.
  expect(await waitUntil(() => observer.stats().sendQueueMessages === 0, 5000)).toBe(true);

  // Stops: it leaves the directory, and both connections end.
  step = await log.after(() => child.run('stop'));
  await step.next({ event: 'peer-disconnected', topic: 'peer_topic', peer: addr });
  await step.next({ event: 'peer-disconnected', topic: 'peer_topic', peer: '' });
  expect(log.items.slice(step.mark).filter((x) => x.event === 'route-lost')).toEqual([]); // nothing was in flight

  // Starts again (the same client, maybe another port) and talks again.
  step = await log.after(() => child.run('start'));
  addr = step.result;
  await step.next({ event: 'peer-connected', topic: 'peer_topic', peer: addr });
  await child.run('send observer_topic again');
  expect(await inbox.waitCount(2)).toBe(2);
  observer.sendTo('peer_topic', 'hi again');
  await child.line('message observer_topic hi again');
  expect(await waitUntil(() => observer.stats().sendQueueMessages === 0, 5000)).toBe(true);

  // Killed with a message in flight (frozen first, so that it cannot acknowledge it).
  child.kill('SIGSTOP');
  await sleep(100);
  observer.sendTo('peer_topic', 'in flight');
  await sleep(200);
  const killed = await log.after(() => child.kill('SIGKILL'));
  await child.exited();
  expect((await killed.next({ event: 'route-lost', topic: 'peer_topic', peer: addr })).kind).toBe('routeLost');
  await killed.next({ event: 'peer-disconnected', topic: 'peer_topic', peer: addr });
  await killed.next({ event: 'peer-disconnected', topic: 'peer_topic', peer: '' });
  // The message in flight is kept for it in Redis.
  expect(await waitUntil(async () => (await observer.pendingCount()) === 1, 3000)).toBe(true);
  // Its lease lapses (7 s after its last renewal): it leaves the directory within 10 s, and
  // the observer, which uses the topic, is told.
  const mark = log.mark();
  expect(await waitUntil(async () => !(await observer.listAddresses('peer_topic')).some((a) => a.address === addr),
    10 * SECOND, 250)).toBe(true);
  expect(Date.now() - killed.done).toBeLessThan(10 * SECOND);
  await log.next(mark, { event: 'peer-disconnected', topic: 'peer_topic', peer: addr });
}, 30_000);

test("'status' still carries every event, and a throwing per-kind handler reaches 'error'", async () => {
  const a = mesh.client('a', 'a_topic');
  const b = mesh.client('b', 'b_topic');
  const all: StatusEvent[] = [];
  const errors: unknown[] = [];
  a.on('status', (e) => all.push(e));
  a.on('error', (e) => errors.push(e));
  a.on('peer-connected', () => {
    throw new Error('handler failed');
  });
  await a.start();
  await a.listAddresses('b_topic');
  await b.start();
  expect(await waitUntil(() => all.some((e) => e.kind === 'peerConnected' && e.topic === 'b_topic'), 3000)).toBe(true);
  expect(await waitUntil(() => errors.length > 0, 3000)).toBe(true);
  expect((errors[0] as Error).message).toBe('handler failed');
});

test("'busy' and 'writable' name the peer whose queue filled and drained", async () => {
  const peer = await stalledPeer(mesh.rdb(), 'stalled');
  try {
    const sender = mesh.client('sender', 'sender_topic', { maxSendQueueMessages: 8 });
    const log = new EventLog(sender);
    await sender.start();
    const payload = Buffer.alloc(256 * 1024, 'x');
    // Connected first: a queue that fills while the connection is still being set up (the
    // store is asked what waits offline before the first write) drains into the socket once
    // it is, and says 'writable' before the peer reads anything.
    sender.sendTo('stalled', payload, { atLeastOnce: false });
    await log.next(0, { event: 'peer-connected', topic: 'stalled', peer: peer.address });
    let busy = false;
    for (let i = 0; i < 10_000 && !busy; i++) {
      try {
        sender.sendTo('stalled', payload, { atLeastOnce: false });
      } catch (e) {
        expect((e as { code: string }).code).toBe('BUSY');
        busy = true;
      }
      if (i % 8 === 7) await sleep(5); // let the sender move what fits into the socket
    }
    expect(busy).toBe(true);
    const refused = Date.now();
    const e = await log.next(0, { event: 'busy', topic: 'stalled', peer: peer.address });
    expect(e.kind).toBe('busy');
    expect(e.at - refused).toBeLessThan(SECOND);
    const mark = log.mark();
    peer.resume();
    const resumed = Date.now();
    const w = await log.next(mark, { event: 'writable', topic: 'stalled', peer: peer.address });
    expect(w.at - resumed).toBeLessThan(SECOND);
    await sender.close();
  } finally {
    await peer.close();
  }
});

test("Redis going down under running clients comes as 'error' (LinerStatusError, code STORE) on both sides", async () => {
  await onPrivateRedis(async ({ redis, listener, sender, connect }) => {
    const listenerErrors: LinerStatusError[] = [];
    const senderErrors: LinerStatusError[] = [];
    const senderStatus: StatusEvent[] = [];
    listener.on('error', (e) => listenerErrors.push(e as LinerStatusError));
    sender.on('error', (e) => senderErrors.push(e as LinerStatusError));
    sender.on('status', (e) => senderStatus.push(e));
    const inbox = await connect('before');

    await redis.stop();
    const down = Date.now();
    sender.sendTo('listener_topic', 'after'); // the route is known: it still goes out
    expect(await inbox.waitCount(2)).toBe(2);
    // The listener cannot write the acknowledgement (at most a second later), the sender cannot
    // read it (it polls every second).
    expect(await waitUntil(() => listenerErrors.length > 0, 5000)).toBe(true);
    expect(await waitUntil(() => senderErrors.length > 0, 5000)).toBe(true);
    const [l] = listenerErrors;
    expect(l).toBeInstanceOf(LinerStatusError);
    expect(l).toMatchObject({ code: 'STORE', kind: 'listenerStoreError', topic: 'sender_topic', name: 'LinerStatusError' });
    const [s] = senderErrors;
    expect(s).toMatchObject({ code: 'STORE', kind: 'senderStoreError', topic: 'listener_topic', peer: listener.publishedAddress });
    expect(senderStatus.some((e) => e.kind === 'senderStoreError')).toBe(true);
    expect(Date.now() - down).toBeLessThan(5000);

    // Calls that need Redis reject with STORE meanwhile.
    await expect(sender.listAddresses('listener_topic')).rejects.toMatchObject({ code: 'STORE' });
    await expect(sender.pendingCount()).rejects.toMatchObject({ code: 'STORE' });
  });
});

test("without an 'error' listener a store failure is only a 'status' event (nothing is thrown)", async () => {
  await onPrivateRedis(async ({ redis, listener, sender, connect }) => {
    const heard: StatusEvent[] = [];
    listener.on('status', (e) => heard.push(e));
    await connect('before');
    await redis.stop();
    sender.sendTo('listener_topic', 'after');
    expect(await waitUntil(() => heard.some((e) => e.kind === 'listenerStoreError'), 5000)).toBe(true);
    await sleep(100); // an uncaught exception would fail the test here
  });
});

test("a Redis outage is one 'error' per side, then one 'store-recovered' per side when Redis is back", async () => {
  await onPrivateRedis(async ({ redis, listener, sender, connect }) => {
    const errors = { listener: [] as LinerStatusError[], sender: [] as LinerStatusError[] };
    const recovered = { listener: [] as StatusEvent[], sender: [] as StatusEvent[] };
    listener.on('error', (e) => errors.listener.push(e as LinerStatusError));
    sender.on('error', (e) => errors.sender.push(e as LinerStatusError));
    listener.on('store-recovered', (e) => recovered.listener.push(e));
    sender.on('store-recovered', (e) => recovered.sender.push(e));
    const inbox = await connect('m0');

    await redis.stop();
    let n = 1;
    const downUntil = Date.now() + 3 * SECOND;
    while (Date.now() < downUntil) { // every ack read and write fails meanwhile
      sender.sendTo('listener_topic', `m${n++}`);
      await sleep(20);
    }
    expect(errors.listener.map((e) => e.kind)).toEqual(['listenerStoreError']);
    expect(errors.sender.map((e) => e.kind)).toEqual(['senderStoreError']);
    expect(recovered.listener.length + recovered.sender.length).toBe(0);

    await redis.restart();
    expect(await waitUntil(() => recovered.listener.length === 1 && recovered.sender.length === 1, 10 * SECOND)).toBe(true);
    expect(recovered.listener[0]).toMatchObject({ kind: 'storeRecovered', topic: '', peer: '' });
    expect(recovered.listener[0]!.message).toMatch(/listener: the store answers again/);
    expect(recovered.sender[0]!.message).toMatch(/sender: the store answers again/);
    expect(await inbox.waitCount(n, 10 * SECOND)).toBe(n);
    await sleep(1500);
    expect(errors.listener.length + errors.sender.length).toBe(2);
  });
}, 30_000);
