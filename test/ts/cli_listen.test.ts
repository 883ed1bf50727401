// `liner listen`: a real peer of a topic (and of subscriptions) that prints what arrives — to,
// from, size and a preview that cannot drive the terminal — as text or JSON lines.
import { expect, test } from 'vitest';

import { ANSI, deadRedisUrl, expectFailure, liner, ownLines, spawnLiner } from './support/cli.js';
import { redisUrl, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

interface Line {
  time: string;
  to: string;
  from: string;
  size: number;
  preview: string;
  previewKind: 'text' | 'hex';
  truncated: boolean;
  data?: string;
}

test('prints what arrives on its topic and its subscriptions, as JSON lines', async () => {
  const probe = spawnLiner(['listen', '--topic', 'probe', '--subscribe', 'news', '--name', 'probe-1', '--count', '4', '--json', '--redis', redisUrl]);
  await probe.waitStderr('listening as probe-1');
  const rdb = mesh.rdb();
  expect(Object.values(await rdb.hgetall('lnr_topic:probe:addr'))).toEqual(['probe-1']);
  expect(Object.values(await rdb.hgetall('lnr_topic:news:addr'))).toEqual(['probe-1']);

  const boss = mesh.client('boss', 'boss');
  await boss.start();
  boss.sendTo('probe', 'hello');
  boss.sendAll('news', Buffer.from('red \x1b[31malert\x1b[0m\nnext line'));
  boss.sendTo('probe', Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x1b]));
  boss.sendTo('probe', 'x'.repeat(1000), { atLeastOnce: false });
  expect(await probe.wait()).toBe(0);

  const lines = probe.stdout.trim().split('\n').map((l) => JSON.parse(l) as Line);
  expect(lines.map(({ to, from, size }) => ({ to, from, size }))).toEqual([
    { to: 'probe', from: 'boss', size: 5 },
    { to: 'news', from: 'boss', size: 28 },
    { to: 'probe', from: 'boss', size: 7 },
    { to: 'probe', from: 'boss', size: 1000 },
  ]);
  expect(lines[0]).toMatchObject({ preview: 'hello', previewKind: 'text', truncated: false });
  expect(lines[1]).toMatchObject({ preview: 'red \\u001b[31malert\\u001b[0m\\nnext line', previewKind: 'text' });
  expect(lines[2]).toMatchObject({ preview: '00 01 02 ff fe 80 1b', previewKind: 'hex' });
  expect(lines[3]).toMatchObject({ preview: 'x'.repeat(64), truncated: true });
  expect(Date.parse(lines[0]!.time)).toBeGreaterThan(0);
  expect(probe.stdout).not.toContain('\x1b'); // nothing of a payload reaches the terminal raw
  // Closed: its addresses left the directory.
  expect(await rdb.hgetall('lnr_topic:probe:addr')).toEqual({});
  expect(await rdb.hgetall('lnr_topic:news:addr')).toEqual({});
});

test('prints text lines, whole payloads with --full, and stops on SIGINT', async () => {
  const probe = spawnLiner(['listen', '--topic', 'probe', '--full', '--redis', redisUrl]);
  await probe.waitStderr('listening as liner-listen-');
  const boss = mesh.client('boss', 'boss');
  await boss.start();
  const long = `${'y'.repeat(100)}\tend`;
  boss.sendTo('probe', long);
  await waitUntil(() => probe.stdout.includes('end'), 10_000);
  probe.child.kill('SIGINT');
  expect(await probe.wait()).toBe(0);
  expect(probe.stdout).toMatch(/^\d\d:\d\d:\d\d\.\d{3} {2}boss -> probe {2}104 B {2}"y{100}\\tend"$/m);
  expect(probe.stdout).not.toMatch(ANSI);
  expect(probe.stderr).toMatch(/1 message\(s\) received/);
  expect(await mesh.rdb().hgetall('lnr_topic:probe:addr')).toEqual({});
});

test('says who else serves the topic', async () => {
  const w = mesh.client('worker-1', 'jobs');
  await w.start();
  const probe = spawnLiner(['listen', '--topic', 'jobs', '--timeout', '0.2', '--redis', redisUrl]);
  await probe.waitStderr('listening');
  expect(await probe.wait()).toBe(0);
  expect(probe.stderr).toMatch(/1 other peer\(s\) serve jobs: sendTo\('jobs'\) now round-robins over them and this one/);
});

test('bad input, a timeout before --count and Redis down fail with one line', async () => {
  const missing = await liner(['listen', '--redis', redisUrl]);
  expect(missing.code).toBe(2);
  expect(ownLines(missing.stderr)).toEqual(['liner listen: --topic T is required (the topic to listen on)']);
  const colon = await liner(['listen', '--topic', 'a:b', '--redis', redisUrl]);
  expect(colon.code).toBe(2);
  expect(ownLines(colon.stderr)).toEqual([expect.stringMatching(/must not contain ':'/)]);
  const count = await liner(['listen', '--topic', 't', '--count', '0', '--redis', redisUrl]);
  expect(count.code).toBe(2);

  const late = await liner(['listen', '--topic', 'quiet', '--count', '1', '--timeout', '0.3', '--redis', redisUrl]);
  expect(late.code).toBe(1);
  expect(ownLines(late.stderr).at(-1)).toBe('liner listen: received 0 of 1 message(s) within 0.3 s');

  const url = await liner(['listen', '--topic', 't', '--redis', 'redis://127.0.0.1:6379/x']);
  expect(url.code).toBe(2);
  expect(ownLines(url.stderr)).toEqual(["liner listen: invalid Redis URL 'redis://127.0.0.1:6379/x': the database must be a number"]);

  await expectFailure(['listen', '--topic', 't', '--redis', await deadRedisUrl()], 1, /^liner listen: cannot reach Redis/);
});
