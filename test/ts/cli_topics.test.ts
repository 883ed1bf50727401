// `liner topics`: every topic with its addresses, unique names and topic key, read with SCAN
// (never KEYS), as text and as JSON; and its one-line failures.
import * as net from 'node:net';

import { expect, test } from 'vitest';

import { ANSI, dbOf, deadRedisUrl, expectFailure, liner, ownLines } from './support/cli.js';
import { redisUrl, useMesh } from './support/testkit.js';

const mesh = useMesh();

interface TopicsJson {
  redis: string;
  topics: { topic: string; key: number | null; addresses: { address: string; name: string }[]; names: string[]; internal: boolean }[];
}

/** Commands Redis executed on this file's database while `during` ran (MONITOR). */
async function monitored(during: () => Promise<unknown>): Promise<string[]> {
  const u = new URL(redisUrl);
  const socket = net.connect(Number(u.port), u.hostname);
  let text = '';
  socket.on('data', (d) => (text += d));
  await new Promise((r) => socket.once('connect', r));
  socket.write('MONITOR\r\n');
  while (!text.startsWith('+OK')) await new Promise((r) => setTimeout(r, 5));
  await during();
  await new Promise((r) => setTimeout(r, 100));
  socket.destroy();
  const db = dbOf(redisUrl);
  return text
    .split('\r\n')
    .filter((l) => l.includes(`[${db} `))
    .map((l) => /\] "([A-Za-z]+)"/.exec(l)?.[1]?.toUpperCase() ?? '');
}

test('lists every topic with its addresses, unique names and key', async () => {
  const w1 = mesh.client('worker-1', 'jobs');
  const w2 = mesh.client('worker-2', 'jobs');
  const idle = mesh.client('idle', 'idle');
  await w1.subscribe('news');
  await w1.start();
  await w2.start();
  await idle.start();
  await idle.close(); // leaves its topic key, not its address

  const r = await liner(['topics', '--json', '--redis', redisUrl]);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as TopicsJson;
  const rdb = mesh.rdb();
  const byTopic = Object.fromEntries(out.topics.map((t) => [t.topic, t]));
  expect(Object.keys(byTopic).sort()).toEqual(['idle', 'jobs', 'news']);
  for (const t of out.topics) expect(t.key).toBe(Number(await rdb.get(`lnr_topic:${t.topic}:key`)));
  expect(byTopic.jobs!.addresses).toEqual(
    [
      { address: w1.address, name: 'worker-1' },
      { address: w2.address, name: 'worker-2' },
    ].sort((a, b) => a.address.localeCompare(b.address)),
  );
  expect(byTopic.jobs!.names).toEqual(['worker-1', 'worker-2']);
  expect(byTopic.news!.addresses).toEqual([{ address: w1.address, name: 'worker-1' }]);
  expect(byTopic.idle!.addresses).toEqual([]);

  const served = JSON.parse((await liner(['topics', '--served', '--json', '--redis', redisUrl])).stdout) as TopicsJson;
  expect(served.topics.map((t) => t.topic)).toEqual(['jobs', 'news']);

  // Text: a table, no colour codes when stdout is not a terminal; colour when forced.
  const plain = await liner(['topics', '--redis', redisUrl]);
  expect(plain.code).toBe(0);
  expect(plain.stdout).toMatch(/TOPIC\s+KEY\s+ADDRESS\s+UNIQUE NAME/);
  for (const s of [w1.address, w2.address, 'worker-1', 'worker-2', 'nobody serves it']) expect(plain.stdout).toContain(s);
  expect(plain.stdout).not.toMatch(ANSI);
  expect((await liner(['topics', '--redis', redisUrl], { env: { FORCE_COLOR: '1' } })).stdout).toMatch(ANSI);
});

test('reads with SCAN, never KEYS', async () => {
  const a = mesh.client('a', 'topic_a');
  await a.start();
  const commands = await monitored(() => liner(['topics', '--redis', redisUrl]));
  expect(commands).toContain('SCAN');
  expect(commands).not.toContain('KEYS');
});

test('an empty database says so', async () => {
  const r = await liner(['topics', '--redis', redisUrl]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/no liner topics/);
  expect(JSON.parse((await liner(['topics', '--json', '--redis', redisUrl])).stdout).topics).toEqual([]);
});

test('bad URL, Redis down and bad options fail with one line and a non-zero status', async () => {
  const bad = await liner(['topics', '--redis', 'http://127.0.0.1:6379']);
  expect(bad.code).toBe(2);
  expect(ownLines(bad.stderr)).toEqual([expect.stringMatching(/^liner topics: no store serves the URL 'http:\/\/127\.0\.0\.1:6379'/)]);
  expect(bad.stdout).toBe('');

  await expectFailure(['topics', '--redis', await deadRedisUrl()], 1, /^liner topics: cannot reach Redis at 127\.0\.0\.1:\d+ \(connection refused\)$/);

  // The environment variable is used, and named in the hint when nothing answers at the default.
  const fromEnv = await liner(['topics', '--json'], { env: { LINER_REDIS_URL: redisUrl } });
  expect(fromEnv.code).toBe(0);
  expect(JSON.parse(fromEnv.stdout).redis).toBe(redisUrl);

  const json = await liner(['topics', '--json', '--redis', 'redis://127.0.0.1:0/0']);
  expect(json.code).toBe(2);
  expect(JSON.parse(json.stderr)).toEqual({ error: { code: 'BAD_URL', message: expect.stringMatching(/bad port/), command: 'topics' } });

  const option = await liner(['topics', '--nope']);
  expect(option.code).toBe(2);
  expect(ownLines(option.stderr)).toEqual(['liner topics: unknown option --nope']);
});
