// Process hygiene: a process whose clients are all closed exits by itself; a running client keeps
// it alive (like a server) unless unref()ed, and is then stopped cleanly at exit (its address
// leaves the directory); process.exit() with running clients does not crash.
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { redisUrl, sleep, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();
const fixture = path.join(__dirname, 'fixtures', 'running_client.mjs');

function run(mode: string, name: string): { child: ChildProcess; ready: Promise<void>; exit: Promise<[number | null, string | null]>; output: () => string } {
  const child = spawn(process.execPath, [fixture, redisUrl, mode, name], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exit = new Promise<[number | null, string | null]>((resolve) => child.on('exit', (code, signal) => resolve([code, signal])));
  const ready = waitUntil(() => output.includes('ready'), 10_000).then(() => undefined);
  return { child, ready, exit, output: () => output };
}

test('exits by itself once every client is closed', async () => {
  const p = run('close', 'closer');
  await p.ready;
  const readyAt = Date.now();
  expect(await p.exit).toEqual([0, null]);
  expect(Date.now() - readyAt).toBeLessThan(2000);
});

test('a running client keeps the process alive', async () => {
  const p = run('keep', 'keeper');
  await p.ready;
  await sleep(1000);
  expect(p.child.exitCode).toBeNull();
  p.child.kill('SIGKILL');
  await p.exit;
});

test('unref() lets the process exit, and the client is stopped cleanly at exit', async () => {
  const p = run('unref', 'unrefd');
  await p.ready;
  expect(await p.exit, p.output()).toEqual([0, null]);
  // Stopped at environment teardown: both addresses left the directory.
  expect(await mesh.rdb().hgetall('lnr_topic:unrefd_topic:addr')).toEqual({});
  expect(await mesh.rdb().hgetall('lnr_topic:unrefd_peer_topic:addr')).toEqual({});
});

test('process.exit() with running clients does not crash', async () => {
  const p = run('exit', 'exiter');
  expect(await p.exit, p.output()).toEqual([3, null]);
});
