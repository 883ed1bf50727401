// Delivery into JS: messages cross threads in batches (one wake-up for many messages, each
// batch one Buffer sliced per message), a per-turn budget keeps timers and I/O running during a
// large delivery, a cap on bytes waiting for JS pushes back on a slow handler, and messages wait
// while nobody listens.
import { expect, test } from 'vitest';

import { Inbox, type Message, sendRetrying, sleep, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

async function pair(receiverOptions = {}) {
  const receiver = mesh.client('receiver', 'receiver_topic', receiverOptions);
  const sender = mesh.client('sender', 'sender_topic');
  return { receiver, sender };
}

test('many messages per wake-up, sliced from shared batch buffers', async () => {
  const { receiver, sender } = await pair();
  const messages: Message[] = [];
  receiver.on('message', (m) => messages.push(m));
  await receiver.start();
  await sender.start();
  const N = 100_000;
  for (let i = 0; i < N; i++) await sendRetrying(sender, 'receiver_topic', `message ${i}`);
  expect(await waitUntil(() => messages.length === N, 20_000)).toBe(true);
  const stats = receiver.stats();
  expect(stats.jsMessages).toBe(N);
  expect(stats.jsWakeups).toBeLessThan(N / 50);
  expect(stats.jsBatches).toBeLessThan(N / 50);
  // Neighbours share their batch's memory: no copy per message.
  const buffers = new Set(messages.map((m) => m.data.buffer));
  expect(buffers.size).toBeLessThanOrEqual(stats.jsBatches);
  expect(messages[N - 1]!.data.toString()).toBe(`message ${N - 1}`);
});

test('timers run while a large backlog is delivered', async () => {
  const { receiver, sender } = await pair({ deliveryBudgetBytes: 64 * 1024 });
  let seen = 0;
  let seenWhenTimerFired = -1;
  receiver.on('message', () => {
    if (seen++ === 0) setTimeout(() => (seenWhenTimerFired = seen), 0);
  });
  await receiver.start();
  await sender.start();
  const N = 20_000;
  const payload = Buffer.alloc(1024, 'x');
  // Queue them all before the receiver's JS gets a chance to run.
  for (let i = 0; i < N; i++) await sendRetrying(sender, 'receiver_topic', payload);
  expect(await waitUntil(() => seen === N, 20_000)).toBe(true);
  expect(seenWhenTimerFired).toBeGreaterThan(0);
  expect(seenWhenTimerFired).toBeLessThan(N);
});

test('a slow handler makes the core wait instead of queueing without bound', async () => {
  const cap = 64 * 1024;
  const { receiver, sender } = await pair({ maxInFlightBytes: cap });
  let seen = 0;
  receiver.on('message', () => {
    seen++;
    const until = performance.now() + 0.05;
    while (performance.now() < until);
  });
  await receiver.start();
  await sender.start();
  const N = 5000;
  const payload = Buffer.alloc(1024, 'x');
  for (let i = 0; i < N; i++) await sendRetrying(sender, 'receiver_topic', payload);
  expect(await waitUntil(() => seen === N, 30_000)).toBe(true);
  const stats = receiver.stats();
  expect(stats.jsMaxPendingBytes).toBeLessThanOrEqual(cap);
  expect(stats.jsBlocked).toBeGreaterThan(0);
});

test('messages wait while nobody listens', async () => {
  const { receiver, sender } = await pair();
  await receiver.start();
  await sender.start();
  for (let i = 0; i < 10; i++) sender.sendTo('receiver_topic', `m${i}`);
  await waitUntil(() => receiver.stats().jsMessages === 10);
  await sleep(100);
  const inbox = new Inbox(receiver);
  expect(await inbox.waitCount(10)).toBe(10);
  expect(inbox.payloads()).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
});

test('a throwing handler reaches the error event and delivery goes on', async () => {
  const { receiver, sender } = await pair();
  const errors: unknown[] = [];
  let seen = 0;
  receiver.on('error', (e) => errors.push(e));
  receiver.on('message', (m) => {
    seen++;
    if (m.data.toString() === 'bad') throw new Error('handler failed');
  });
  await receiver.start();
  await sender.start();
  for (const text of ['a', 'bad', 'b']) sender.sendTo('receiver_topic', text);
  expect(await waitUntil(() => seen === 3)).toBe(true);
  expect(errors).toHaveLength(1);
  expect((errors[0] as Error).message).toBe('handler failed');
});
