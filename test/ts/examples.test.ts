// The TypeScript examples (examples/ts) compile against the public typings and run to success
// against the test Redis, the demo included; given a Redis nobody listens on, each fails loudly
// (exit 1, an "error: ..." line on stderr) instead of printing an error and exiting 0.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';

import { beforeAll, expect, test } from 'vitest';

import { redisUrl, useMesh } from './support/testkit.js';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
useMesh();

beforeAll(async () => {
  await run(path.join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.examples.json'], { cwd: root });
}, 60_000);

test.each(['one_to_one', 'one_to_many', 'producer_consumer', 'demo'])('%s', async (name) => {
  const { stdout } = await run(process.execPath, [path.join(root, 'build', 'examples', 'ts', `${name}.js`), redisUrl], {
    timeout: 30_000,
  });
  expect(stdout).not.toMatch(/FAIL/);
  if (name === 'demo') expect(stdout).toMatch(/demo: OK/);
});

test.each(['one_to_one', 'one_to_many', 'producer_consumer', 'demo'])('%s fails loudly without Redis', async (name) => {
  // Port 1 on loopback: nothing listens there (binding it needs root), so the connection is refused.
  const failed = await run(process.execPath, [path.join(root, 'build', 'examples', 'ts', `${name}.js`), 'redis://127.0.0.1:1/0'], {
    timeout: 30_000,
  }).then(
    () => undefined,
    (e: { code?: number; stderr?: string }) => e,
  );
  expect(failed, 'the example exited 0').toBeDefined();
  expect(failed!.code).toBe(1);
  expect(failed!.stderr).toMatch(new RegExp(`^error: ${name}: .*unreachable`, 'm'));
});
