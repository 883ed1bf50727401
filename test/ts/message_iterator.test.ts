// client.messages(): an async iterator over received messages that ends when the client closes;
// each iterator sees every message; `break` detaches it; a consumer that falls behind holds the
// client back instead of buffering without bound.
import { expect, test } from 'vitest';

import { type Message, sendRetrying, sleep, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

async function pair(receiverOptions = {}) {
  const receiver = mesh.client('receiver', 'receiver_topic', receiverOptions);
  const sender = mesh.client('sender', 'sender_topic');
  await receiver.start();
  await sender.start();
  return { receiver, sender };
}

test('for await gets the messages in order and ends on close', async () => {
  const { receiver, sender } = await pair();
  const got: string[] = [];
  const loop = (async () => {
    for await (const m of receiver.messages()) {
      got.push(m.data.toString());
      if (got.length === 5) void receiver.close();
    }
  })();
  for (let i = 0; i < 5; i++) sender.sendTo('receiver_topic', `m${i}`);
  await loop; // ends because the client closed
  expect(got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
});

test('two iterators both see every message; break detaches one', async () => {
  const { receiver, sender } = await pair();
  const first: string[] = [];
  const second: string[] = [];
  const a = (async () => {
    for await (const m of receiver) {
      first.push(m.data.toString());
      if (first.length === 2) break;
    }
  })();
  const b = (async () => {
    for await (const m of receiver.messages()) second.push(m.data.toString());
  })();
  await sleep(10);
  for (let i = 0; i < 4; i++) sender.sendTo('receiver_topic', `m${i}`);
  await a;
  expect(await waitUntil(() => second.length === 4)).toBe(true);
  expect(first).toEqual(['m0', 'm1']);
  expect(second).toEqual(['m0', 'm1', 'm2', 'm3']);
  await receiver.close();
  await b;
});

test('an iterator made after close ends at once', async () => {
  const { receiver } = await pair();
  await receiver.close();
  const it = receiver.messages();
  expect(await it.next()).toEqual({ value: undefined, done: true });
});

test('a consumer that falls behind holds delivery back', async () => {
  const cap = 64 * 1024;
  const { receiver, sender } = await pair({ maxInFlightBytes: cap });
  const it = receiver.messages();
  const N = 2000;
  const payload = Buffer.alloc(1024, 'x');
  for (let i = 0; i < N; i++) await sendRetrying(sender, 'receiver_topic', payload, { atLeastOnce: false });
  await sleep(300);
  // Not consumed: the client took about one cap's worth and stopped.
  expect(receiver.stats().jsMessages).toBeLessThan(N);
  const got: Message[] = [];
  while (got.length < N) {
    const r = await it.next();
    if (r.done) break;
    got.push(r.value);
  }
  expect(got).toHaveLength(N);
  await it.return!();
});
