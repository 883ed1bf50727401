// close(): idempotent, safe from inside the client's own message handler (also while delivery is
// held back by the in-flight cap), usable through `await using`, and it hands over every message
// the client acknowledged before it resolves.
import { expect, test } from 'vitest';

import { Client, Inbox, redisUrl, sendRetrying, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

test('close is idempotent and emits close once', async () => {
  const c = mesh.client('c', 'c_topic');
  let closes = 0;
  c.on('close', () => closes++);
  await c.start();
  const first = c.close();
  expect(c.close()).toBe(first);
  await first;
  await c.close();
  expect(closes).toBe(1);
  expect(c.closed).toBe(true);
  expect(c.running).toBe(false);
});

test('close before start touches nothing', async () => {
  const c = mesh.client('c', 'c_topic');
  await c.close();
  expect(await mesh.rdb().keys()).toEqual([]);
  // Opened (by subscribe) but never started.
  const d = mesh.client('d', 'd_topic');
  await d.subscribe('news');
  await d.close();
  expect(await mesh.rdb().keys()).toEqual([]);
});

test('close while starting stops the client once it started', async () => {
  const c = mesh.client('c', 'c_topic');
  const started = c.start();
  const closed = c.close();
  await started;
  await closed;
  expect(await mesh.rdb().hgetall('lnr_topic:c_topic:addr')).toEqual({});
});

test('closing a client from inside its own message handler', async () => {
  const receiver = mesh.client('receiver', 'receiver_topic');
  const sender = mesh.client('sender', 'sender_topic');
  let seen = 0;
  let closedFromHandler: Promise<void> | undefined;
  receiver.on('message', () => {
    seen++;
    closedFromHandler ??= receiver.close();
  });
  await receiver.start();
  await sender.start();
  for (let i = 0; i < 1000; i++) sender.sendTo('receiver_topic', `m${i}`);
  expect(await waitUntil(() => closedFromHandler !== undefined)).toBe(true);
  await closedFromHandler;
  expect(receiver.closed).toBe(true);
  expect(seen).toBeGreaterThanOrEqual(1);
});

test('closing from the handler while the in-flight cap holds delivery back does not deadlock', async () => {
  const receiver = mesh.client('receiver', 'receiver_topic', { maxInFlightBytes: 4096 });
  const sender = mesh.client('sender', 'sender_topic');
  let closing: Promise<void> | undefined;
  let seen = 0;
  receiver.on('message', () => {
    seen++;
    // Slow handler: the core blocks on the cap meanwhile.
    const until = Date.now() + 1;
    while (Date.now() < until);
    if (seen === 20) closing = receiver.close();
  });
  await receiver.start();
  await sender.start();
  const payload = Buffer.alloc(1024, 'x');
  for (let i = 0; i < 2000; i++) await sendRetrying(sender, 'receiver_topic', payload, { atLeastOnce: false });
  expect(await waitUntil(() => closing !== undefined, 10_000)).toBe(true);
  const started = Date.now();
  await closing;
  expect(Date.now() - started).toBeLessThan(10_000);
});

test('every message the client acknowledged reaches the handlers before close resolves', async () => {
  const receiver = mesh.client('receiver', 'receiver_topic');
  const sender = mesh.client('sender', 'sender_topic');
  const inbox = new Inbox(receiver);
  await receiver.start();
  await sender.start();
  const N = 20_000;
  for (let i = 0; i < N; i++) await sendRetrying(sender, 'receiver_topic', `m${i}`);
  await sender.close(); // flushed: everything was acknowledged by the receiver's core
  await receiver.close();
  expect(inbox.length).toBe(N);
});

test('await using closes the client at the end of the block', async () => {
  let outer: Client | undefined;
  {
    await using c = new Client({ name: 'scoped', topic: 'scoped_topic', redis: redisUrl });
    await c.start();
    outer = c;
    expect(c.running).toBe(true);
  }
  expect(outer.closed).toBe(true);
  expect(await mesh.rdb().hgetall('lnr_topic:scoped_topic:addr')).toEqual({});
});
