// `liner purge`: deletes a topic's directory (as clearAddressesOfTopic) or a sender's offline
// queues, ack counters and sender->listener map (as clearStoredMessages), after showing the
// plan and asking; refuses under a running sender.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

import { expect, test } from 'vitest';

import { cliPath, deadRedisUrl, expectFailure, liner, ownLines } from './support/cli.js';
import { Inbox, redisUrl, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

/** A sender "clerk" whose channel to "audit" holds `n` messages in Redis; clerk stopped. */
async function storedMessages(n: number): Promise<number> {
  const clerk = mesh.client('clerk', 'clerk');
  const audit = mesh.client('audit', 'audit');
  const inbox = new Inbox(audit);
  await audit.start();
  await clerk.start();
  clerk.sendTo('audit', 'first');
  await inbox.waitCount(1);
  await audit.close();
  for (let i = 0; i < n; i++) clerk.sendTo('audit', `kept ${i}`);
  await clerk.close();
  const rdb = mesh.rdb();
  const ck = Number(await rdb.get('lnr_connection:clerk:clerk:audit:key'));
  expect(await rdb.llen(`lnr_connection:${ck}:messages`)).toBe(n);
  return ck;
}

test('--topic deletes the directory of the topic, after confirmation; running peers come back', async () => {
  const w1 = mesh.client('worker-1', 'jobs');
  await w1.start();
  const rdb = mesh.rdb();
  // What a crashed liner_broker peer leaves behind: an entry without a lease.
  await rdb.cmd('HSET', 'lnr_topic:jobs:addr', '127.0.0.1:9', 'worker-dead');

  const unconfirmed = await liner(['purge', '--topic', 'jobs', '--redis', redisUrl]);
  expect(unconfirmed.code).toBe(2);
  expect(unconfirmed.stdout).toMatch(/delete the directory of topic jobs \(lnr_topic:jobs:addr\), 2 address\(es\)/);
  expect(unconfirmed.stdout).toContain(w1.address);
  expect(ownLines(unconfirmed.stderr)).toEqual(['liner purge: purge deletes data: confirm on a terminal, or pass --yes']);
  expect(Object.keys(await rdb.hgetall('lnr_topic:jobs:addr'))).toHaveLength(2);

  const r = await liner(['purge', '--topic', 'jobs', '--yes', '--json', '--redis', redisUrl]);
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ topic: 'jobs', sender: null, purged: true, keys: ['lnr_topic:jobs:addr'] });
  expect(await rdb.get('lnr_topic:jobs:key')).not.toBeNull(); // clear_addresses_of_topic keeps the key
  // The running worker puts its own address back (it is alive); the dead entry stays gone.
  expect(await waitUntil(async () => Object.keys(await rdb.hgetall('lnr_topic:jobs:addr')).length === 1, 5000)).toBe(true);
  expect(await rdb.hgetall('lnr_topic:jobs:addr')).toEqual({ [w1.address]: 'worker-1' });

  await w1.stop();
  const again = await liner(['purge', '--topic', 'jobs', '--redis', redisUrl]);
  expect(again.code).toBe(0);
  expect(again.stdout).toMatch(/nothing to delete/);
});

test('--sender deletes offline queues, ack counters and the sender map, as clearStoredMessages', async () => {
  const ck = await storedMessages(3);
  const rdb = mesh.rdb();
  const r = await liner(['purge', '--sender', 'clerk', '-y', '--redis', redisUrl]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`ck ${ck} -> audit: delete 3 stored message\\(s\\) and the ack counter \\(last acked 1\\)`));
  expect(r.stdout).toMatch(/purged/);
  const left = await rdb.keys();
  for (const gone of [`lnr_connection:${ck}:messages`, `lnr_connection:${ck}:mess_number`, 'lnr_sender:clerk:clerk:listener', 'lnr_sender:clerk:clerk:listener_name']) {
    expect(left).not.toContain(gone);
  }
  // What clear_stored_messages keeps: the channel's identity.
  expect(left).toContain('lnr_connection:clerk:clerk:audit:key');
  expect(left).toContain(`lnr_connection:${ck}:sender`);
});

test('--sender refuses while the sender is registered, unless --force', async () => {
  await storedMessages(1);
  const clerk = mesh.client('clerk', 'clerk');
  await clerk.start();
  const r = await liner(['purge', '--sender', 'clerk', '--yes', '--redis', redisUrl]);
  expect(r.code).toBe(1);
  expect(ownLines(r.stderr)).toEqual([expect.stringMatching(/^liner purge: sender clerk is registered \(127\.0\.0\.1:\d+ under clerk\): stop it first/)]);
  const forced = await liner(['purge', '--sender', 'clerk', '--yes', '--force', '--json', '--redis', redisUrl]);
  expect(forced.code, forced.stderr).toBe(0);
  expect(JSON.parse(forced.stdout).purged).toBe(true);
});

test.runIf(existsSync('/usr/bin/script'))('asks on a terminal and does nothing without a yes', async () => {
  const w = mesh.client('worker-1', 'jobs');
  await w.start();
  const answer = (reply: string): Promise<string> =>
    new Promise((resolve) => {
      // script(1) gives the command a terminal; our stdin becomes what is typed on it.
      const child = spawn('script', ['-qec', `${process.execPath} ${cliPath} purge --topic jobs --redis ${redisUrl}`, '/dev/null'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('[y/N]') && !child.stdin.writableEnded) child.stdin.end(`${reply}\n`);
      });
      const timer = setTimeout(() => child.kill(), 20_000);
      child.once('close', () => {
        clearTimeout(timer);
        resolve(out);
      });
    });
  expect(await answer('n')).toMatch(/Delete\? \[y\/N\][\s\S]*nothing deleted/);
  expect(Object.keys(await mesh.rdb().hgetall('lnr_topic:jobs:addr'))).toHaveLength(1);
  expect(await answer('y')).toMatch(/purged/);
  expect(await waitUntil(async () => Object.keys(await mesh.rdb().hgetall('lnr_topic:jobs:addr')).length === 0)).toBe(true);
});

test('unknown topics and senders, bad usage and Redis down fail with one line', async () => {
  const cases: [string[], number, RegExp][] = [
    [['purge', '--topic', 'nosuch', '--yes'], 1, /^liner purge: topic 'nosuch' is not in redis:/],
    [['purge', '--sender', 'nosuch', '--yes'], 1, /^liner purge: no sender named 'nosuch'/],
    [['purge', '--yes'], 2, /^liner purge: give either --topic T or --sender NAME$/],
    [['purge', '--topic', 'a', '--sender', 'b'], 2, /^liner purge: give either --topic T or --sender NAME$/],
    [['purge', '--topic', 'a:b'], 2, /must not contain ':'/],
    [['purge', '--topic', 'jobs', '--yes', '--redis', 'redis://:pw@/0'], 2, /^liner purge: invalid Redis URL 'redis:\/\/:\*\*\*@\/0': missing host$/],
  ];
  for (const [args, code, message] of cases) {
    await expectFailure(args.includes('--redis') ? [...args] : [...args, '--redis', redisUrl], code, message);
  }
  await expectFailure(['purge', '--topic', 'jobs', '--yes', '--redis', await deadRedisUrl()], 1, /^liner purge: cannot reach Redis/);
});
