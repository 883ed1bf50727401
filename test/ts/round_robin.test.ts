// sendTo round-robins over the replicas of a topic; sendAll reaches every one of them.
import { expect, test } from 'vitest';

import { Inbox, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

async function threeReplicas() {
  const inboxes: Inbox[] = [];
  for (let i = 1; i <= 3; i++) {
    const replica = mesh.client(`replica${i}`, 'jobs');
    inboxes.push(new Inbox(replica));
    await replica.start();
  }
  const sender = mesh.client('sender', 'sender_topic');
  await sender.start();
  return { sender, inboxes };
}

test('sendTo round-robins over 3 replicas', async () => {
  const { sender, inboxes } = await threeReplicas();
  for (let i = 0; i < 30; i++) sender.sendTo('jobs', `job ${i}`);
  expect(await waitUntil(() => inboxes.reduce((n, box) => n + box.length, 0) === 30)).toBe(true);
  expect(inboxes.map((box) => box.length)).toEqual([10, 10, 10]);
  const all = inboxes.flatMap((box) => box.payloads()).sort();
  expect(new Set(all).size).toBe(30);
});

test('sendAll reaches all 3 replicas', async () => {
  const { sender, inboxes } = await threeReplicas();
  for (let i = 0; i < 5; i++) sender.sendAll('jobs', `news ${i}`);
  expect(await waitUntil(() => inboxes.every((box) => box.length === 5))).toBe(true);
  for (const box of inboxes) {
    expect(box.payloads()).toEqual(['news 0', 'news 1', 'news 2', 'news 3', 'news 4']);
    expect(box.items.every((m) => m.to === 'jobs' && m.from === 'sender_topic')).toBe(true);
  }
});
