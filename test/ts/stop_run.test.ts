// stop() then start() with the same client: the client leaves the directory and comes back,
// traffic resumes, and at-least-once traffic loses nothing and delivers nothing twice, whether
// the listener or the sender stops. stop() is idempotent and ordered with start().
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import {
  type Client,
  Inbox,
  SeqChecker,
  expectExactlyOnceInOrder,
  pumpNumbered,
  redisUrl,
  seqPayload,
  useMesh,
  waitUntil,
} from './support/testkit.js';

const mesh = useMesh();
const PHASE_MS = 400;

/** Numbered at-least-once messages for `ms`, bursts of 20, 2 ms apart; returns the next number. */
const pump = (client: Client, first: number, ms: number): Promise<number> =>
  pumpNumbered(client, 'listener_topic', first, ms, 20, 2);

test('stop() leaves the directory, start() comes back; isRunning and the addresses follow', async () => {
  const c = mesh.client('peer', 'peer_topic');
  const rdb = mesh.rdb();
  expect(c.isRunning).toBe(false);
  await expect(c.stop()).resolves.toBeUndefined(); // not running: at once
  await c.subscribe('news');
  await c.start();
  expect(c.isRunning).toBe(true);
  expect(c.running).toBe(true);
  const first = c.publishedAddress;
  expect(first).toBe(c.boundAddress);
  expect(await rdb.hgetall('lnr_topic:peer_topic:addr')).toEqual({ [first]: 'peer' });
  expect(await rdb.hgetall('lnr_topic:news:addr')).toEqual({ [first]: 'peer' });

  const stopping = c.stop();
  expect(c.stop()).toBe(stopping); // idempotent while it stops
  expect(c.isRunning).toBe(false);
  await stopping;
  expect(c.isRunning).toBe(false);
  expect(c.closed).toBe(false);
  expect(c.publishedAddress).toBe('');
  expect(c.boundAddress).toBe(first); // the address of the last run
  expect(await rdb.hgetall('lnr_topic:peer_topic:addr')).toEqual({});
  expect(await rdb.hgetall('lnr_topic:news:addr')).toEqual({});
  await c.stop(); // again: nothing to do

  // Stopped: like before the first start.
  expect(() => c.sendTo('other', 'x')).toThrow(expect.objectContaining({ code: 'NOT_RUNNING' }));
  await c.clearStoredMessages(); // allowed while not running

  await c.start();
  expect(c.isRunning).toBe(true);
  const second = c.publishedAddress;
  expect(await rdb.hgetall('lnr_topic:peer_topic:addr')).toEqual({ [second]: 'peer' });
  expect(await rdb.hgetall('lnr_topic:news:addr')).toEqual({ [second]: 'peer' }); // subscriptions kept
  await expect(c.clearStoredMessages()).rejects.toMatchObject({ code: 'CLEAR_WHILE_RUNNING' });
});

test('stop() during start() stops once started; start() during stop() starts once stopped', async () => {
  const c = mesh.client('peer', 'peer_topic');
  const starting = c.start();
  const stopping = c.stop();
  await starting;
  await stopping;
  expect(c.isRunning).toBe(false);
  expect(await mesh.rdb().hgetall('lnr_topic:peer_topic:addr')).toEqual({});

  await c.start();
  const stopped = c.stop();
  const restarted = c.start();
  expect(c.start()).toBe(restarted);
  await stopped;
  await restarted;
  expect(c.isRunning).toBe(true);
  expect(await mesh.rdb().hgetall('lnr_topic:peer_topic:addr')).toEqual({ [c.publishedAddress]: 'peer' });

  // The last call wins: stop, start, stop.
  const s1 = c.stop();
  const s2 = c.start();
  const s3 = c.stop();
  await Promise.all([s1, s2, s3]);
  expect(c.isRunning).toBe(false);
});

test('stop() and start() on a closed client: stop resolves, start rejects with CLOSED', async () => {
  const c = mesh.client('peer', 'peer_topic');
  await c.start();
  await c.close();
  await expect(c.stop()).resolves.toBeUndefined();
  await expect(c.start()).rejects.toMatchObject({ code: 'CLOSED' });
  // close() during a stop waits for it, then releases the client.
  const d = mesh.client('peer2', 'peer2_topic');
  await d.start();
  const stopping = d.stop();
  await d.close();
  await stopping;
  expect(d.closed).toBe(true);
});

test('traffic resumes after the listener stops and starts again: nothing lost, nothing twice', async () => {
  const checker = new SeqChecker(['listener_topic', 'sender_topic']);
  const { listener, sender } = await mesh.listenerAndSender(checker.push);

  let seq = await pump(sender, 1, PHASE_MS);
  await listener.stop();
  seq = await pump(sender, seq, PHASE_MS); // stored in Redis meanwhile
  expect(await waitUntil(async () => (await sender.pendingCount()) > 0, 3000)).toBe(true);
  await listener.start(); // port 0: maybe another port; the sender follows
  seq = await pump(sender, seq, PHASE_MS);
  await expectExactlyOnceInOrder(checker, seq - 1);
  expect(await waitUntil(async () => (await sender.pendingCount()) === 0, 5000)).toBe(true);
});

test('traffic resumes after the sender stops and starts again: nothing lost, nothing twice', async () => {
  const checker = new SeqChecker(['listener_topic', 'sender_topic']);
  const { listener, sender } = await mesh.listenerAndSender(checker.push);

  let seq = await pump(sender, 1, PHASE_MS);
  await sender.stop();
  expect(() => sender.sendTo('listener_topic', 'x')).toThrow(expect.objectContaining({ code: 'NOT_RUNNING' }));
  await sender.start();
  seq = await pump(sender, seq, PHASE_MS);
  // Both at once, twice.
  for (let round = 0; round < 2; round++) {
    await Promise.all([sender.stop(), listener.stop()]);
    await Promise.all([listener.start(), sender.start()]);
    // The listener may be on another port now; refreshing is allowed, not needed (see below).
    expect(await sender.refreshAddressTopic('listener_topic')).toBe(true);
    seq = await pump(sender, seq, PHASE_MS / 2);
  }
  await expectExactlyOnceInOrder(checker, seq - 1);
});

// stop() empties the route cache; the first send after start() must read the route again, not
// throw NO_ADDRESS until the directory watch's next tick.
test('a restarted sender finds a listener that moved while it was stopped at once', async () => {
  const inbox = new Inbox();
  const { listener, sender } = await mesh.listenerAndSender(inbox.push);
  sender.sendTo('listener_topic', 'first');
  expect(await inbox.waitCount(1)).toBe(1);
  await sender.stop();
  const before = listener.publishedAddress;
  await listener.stop();
  await listener.start();
  expect(listener.publishedAddress).not.toBe(before);
  await sender.start();
  sender.sendTo('listener_topic', 'second');
  expect(await inbox.waitCount(2)).toBe(2);
});

test('stop() from a message handler, then start() again', async () => {
  const listener = mesh.client('listener', 'listener_topic');
  let stopping: Promise<void> | undefined;
  const inbox = new Inbox(listener);
  listener.on('message', () => {
    stopping ??= listener.stop();
  });
  await listener.start();
  const sender = mesh.client('sender', 'sender_topic');
  await sender.start();
  sender.sendTo('listener_topic', 'stop now');
  expect(await waitUntil(() => stopping !== undefined, 3000)).toBe(true);
  await stopping;
  expect(listener.isRunning).toBe(false);
  sender.sendTo('listener_topic', 'while stopped'); // stored for it
  await listener.start();
  expect(await inbox.waitCount(2)).toBe(2);
  expect(inbox.payloads()).toEqual(['stop now', 'while stopped']);
});

test('messages that arrived before stop() reach a listener added while stopped', async () => {
  const { listener, sender } = await mesh.listenerAndSender();
  for (let i = 1; i <= 10; i++) sender.sendTo('listener_topic', seqPayload(i));
  // Delivered to the client (not taken by JS: nobody listens), then acknowledged.
  expect(await waitUntil(() => listener.stats().jsMessages === 10, 5000)).toBe(true);
  await listener.stop();
  const inbox = new Inbox(listener);
  expect(await inbox.waitCount(10)).toBe(10);
  await listener.start();
  sender.sendTo('listener_topic', seqPayload(11));
  expect(await inbox.waitCount(11)).toBe(11);
});

test('a stopped client does not keep the process alive, ref() or not', () => {
  const script = `
    import { Client } from ${JSON.stringify(path.resolve(__dirname, '../../dist/index.mjs'))};
    const c = new Client({ name: 'stopper', topic: 'stopper_topic', redis: ${JSON.stringify(redisUrl)} });
    await c.start();
    await c.stop();
    c.unref();
    await c.start();
    await c.stop();
    c.ref();
    console.log('stopped');
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 15_000 });
  expect(r.stdout.trim()).toBe('stopped');
  expect(r.status).toBe(0);
});

// A sender that starts while a listener it has stored messages for is offline must deliver them
// when the listener comes back (its directory join), without a new send.
test('a restarted sender delivers what waits for a listener that comes back later, without a new send', async () => {
  const inbox = new Inbox();
  const { listener, sender } = await mesh.listenerAndSender(inbox.push);
  sender.sendTo('listener_topic', 'warm-up');
  expect(await inbox.waitCount(1)).toBe(1);
  await listener.stop();
  for (let i = 0; i < 3; i++) sender.sendTo('listener_topic', `offline ${i}`);
  expect(await waitUntil(async () => (await sender.pendingCount()) === 3, 5000)).toBe(true);
  await sender.stop();
  await sender.start();
  await listener.start();
  expect(await inbox.waitCount(4, 3000)).toBe(4);
});
