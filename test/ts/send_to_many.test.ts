// sendToMany: a batch goes whole and in order to one peer, is checked before anything of it is
// queued, and reports a full queue by how many it queued rather than by throwing BUSY.
import { expect, test } from 'vitest';

import { LinerError, type Message, codeOf, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

async function pair(senderOptions = {}) {
  const receiver = mesh.client('receiver', 'inbox');
  const sender = mesh.client('sender', 'outbox', senderOptions);
  const got: string[] = [];
  receiver.on('message', (m: Message) => got.push(m.data.toString()));
  await receiver.start();
  await sender.start();
  return { sender, receiver, got };
}

test('every kind of payload arrives, in order, as one batch', async () => {
  const { sender, got } = await pair();
  const text = (s: string) => new TextEncoder().encode(s);
  const batch = [
    'string',
    Buffer.from('buffer'),
    text('uint8array'),
    text('arraybuffer').buffer,
    new DataView(text('__dataview__').buffer, 2, 8),
    new Uint8Array(text('xxsubarrayxx').buffer, 2, 8),
    'ünïcödé',
  ];
  expect(sender.sendToMany('inbox', batch)).toBe(batch.length);
  expect(sender.sendToMany('inbox', ['best', 'effort'], { atLeastOnce: false })).toBe(2);
  const want = ['string', 'buffer', 'uint8array', 'arraybuffer', 'dataview', 'subarray', 'ünïcödé', 'best', 'effort'];
  expect(await waitUntil(() => got.length === want.length, 5000)).toBe(true);
  expect(got).toEqual(want);
});

test('sendToMany and sendTo interleave in call order', async () => {
  const { sender, got } = await pair();
  const want: string[] = [];
  for (let i = 0; i < 50; i++) {
    const batch = Array.from({ length: i % 7 }, (_, k) => `b${i}.${k}`);
    expect(sender.sendToMany('inbox', batch)).toBe(batch.length);
    sender.sendTo('inbox', `one${i}`);
    want.push(...batch, `one${i}`);
  }
  expect(await waitUntil(() => got.length === want.length, 5000)).toBe(true);
  expect(got).toEqual(want);
});

test('a bad message anywhere refuses the whole batch, naming it', async () => {
  const { sender, got } = await pair({ maxMessageSize: 1024 });
  const bad: [unknown, RegExp][] = [
    [Buffer.alloc(0), /message 2: data_size empty/],
    ['', /message 2: data_size empty/],
    [42, /messages\[2\] must be a string/],
    [null, /messages\[2\] must be a string/],
    [Buffer.alloc(1025), /message 2: .*exceeds the maximum message size of 1024/],
  ];
  for (const [payload, message] of bad) {
    let error: unknown;
    try {
      sender.sendToMany('inbox', ['ok0', 'ok1', payload as string, 'ok3']);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LinerError);
    expect((error as LinerError).code).toBe('INVALID_ARGUMENT');
    expect((error as LinerError).message).toMatch(message);
  }
  // An array whose element getter throws: that error, and nothing queued.
  const tricky = ['ok0', 'ok1'];
  Object.defineProperty(tricky, 1, {
    get() {
      throw new Error('getter says no');
    },
  });
  expect(() => sender.sendToMany('inbox', tricky)).toThrow('getter says no');
  expect(sender.sendToMany('inbox', ['after'])).toBe(1);
  expect(await waitUntil(() => got.length === 1, 5000)).toBe(true);
  await new Promise((r) => setTimeout(r, 100));
  expect(got).toEqual(['after']); // nothing of the refused batches
});

test('a full queue stops the batch part-way: the count says where, drain() says when', async () => {
  // At-least-once messages stay counted until the receiver acknowledges them, and one call
  // holds the queue for its whole batch: the first call queues exactly the cap.
  const { sender, got } = await pair({ maxSendQueueMessages: 32 });
  const busy: string[] = [];
  sender.on('busy', (e) => busy.push(e.peer));
  const all = Array.from({ length: 100 }, (_, i) => `m${i}`);
  const first = sender.sendToMany('inbox', all);
  expect(first).toBe(32);
  let sent = first;
  let calls = 1;
  while (sent < all.length) {
    await sender.drain();
    sent += sender.sendToMany('inbox', all.slice(sent));
    calls++;
  }
  expect(calls).toBeGreaterThan(1);
  expect(await waitUntil(() => got.length === all.length, 10000)).toBe(true);
  expect(got).toEqual(all);
  expect(busy.length).toBeGreaterThan(0);
});

test('errors that refuse everything throw; an empty batch queues nothing', async () => {
  const { sender } = await pair();
  expect(sender.sendToMany('inbox', [])).toBe(0);
  expect(await sender.refreshAddressTopic('nobody_serves_this')).toBe(false);
  expect(codeOf(() => sender.sendToMany('nobody_serves_this', ['x'], { atLeastOnce: false }))).toBe('NO_ADDRESS');
  expect(codeOf(() => sender.sendToMany('outbox', ['x']))).toBe('SELF_TOPIC');
  expect(codeOf(() => sender.sendToMany('', ['x']))).toBe('INVALID_ARGUMENT');
  expect(codeOf(() => sender.sendToMany('inbox', 'not an array' as unknown as string[]))).toBe('INVALID_ARGUMENT');
  const idle = mesh.client('idle', 'idle_topic');
  expect(codeOf(() => idle.sendToMany('inbox', ['x']))).toBe('NOT_RUNNING');
});

test('round-robin picks one replica per batch, and each gets its batch whole', async () => {
  const replicas = [mesh.client('r0', 'work'), mesh.client('r1', 'work')];
  const got: string[][] = [[], []];
  replicas.forEach((r, i) => r.on('message', (m: Message) => got[i]!.push(m.data.toString())));
  for (const r of replicas) await r.start();
  const sender = mesh.client('sender', 'outbox');
  await sender.start();
  const batches = [0, 1, 2, 3].map((b) => Array.from({ length: 20 }, (_, k) => `b${b}.${k}`));
  for (const batch of batches) expect(sender.sendToMany('work', batch)).toBe(20);
  expect(await waitUntil(() => got[0]!.length + got[1]!.length === 80, 5000)).toBe(true);
  // Each replica holds whole batches, each in order, and both got some.
  for (const mine of got) {
    expect(mine.length % 20).toBe(0);
    expect(mine.length).toBeGreaterThan(0);
    for (let i = 0; i < mine.length; i += 20) {
      const b = mine[i]!.slice(1, mine[i]!.indexOf('.'));
      expect(mine.slice(i, i + 20)).toEqual(batches[Number(b)]);
    }
  }
});
