// Two peers exchange messages both ways: `to`/`from` are right and payloads of 1 B, 1 KiB,
// 1 MiB, 1 MiB + 1 (zstd on the wire) and 16 MiB arrive byte-identical, from every payload type.
import { randomBytes } from 'node:crypto';

import { expect, test } from 'vitest';

import { Inbox, useMesh, sendRetrying } from './support/testkit.js';

const mesh = useMesh();

test('messages flow both ways with the right to and from', async () => {
  const a = mesh.client('client_a', 'topic_a');
  const b = mesh.client('client_b', 'topic_b');
  const inboxA = new Inbox(a);
  const inboxB = new Inbox(b);
  await a.start();
  await b.start();
  expect(a.address).toMatch(/^127\.0\.0\.1:\d+$/);

  a.sendTo('topic_b', 'hello b');
  b.sendTo('topic_a', Buffer.from('hello a'));
  expect(await inboxB.waitCount(1)).toBe(1);
  expect(await inboxA.waitCount(1)).toBe(1);
  expect(inboxB.items).toEqual([{ to: 'topic_b', from: 'topic_a', data: Buffer.from('hello b') }]);
  expect(inboxA.items).toEqual([{ to: 'topic_a', from: 'topic_b', data: Buffer.from('hello a') }]);
});

test('payloads of every size arrive byte-identical', async () => {
  const a = mesh.client('client_a', 'topic_a');
  const b = mesh.client('client_b', 'topic_b');
  const inbox = new Inbox(b);
  await a.start();
  await b.start();
  const sizes = [1, 1024, 1 << 20, (1 << 20) + 1, 16 << 20];
  const payloads = sizes.map((n) => randomBytes(n));
  // 18 MiB in one go is more than a send queue holds (8 MiB): BUSY, then drain() and again.
  for (const p of payloads) await sendRetrying(a, 'topic_b', p);
  expect(await inbox.waitCount(sizes.length, 20_000)).toBe(sizes.length);
  expect(inbox.items.map((m) => m.data.length)).toEqual(sizes);
  for (let i = 0; i < sizes.length; i++) expect(inbox.items[i]!.data.equals(payloads[i]!)).toBe(true);
});

test('strings, Uint8Arrays, other views and ArrayBuffers are sent as their bytes', async () => {
  const a = mesh.client('client_a', 'topic_a');
  const b = mesh.client('client_b', 'topic_b');
  const inbox = new Inbox(b);
  await a.start();
  await b.start();
  const bytes = new Uint8Array([1, 2, 3, 4]);
  a.sendTo('topic_b', 'héllo');
  a.sendTo('topic_b', bytes);
  a.sendTo('topic_b', new Uint16Array([0x0201, 0x0403]));
  a.sendTo('topic_b', new DataView(bytes.buffer, 1, 2));
  a.sendTo('topic_b', bytes.buffer);
  a.sendTo('topic_b', 'best effort', { atLeastOnce: false });
  expect(await inbox.waitCount(6)).toBe(6);
  expect(inbox.items.map((m) => [...m.data])).toEqual([
    [...Buffer.from('héllo')],
    [1, 2, 3, 4],
    [1, 2, 3, 4],
    [2, 3],
    [1, 2, 3, 4],
    [...Buffer.from('best effort')],
  ]);
});
