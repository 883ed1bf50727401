// Hand-over: messages sendTo queued for a peer that stopped go to a replica of its topic once one
// serves it; with `handover: false` (peer affinity) they wait for that peer. sendAll copies never
// move. The option is a boolean.
import { expect, test } from 'vitest';

import { codeOf, Inbox, LinerError, sleep, useMesh, waitUntil } from './support/testkit.js';
import { Client } from './support/testkit.js';

const mesh = useMesh();
// Departure known (a stop announces it at once) -> handed messages delivered (issue bound).
const HANDOVER_BOUND_MS = 15_000;

/** A sender whose messages to `jobs` wait for `first`, which served the topic and stopped. */
async function jobsWaitingForAStoppedPeer(options: { handover?: boolean } = {}, all = false) {
  const first = mesh.client('first', 'jobs');
  const firstInbox = new Inbox(first);
  await first.start();
  const sender = mesh.client('sender', 'sender_topic', options);
  await sender.start();
  if (all) sender.sendAll('jobs', 'warm');
  else sender.sendTo('jobs', 'warm');
  expect(await firstInbox.waitCount(1)).toBe(1);
  await first.stop();
  expect(await sender.refreshAddressTopic('jobs')).toBe(false);
  for (let i = 0; i < 10; i++) {
    if (all) sender.sendAll('jobs', `job ${i}`);
    else sender.sendTo('jobs', `job ${i}`);
  }
  // They wait in Redis for `first` (nobody else serves the topic).
  expect(await waitUntil(async () => (await sender.pendingByPeer()).some((q) => q.count === 10), 5000)).toBe(true);
  return sender;
}

test('messages waiting for a stopped peer go to a replica that starts', async () => {
  await jobsWaitingForAStoppedPeer();
  const replica = mesh.client('replica', 'jobs');
  const inbox = new Inbox(replica);
  await replica.start();
  const jobs = Array.from({ length: 10 }, (_, i) => `job ${i}`);
  expect(await waitUntil(() => jobs.every((j) => inbox.payloads().includes(j)), HANDOVER_BOUND_MS)).toBe(true);
});

test('with handover: false they wait for their peer, and it gets them when it returns', async () => {
  const sender = await jobsWaitingForAStoppedPeer({ handover: false });
  const replica = mesh.client('replica', 'jobs');
  const replicaInbox = new Inbox(replica);
  await replica.start();
  await sleep(2500); // two hand-over passes, had it been on
  expect(replicaInbox.payloads().filter((p) => p.startsWith('job'))).toEqual([]);
  expect((await sender.pendingByPeer()).find((q) => q.name === 'first')?.count).toBe(10);
  const back = mesh.client('first', 'jobs');
  const backInbox = new Inbox(back);
  await back.start();
  expect(await backInbox.waitCount(10)).toBe(10);
  expect(backInbox.payloads()).toEqual(Array.from({ length: 10 }, (_, i) => `job ${i}`));
});

test('sendAll copies for a stopped peer are never handed over', async () => {
  const sender = await jobsWaitingForAStoppedPeer({}, true);
  const replica = mesh.client('replica', 'jobs');
  const inbox = new Inbox(replica);
  await replica.start();
  await sleep(2500);
  expect(inbox.payloads()).toEqual([]); // it was not there when they were sent
  expect((await sender.pendingByPeer()).find((q) => q.name === 'first')?.count).toBe(10);
});

test('the handover option is a boolean', () => {
  for (const bad of ['yes', 1, null]) {
    expect(codeOf(() => new Client({ name: 'n', topic: 't', handover: bad as unknown as boolean }))).toBe(
      'INVALID_ARGUMENT',
    );
  }
  expect(() => mesh.client('n', 't', { handover: false })).not.toThrow(LinerError);
});
