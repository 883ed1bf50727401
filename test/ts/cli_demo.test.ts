// `liner demo`: runs the README's demo (examples/ts/demo.ts) on a temporary SQLite file it
// removes afterwards, on a throwaway redis-server it starts and stops itself, or on --store; a
// Redis that is down fails with one line.
import { existsSync } from 'node:fs';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { deadRedisUrl, expectFailure, liner, ownLines } from './support/cli.js';
import { redisUrl, useMesh } from './support/testkit.js';

const mesh = useMesh();

test('runs the demo on a temporary SQLite file, and removes it', async () => {
  const r = await liner(['demo'], { timeoutMs: 90_000 });
  expect(r.code, r.stderr).toBe(0);
  const file = /a temporary SQLite file, (\S+)/.exec(r.stderr);
  expect(file).not.toBeNull();
  expect(r.stdout).toMatch(/4\. Offline delivery/);
  expect(r.stdout).toMatch(/demo: OK/);
  expect(r.stdout).not.toMatch(/FAIL/);
  expect(existsSync(path.dirname(file![1]!))).toBe(false);
});

test('--throwaway-redis runs the demo on a redis-server it starts and stops', async () => {
  const r = await liner(['demo', '--throwaway-redis'], { timeoutMs: 90_000 });
  expect(r.code, r.stderr).toBe(0);
  const url = /throwaway redis-server on (redis:\/\/127\.0\.0\.1:(\d+)\/0)/.exec(r.stderr);
  expect(url).not.toBeNull();
  expect(r.stdout).toMatch(/1\. One to one/);
  expect(r.stdout).toMatch(/demo: OK/);
  expect(r.stdout).not.toMatch(/FAIL/);
  // The server is gone.
  const after = await liner(['topics', '--redis', url![1]!]);
  expect(after.code).toBe(1);
});

test('--store (or its alias --redis) uses that Redis; --json summarises', async () => {
  const r = await liner(['demo', '--json', '--redis', redisUrl], { timeoutMs: 90_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ store: redisUrl, ok: true, exitCode: 0 });
  expect(r.stderr).toMatch(/demo: OK/); // the story goes to stderr with --json
  // The demo's peers used this database, and closed: their addresses left the directory.
  const names = await mesh.rdb().keys();
  expect(names).toContain('lnr_topic:demo.billing:key');
  expect(names.filter((k) => k.endsWith(':addr'))).toEqual([]);
});

test('Redis down and stray arguments fail with one line', async () => {
  await expectFailure(['demo', '--redis', await deadRedisUrl()], 1, /^liner demo: cannot reach Redis/);
  const url = await liner(['demo', '--redis', 'mongodb://127.0.0.1:27017/0']);
  expect(url.code).toBe(2);
  expect(ownLines(url.stderr)).toEqual([expect.stringMatching(/^liner demo: no store serves the URL 'mongodb:\/\/127\.0\.0\.1:27017\/0': store URLs start with /)]);
  const both = await liner(['demo', '--throwaway-redis', '--store', redisUrl]);
  expect(both.code).toBe(2);
  const extra = await liner(['demo', 'now']);
  expect(extra.code).toBe(2);
  expect(ownLines(extra.stderr)).toEqual(["liner demo: unexpected argument 'now'"]);
});
