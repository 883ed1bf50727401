// `liner bench`: a quick pair-throughput run with a progress bar (on a terminal) and a
// summary; its two peers leave no key behind.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

import { expect, test } from 'vitest';

import { cliPath, deadRedisUrl, expectFailure, liner } from './support/cli.js';
import { redisUrl, useMesh } from './support/testkit.js';

const mesh = useMesh();
const run = promisify(execFile);

test('reports throughput as JSON and removes its peers afterwards', async () => {
  const r = await liner(['bench', '--count', '20000', '--size', '256', '--json', '--redis', redisUrl]);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout);
  expect(out).toMatchObject({ redis: redisUrl, count: 20000, size: 256, atLeastOnce: true, busyWaits: expect.any(Number) });
  expect(out.messagesPerSecond).toBeGreaterThan(0);
  expect(out.bytesPerSecond / (out.messagesPerSecond * 256)).toBeCloseTo(1, 3);
  expect(out.seconds).toBeGreaterThanOrEqual(out.sendSeconds);
  expect(r.stderr).not.toContain('%'); // no progress bar off a terminal
  expect((await mesh.rdb().keys()).filter((k) => k !== 'lnr_unique_key')).toEqual([]);

  const text = await liner(['bench', '--count', '5000', '--best-effort', '--redis', redisUrl]);
  expect(text.code, text.stderr).toBe(0);
  expect(text.stdout).toMatch(/^[\d,]+ msg\/s {2}[\d.]+ [KMG]iB\/s of payload\n {2}5,000 messages of 100 B in [\d.]+ s/);
  expect(text.stderr).toMatch(/best effort/);
});

test.runIf(existsSync('/usr/bin/script'))('draws a progress bar on a terminal', async () => {
  // script(1) runs the command on a pseudo-terminal.
  const { stdout } = await run('script', ['-qec', `${process.execPath} ${cliPath} bench --count 200000 --redis ${redisUrl}`, '/dev/null'], {
    timeout: 60_000,
  });
  expect(stdout).toMatch(/\r\[#+-*\] +\d+% +[\d,]+\/200,000 +[\d,]+ msg\/s/);
  expect(stdout).toMatch(/100%/);
  expect(stdout).toMatch(/msg\/s.*of payload/);
});

test('bad options and Redis down fail with one line', async () => {
  const cases: [string[], RegExp][] = [
    [['--count', '0'], /^liner bench: --count must be a whole number from 1 to 100000000, not '0'$/],
    [['--size', 'big'], /^liner bench: --size must be a whole number/],
    [['extra'], /^liner bench: unexpected argument 'extra'$/],
    [['--redis', 'redis://h:99999'], /^liner bench: invalid Redis URL 'redis:\/\/h:99999': bad port '99999'$/],
  ];
  for (const [args, message] of cases) {
    await expectFailure(['bench', ...args, ...(args.includes('--redis') ? [] : ['--redis', redisUrl])], 2, message);
  }
  await expectFailure(['bench', '--redis', await deadRedisUrl()], 1, /^liner bench: cannot reach Redis/);
});
