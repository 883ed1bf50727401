// A client garbage-collected without close() (never started, opened only, or closed and dropped)
// does not crash the process, and releases its Redis connection.
import { expect, test } from 'vitest';

import { spawnFixture } from './support/testkit.js';

test('dropped clients are collected without a crash', async () => {
  const fixture = spawnFixture('gc_unclosed.mjs', [], ['--expose-gc']);
  const [code, signal] = await fixture.exit;
  expect({ code, signal, output: fixture.output().trim() }).toEqual({ code: 0, signal: null, output: 'ok' });
});
