// `liner inspect`: connection keys, sender topic, last acknowledged number and offline-queue
// length of every channel, sampled twice to tell the queues that do not drain (and why).
import { expect, test } from 'vitest';

import type { InspectedChannel } from '../../dist/cli/inspect.js';
import { ANSI, deadRedisUrl, expectFailure, liner, linerJson, ownLines } from './support/cli.js';
import { Inbox, redisUrl, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

interface InspectJson {
  sampledMs: number;
  topic?: { topic: string; addresses: { address: string; name: string }[] };
  channels: InspectedChannel[];
  notDraining: number[];
  unnamedQueues: { connectionKey: number; queueLength: number }[];
}

const inspect = (...args: string[]): Promise<InspectJson> => linerJson(['inspect', '--json', '--redis', redisUrl, ...args]);

test('shows connection keys, sender topics and acknowledgements of live channels', async () => {
  const boss = mesh.client('boss', 'boss');
  const worker = mesh.client('worker-1', 'jobs');
  const inbox = new Inbox(worker);
  await worker.start();
  await boss.start();
  for (let i = 0; i < 5; i++) boss.sendTo('jobs', `job ${i}`);
  await inbox.waitCount(5);
  const rdb = mesh.rdb();
  const ck = Number(await rdb.get('lnr_connection:boss:boss:worker-1:key'));
  await waitUntil(async () => (await rdb.get(`lnr_connection:${ck}:mess_number`)) === '5', 5000);

  const out = await inspect('--interval', '0');
  expect(out.sampledMs).toBe(0);
  expect(out.channels).toEqual([
    expect.objectContaining({
      connectionKey: ck,
      connectionKeyName: 'lnr_connection:boss:boss:worker-1:key',
      sender: 'boss',
      senderTopic: 'boss',
      storedSenderTopic: 'boss',
      listener: 'worker-1',
      lastAcked: 5,
      queueLength: 0,
      state: 'empty',
      reason: null,
    }),
  ]);

  const text = await liner(['inspect', '--interval', '0', '--redis', redisUrl]);
  expect(text.code).toBe(0);
  expect(text.stdout).toMatch(/CONN KEY\s+SENDER\s+SENDER TOPIC\s+LISTENER\s+LAST ACKED\s+QUEUE\s+STATE/);
  expect(text.stdout).toMatch(new RegExp(`^\\s*${ck}\\s+boss\\s+boss\\s+worker-1\\s+5\\s+0\\s+empty`, 'm'));
  expect(text.stdout).not.toMatch(ANSI);
});

test('tells the queue of an offline listener from one that drains', async () => {
  const clerk = mesh.client('clerk', 'clerk');
  let audit = mesh.client('audit', 'audit');
  const first = new Inbox(audit);
  await audit.start();
  await clerk.start();
  for (let i = 1; i <= 3; i++) clerk.sendTo('audit', `record ${i}`);
  await first.waitCount(3);
  await audit.close();
  // At-least-once messages for a listener that left wait in its channel's offline queue.
  clerk.sendTo('audit', 'record 4');
  clerk.sendTo('audit', 'record 5');
  const rdb = mesh.rdb();
  const ck = Number(await rdb.get('lnr_connection:clerk:clerk:audit:key'));
  expect(await waitUntil(async () => (await rdb.llen(`lnr_connection:${ck}:messages`)) === 2, 10_000)).toBe(true);

  const stuck = await inspect('--interval', '0.3', '--topic', 'audit');
  expect(stuck.sampledMs).toBe(300);
  expect(stuck.topic).toMatchObject({ topic: 'audit', addresses: [] });
  expect(stuck.notDraining).toEqual([ck]);
  expect(stuck.channels).toEqual([
    expect.objectContaining({ connectionKey: ck, listener: 'audit', lastAcked: 3, queueLength: 2, queuedFor: 'audit', state: 'not-draining' }),
  ]);
  expect(stuck.channels[0]!.reason).toMatch(/listener audit is not running/);

  const text = await liner(['inspect', '--interval', '0.2', '--redis', redisUrl]);
  expect(text.stdout).toMatch(/NOT DRAINING/);
  expect(text.stdout).toMatch(new RegExp(`ck ${ck} clerk -> audit: 2 message\\(s\\) for audit; listener audit is not running`));

  const check = await liner(['inspect', '--check', '--interval', '0.2', '--redis', redisUrl]);
  expect(check.code).toBe(1);
  expect(ownLines(check.stderr)).toEqual([`liner inspect: 1 offline queue(s) not draining: ck ${ck}`]);

  // The listener comes back: the sender moves the channel to it and the queue drains.
  audit = mesh.client('audit', 'audit');
  const second = new Inbox(audit);
  await audit.start();
  await second.waitCount(2, 10_000);
  expect(second.payloads()).toEqual(['record 4', 'record 5']);
  // The sender pops the queued frames once it has read the acknowledgement (about a second).
  expect(await waitUntil(async () => (await rdb.llen(`lnr_connection:${ck}:messages`)) === 0, 5000)).toBe(true);
  const drained = await inspect('--interval', '0', '--sender', 'clerk');
  expect(drained.channels).toEqual([expect.objectContaining({ connectionKey: ck, lastAcked: 5, queueLength: 0, state: 'empty' })]);
  expect((await liner(['inspect', '--check', '--interval', '0', '--redis', redisUrl])).code).toBe(0);
});

test('filters by sender and by topic', async () => {
  const a = mesh.client('a', 'topic_a');
  const b = mesh.client('b', 'topic_b');
  const c = mesh.client('c', 'topic_c');
  const inboxes = [new Inbox(a), new Inbox(b), new Inbox(c)];
  for (const x of [a, b, c]) await x.start();
  a.sendTo('topic_b', 'a->b');
  b.sendTo('topic_c', 'b->c');
  c.sendTo('topic_a', 'c->a');
  for (const i of inboxes) await i.waitCount(1);
  const pairs = (o: InspectJson): string[] => o.channels.map((ch) => `${ch.sender}->${ch.listener}`).sort();
  expect(pairs(await inspect('--interval', '0'))).toEqual(['a->b', 'b->c', 'c->a']);
  expect(pairs(await inspect('--interval', '0', '--sender', 'b'))).toEqual(['b->c']);
  expect(pairs(await inspect('--interval', '0', '--topic', 'topic_c'))).toEqual(['b->c', 'c->a']);

  // A queue no channel name accounts for (its key name is gone) is reported on its own.
  await mesh.rdb().cmd('RPUSH', 'lnr_connection:999:messages', 'frame');
  expect((await inspect('--interval', '0')).unnamedQueues).toEqual([{ connectionKey: 999, queueLength: 1 }]);
  expect((await inspect('--interval', '0', '--sender', 'a')).unnamedQueues).toEqual([]);
});

test('an unknown topic or sender, a bad URL and Redis down fail with one line', async () => {
  const a = mesh.client('a', 'topic_a');
  await a.start();
  const topic = await liner(['inspect', '--topic', 'nosuch', '--redis', redisUrl]);
  expect(topic.code).toBe(1);
  expect(ownLines(topic.stderr)).toEqual([expect.stringMatching(/^liner inspect: topic 'nosuch' is not in redis:/)]);
  const sender = await liner(['inspect', '--sender', 'nosuch', '--json', '--redis', redisUrl]);
  expect(sender.code).toBe(1);
  expect(JSON.parse(sender.stderr).error.code).toBe('UNKNOWN_SENDER');
  // A peer that never sent has no channels: that is not an error.
  expect((await inspect('--sender', 'a')).channels).toEqual([]);

  const interval = await liner(['inspect', '--interval', 'soon', '--redis', redisUrl]);
  expect(interval.code).toBe(2);
  expect(ownLines(interval.stderr)).toEqual(["liner inspect: --interval must be a number of seconds, not 'soon'"]);
  const url = await liner(['inspect', '--redis', 'redis://:secret@/0']);
  expect(url.code).toBe(2);
  expect(url.stderr).not.toContain('secret');
  await expectFailure(['inspect', '--redis', await deadRedisUrl()], 1, /^liner inspect: cannot reach Redis/);
});
