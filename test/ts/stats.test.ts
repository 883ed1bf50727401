// client.stats(): every ClientStats field, always present as a number; the core's counters add
// up over stop()/start() and survive close(); sent, delivered, persisted, reloaded, dropped,
// duplicates, reconnects and the queue depths move when they should.
import * as net from 'node:net';

import { expect, test } from 'vitest';

import { type Client, Inbox, freePort, sleep, stalledPeer, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();
const CK_KEY = 'lnr_connection:sender:sender_topic:listener:key';
const FIELDS = [
  'messagesSent',
  'bytesSent',
  'messagesDelivered',
  'bytesDelivered',
  'duplicates',
  'persisted',
  'reloaded',
  'dropped',
  'reconnects',
  'sendQueueMessages',
  'sendQueueBytes',
  'receiveQueueBytes',
  'jsMessages',
  'jsBytes',
  'jsBatches',
  'jsWakeups',
  'jsBlocked',
  'jsDropped',
  'jsEventsDropped',
  'jsPendingBytes',
  'jsMaxPendingBytes',
].sort();

function expectWellFormed(c: Client): void {
  const s = c.stats();
  expect(Object.keys(s).sort()).toEqual(FIELDS);
  for (const [k, v] of Object.entries(s)) expect(Number.isSafeInteger(v) && v >= 0, `${k} = ${v}`).toBe(true);
}

test('every field is a number from the start, zero before the first start', async () => {
  const c = mesh.client('c', 'c_topic');
  expectWellFormed(c);
  expect(Object.values(c.stats()).every((v) => v === 0)).toBe(true);
  await c.start();
  expectWellFormed(c);
  await c.stop();
  expectWellFormed(c);
  await c.close();
  expectWellFormed(c);
});

test('sent and delivered, in messages and bytes, on both sides; they add up over stop/start and survive close', async () => {
  const inbox = new Inbox();
  const { listener, sender } = await mesh.listenerAndSender(inbox.push);
  for (let i = 0; i < 10; i++) sender.sendTo('listener_topic', Buffer.alloc(100, i));
  expect(await inbox.waitCount(10)).toBe(10);
  let s = sender.stats();
  expect(s.messagesSent).toBe(10);
  expect(s.bytesSent).toBeGreaterThanOrEqual(10 * 100); // with the frame headers
  let l = listener.stats();
  expect(l.messagesDelivered).toBe(10);
  expect(l.bytesDelivered).toBe(1000);
  expect(l.jsMessages).toBe(10);
  expect(l.jsBytes).toBe(1000);
  expect(l.jsBatches).toBeGreaterThan(0);
  expect(l.jsWakeups).toBeGreaterThan(0);
  expect(l.duplicates).toBe(0);

  await sender.stop();
  await listener.stop();
  expect(sender.stats().messagesSent).toBe(10); // kept while stopped
  expect(listener.stats().messagesDelivered).toBe(10);
  expect(sender.stats().sendQueueMessages).toBe(0);
  await listener.start();
  await sender.start();
  expect(await sender.refreshAddressTopic('listener_topic')).toBe(true);
  for (let i = 0; i < 5; i++) sender.sendTo('listener_topic', Buffer.alloc(100, i));
  expect(await inbox.waitCount(15)).toBe(15);
  s = sender.stats();
  expect(s.messagesSent).toBe(15); // added to the first run's
  l = listener.stats();
  expect(l.messagesDelivered).toBe(15);
  expect(l.bytesDelivered).toBe(1500);

  await sender.close();
  await listener.close();
  expect(sender.stats().messagesSent).toBe(15);
  expect(listener.stats().messagesDelivered).toBe(15);
});

test('persisted, reloaded, reconnects and duplicates around a listener that goes away and comes back', async () => {
  const addr = `127.0.0.1:${await freePort()}`;
  let listener = mesh.client('listener', 'listener_topic', { listen: addr });
  let inbox = new Inbox(listener);
  await listener.start();
  const sender = mesh.client('sender', 'sender_topic');
  await sender.start();
  sender.sendTo('listener_topic', 'warm-up');
  expect(await inbox.waitCount(1)).toBe(1);

  await listener.close();
  for (let i = 0; i < 5; i++) sender.sendTo('listener_topic', `stored ${i}`);
  expect(await waitUntil(() => sender.stats().persisted === 5, 5000)).toBe(true);
  const rdb = mesh.rdb();
  const frames = await rdb.lrange(`lnr_connection:${await rdb.get(CK_KEY)}:messages`);
  expect(frames).toHaveLength(5);

  listener = mesh.client('listener', 'listener_topic', { listen: addr });
  inbox = new Inbox(listener);
  await listener.start();
  expect(await inbox.waitCount(5)).toBe(5);
  const s = sender.stats();
  expect(s.reloaded).toBe(5);
  expect(s.reconnects).toBeGreaterThanOrEqual(1);
  expect(s.persisted).toBe(5);

  // A stored frame played again on a raw connection: dropped as a duplicate.
  const raw = net.connect(Number(addr.split(':')[1]), '127.0.0.1');
  await new Promise((r) => raw.once('connect', r));
  raw.write(frames[0]!);
  expect(await waitUntil(() => listener.stats().duplicates === 1, 3000)).toBe(true);
  raw.destroy();
  await sleep(100);
  expect(inbox.length).toBe(5);
});

test('dropped: best-effort messages to a peer that cannot be reached', async () => {
  const deadPort = await freePort(); // nobody listens there
  await mesh.rdb().cmd('HSET', 'lnr_topic:dead:addr', `127.0.0.1:${deadPort}`, 'dead_peer');
  const sender = mesh.client('sender', 'sender_topic');
  await sender.start();
  sender.sendTo('dead', 'first', { atLeastOnce: false }); // opens the channel; the connect fails
  expect(await waitUntil(() => sender.stats().dropped >= 1, 3000)).toBe(true);
  sender.sendTo('dead', 'second', { atLeastOnce: false });
  expect(await waitUntil(() => sender.stats().dropped >= 2, 3000)).toBe(true);
  expect(sender.stats().messagesSent).toBe(0);
});

test('queue depths: what waits for a peer that does not read', async () => {
  const peer = await stalledPeer(mesh.rdb(), 'stalled');
  try {
    const sender = mesh.client('sender', 'sender_topic', { maxSendQueueMessages: 8 });
    await sender.start();
    const payload = Buffer.alloc(256 * 1024, 's');
    // Until BUSY, and again until the queue stays full (once the kernel's buffers are full too).
    for (let round = 0; round < 100 && sender.stats().sendQueueMessages < 8; round++) {
      for (let i = 0; i < 10_000; i++) {
        try {
          sender.sendTo('stalled', payload, { atLeastOnce: false });
        } catch {
          break; // BUSY: the queue holds 8
        }
        if (i % 8 === 7) await sleep(5);
      }
      await sleep(50);
    }
    const s = sender.stats();
    expect(s.sendQueueMessages).toBe(8);
    expect(s.sendQueueBytes).toBeGreaterThanOrEqual(8 * payload.length);
    expect(s.receiveQueueBytes).toBe(0);
    peer.resume();
    expect(await waitUntil(() => sender.stats().sendQueueMessages === 0, 5000)).toBe(true);
    expect(sender.stats().sendQueueBytes).toBe(0);
    await sender.close();
  } finally {
    await peer.close();
  }
});
