// A sender or a listener closed and re-created (same identity) within a second of at-least-once
// traffic loses nothing, delivers nothing twice and keeps the order.
import { expect, test } from 'vitest';

import {
  type Client,
  SeqChecker,
  expectExactlyOnceInOrder,
  freePort,
  pumpNumbered,
  useMesh,
  waitUntil,
} from './support/testkit.js';

const mesh = useMesh();
const PHASE_MS = 500;
const CK_KEY = 'lnr_connection:sender:sender_topic:listener:key';

/** Numbered at-least-once messages for `ms`, bursts of 50, 1 ms apart; returns the next number. */
const pump = (client: Client, first: number, ms: number): Promise<number> =>
  pumpNumbered(client, 'listener_topic', first, ms, 50, 1);

/** Exactly once and in order, and nothing left in the channel's offline queue. */
async function expectExactlyOnceAndDrained(checker: SeqChecker, last: number): Promise<void> {
  await expectExactlyOnceInOrder(checker, last);
  const rdb = mesh.rdb();
  const ck = await rdb.get(CK_KEY);
  expect(await waitUntil(async () => (await rdb.llen(`lnr_connection:${ck}:messages`)) === 0, 3000)).toBe(true);
}

test('a sender restart mid-stream loses and doubles nothing', async () => {
  const checker = new SeqChecker(['listener_topic', 'sender_topic']);
  await mesh.started('listener', 'listener_topic', checker.push);

  let sender = await mesh.started('sender', 'sender_topic');
  let seq = await pump(sender, 1, PHASE_MS);
  await sender.close();

  sender = await mesh.started('sender', 'sender_topic');
  seq = await pump(sender, seq, PHASE_MS);
  await expectExactlyOnceAndDrained(checker, seq - 1);
});

test('a listener restart mid-stream loses and doubles nothing', async () => {
  const addr = `127.0.0.1:${await freePort()}`;
  const checker = new SeqChecker(['listener_topic', 'sender_topic']);
  let listener = await mesh.started('listener', 'listener_topic', checker.push, { listen: addr });

  const sender = await mesh.started('sender', 'sender_topic');
  let seq = await pump(sender, 1, PHASE_MS);
  await listener.close();
  seq = await pump(sender, seq, 100); // while nobody listens

  listener = await mesh.started('listener', 'listener_topic', checker.push, { listen: addr });
  expect(listener.address).toBe(addr);
  seq = await pump(sender, seq, PHASE_MS);
  await expectExactlyOnceAndDrained(checker, seq - 1);
});

test('both restarting mid-stream lose and double nothing', async () => {
  const addr = `127.0.0.1:${await freePort()}`;
  const checker = new SeqChecker();
  let listener = await mesh.started('listener', 'listener_topic', checker.push, { listen: addr });
  let sender = await mesh.started('sender', 'sender_topic');
  let seq = await pump(sender, 1, PHASE_MS);
  await listener.close();
  seq = await pump(sender, seq, 100);
  await sender.close();

  sender = await mesh.started('sender', 'sender_topic');
  listener = await mesh.started('listener', 'listener_topic', checker.push, { listen: addr });
  seq = await pump(sender, seq, PHASE_MS);
  await expectExactlyOnceAndDrained(checker, seq - 1);
});
