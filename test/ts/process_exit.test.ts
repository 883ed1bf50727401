// Process hygiene: a process whose clients are all closed exits by itself; a running client keeps
// it alive (like a server) unless unref()ed, and is then stopped cleanly at exit (its address
// leaves the directory); process.exit() with running clients does not crash.
import { expect, test } from 'vitest';

import { type Fixture, sleep, spawnFixture, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

/** fixtures/running_client.mjs in `mode`; `ready` once its clients run. */
function run(mode: string, name: string): Fixture & { ready: Promise<void> } {
  const fixture = spawnFixture('running_client.mjs', [mode, name]);
  const ready = waitUntil(() => fixture.output().includes('ready'), 10_000).then(() => undefined);
  return { ...fixture, ready };
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
