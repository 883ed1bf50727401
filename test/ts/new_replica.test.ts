// A replica that starts after the sender already routed to its topic gets traffic: at once after
// refreshAddressTopic(), and within about a second without it.
import { expect, test } from 'vitest';

import { Inbox, sleep, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

async function firstReplicaAndSender() {
  const first = mesh.client('replica1', 'jobs');
  const firstInbox = new Inbox(first);
  await first.start();
  const sender = mesh.client('sender', 'sender_topic');
  await sender.start();
  for (let i = 0; i < 4; i++) sender.sendTo('jobs', `warm ${i}`);
  expect(await firstInbox.waitCount(4)).toBe(4);
  return { sender, firstInbox };
}

test('a new replica is used after refreshAddressTopic', async () => {
  const { sender, firstInbox } = await firstReplicaAndSender();
  const second = mesh.client('replica2', 'jobs');
  const secondInbox = new Inbox(second);
  await second.start();
  expect(await sender.refreshAddressTopic('jobs')).toBe(true);
  for (let i = 0; i < 10; i++) sender.sendTo('jobs', `job ${i}`);
  expect(await waitUntil(() => firstInbox.length + secondInbox.length === 14)).toBe(true);
  expect(secondInbox.length).toBe(5);
  expect(firstInbox.length).toBe(9);
});

test('a new replica is used within a second without refreshAddressTopic', async () => {
  const { sender, firstInbox } = await firstReplicaAndSender();
  const second = mesh.client('replica2', 'jobs');
  const secondInbox = new Inbox(second);
  await second.start();
  const started = Date.now();
  let sent = 0;
  while (secondInbox.length === 0 && Date.now() - started < 1500) {
    sender.sendTo('jobs', `job ${sent++}`);
    await sleep(20);
  }
  expect(secondInbox.length, `new replica got nothing in ${Date.now() - started} ms`).toBeGreaterThan(0);
  expect(await waitUntil(() => firstInbox.length + secondInbox.length === 4 + sent)).toBe(true);
});

test('refreshAddressTopic is false for a topic nobody serves', async () => {
  const sender = mesh.client('sender', 'sender_topic');
  expect(await sender.refreshAddressTopic('nobody_here')).toBe(false);
  await sender.start();
  expect(await sender.refreshAddressTopic('nobody_here')).toBe(false);
  expect(await sender.listAddresses('sender_topic')).toEqual([{ address: sender.address, name: 'sender' }]);
});
