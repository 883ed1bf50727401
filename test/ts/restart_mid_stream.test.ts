// A sender or a listener closed and re-created (same identity) within a second of at-least-once
// traffic loses nothing, delivers nothing twice and keeps the order.
import { expect, test } from 'vitest';

import { type Client, SeqChecker, freePort, seqPayload, sendRetrying, sleep, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();
const PHASE_MS = 500;
const CK_KEY = 'lnr_connection:sender:sender_topic:listener:key';

/** Sends numbered at-least-once messages for `ms` (bursts of 50, 1 ms apart); returns the next number. */
async function pump(client: Client, first: number, ms: number): Promise<number> {
  let seq = first;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    for (let i = 0; i < 50; i++) await sendRetrying(client, 'listener_topic', seqPayload(seq++));
    await sleep(1);
  }
  return seq;
}

async function expectExactlyOnceInOrder(checker: SeqChecker, last: number): Promise<void> {
  await waitUntil(() => checker.count >= last, 20_000);
  await sleep(1000); // a duplicate would show up here
  const seen = new Set(checker.seen);
  const missing = [];
  for (let i = 1; i <= last && missing.length < 10; i++) if (!seen.has(i)) missing.push(i);
  expect(missing, 'lost messages').toEqual([]);
  expect(checker.count, 'deliveries').toBe(last);
  expect(checker.errors, 'order').toEqual([]);
  expect(checker.badMeta).toEqual([]);
  const rdb = mesh.rdb();
  const ck = await rdb.get(CK_KEY);
  expect(await waitUntil(async () => (await rdb.llen(`lnr_connection:${ck}:messages`)) === 0, 3000)).toBe(true);
}

test('a sender restart mid-stream loses and doubles nothing', async () => {
  const checker = new SeqChecker(['listener_topic', 'sender_topic']);
  const listener = mesh.client('listener', 'listener_topic');
  listener.on('message', checker.push);
  await listener.start();

  let sender = mesh.client('sender', 'sender_topic');
  await sender.start();
  let seq = await pump(sender, 1, PHASE_MS);
  await sender.close();

  sender = mesh.client('sender', 'sender_topic');
  await sender.start();
  seq = await pump(sender, seq, PHASE_MS);
  await expectExactlyOnceInOrder(checker, seq - 1);
});

test('a listener restart mid-stream loses and doubles nothing', async () => {
  const addr = `127.0.0.1:${await freePort()}`;
  const checker = new SeqChecker(['listener_topic', 'sender_topic']);
  let listener = mesh.client('listener', 'listener_topic', { listen: addr });
  listener.on('message', checker.push);
  await listener.start();

  const sender = mesh.client('sender', 'sender_topic');
  await sender.start();
  let seq = await pump(sender, 1, PHASE_MS);
  await listener.close();
  seq = await pump(sender, seq, 100); // while nobody listens

  listener = mesh.client('listener', 'listener_topic', { listen: addr });
  listener.on('message', checker.push);
  await listener.start();
  expect(listener.address).toBe(addr);
  seq = await pump(sender, seq, PHASE_MS);
  await expectExactlyOnceInOrder(checker, seq - 1);
});

test('both restarting mid-stream lose and double nothing', async () => {
  const addr = `127.0.0.1:${await freePort()}`;
  const checker = new SeqChecker();
  let listener = mesh.client('listener', 'listener_topic', { listen: addr });
  listener.on('message', checker.push);
  await listener.start();
  let sender = mesh.client('sender', 'sender_topic');
  await sender.start();
  let seq = await pump(sender, 1, PHASE_MS);
  await listener.close();
  seq = await pump(sender, seq, 100);
  await sender.close();

  sender = mesh.client('sender', 'sender_topic');
  await sender.start();
  listener = mesh.client('listener', 'listener_topic', { listen: addr });
  listener.on('message', checker.push);
  await listener.start();
  seq = await pump(sender, seq, PHASE_MS);
  await expectExactlyOnceInOrder(checker, seq - 1);
});
