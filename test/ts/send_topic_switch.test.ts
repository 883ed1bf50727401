// A stream of sends to one topic hands the topic to the native side once; these cases make sure
// that shortcut never sends a message to the topic of an earlier call: switching topics back and
// forth, and a send that fails after naming a new topic.
import { expect, test } from 'vitest';

import { LinerError, type Message, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

async function trio() {
  const a = mesh.client('a', 'topic_a');
  const b = mesh.client('b', 'topic_b');
  const sender = mesh.client('sender', 'topic_sender');
  const got = { a: [] as string[], b: [] as string[] };
  a.on('message', (m: Message) => got.a.push(m.data.toString()));
  b.on('message', (m: Message) => got.b.push(m.data.toString()));
  await a.start();
  await b.start();
  await sender.start();
  return { sender, got };
}

test('alternating topics reach the right peer, in order', async () => {
  const { sender, got } = await trio();
  for (let i = 0; i < 20; i++) {
    sender.sendTo(i % 3 === 0 ? 'topic_b' : 'topic_a', `m${i}`);
    sender.sendAll(i % 2 === 0 ? 'topic_a' : 'topic_b', `all${i}`);
  }
  const wantA: string[] = [];
  const wantB: string[] = [];
  for (let i = 0; i < 20; i++) {
    (i % 3 === 0 ? wantB : wantA).push(`m${i}`);
    (i % 2 === 0 ? wantA : wantB).push(`all${i}`);
  }
  expect(await waitUntil(() => got.a.length === wantA.length && got.b.length === wantB.length, 5000)).toBe(true);
  // Per peer, sendTo and sendAll share one ordered channel.
  expect(got.a).toEqual(wantA);
  expect(got.b).toEqual(wantB);
});

test('a send that fails on its payload does not leave its topic behind for the next send', async () => {
  const { sender, got } = await trio();
  sender.sendTo('topic_a', 'first');
  expect(() => sender.sendTo('topic_b', 42 as unknown as string)).toThrow(LinerError);
  expect(() => sender.sendTo('topic_b', Buffer.alloc(0))).toThrow(LinerError);
  sender.sendTo('topic_a', 'second');
  expect(() => sender.sendTo('', 'x')).toThrow(LinerError);
  sender.sendTo('topic_a', 'third');
  sender.sendTo('topic_b', 'to b');
  expect(await waitUntil(() => got.a.length === 3 && got.b.length === 1, 5000)).toBe(true);
  expect(got.a).toEqual(['first', 'second', 'third']);
  expect(got.b).toEqual(['to b']);
});

test('a send refused by the core (unknown topic) does not leave its topic behind', async () => {
  const { sender, got } = await trio();
  sender.sendTo('topic_a', 'one');
  expect(await sender.refreshAddressTopic('nobody_serves_this')).toBe(false);
  let error: unknown;
  try {
    sender.sendTo('nobody_serves_this', 'lost', { atLeastOnce: false });
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(LinerError);
  expect((error as LinerError).code).toBe('NO_ADDRESS');
  sender.sendTo('topic_a', 'two');
  expect(await waitUntil(() => got.a.length === 2, 5000)).toBe(true);
  expect(got.a).toEqual(['one', 'two']);
  expect(got.b).toEqual([]);
});
