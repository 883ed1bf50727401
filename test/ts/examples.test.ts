// The TypeScript examples (examples/ts) compile against the public typings and run to success
// against the test Redis, the demo included.
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
