// A client garbage-collected without close() (never started, opened only, or closed and dropped)
// does not crash the process, and releases its Redis connection.
import { spawn } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { redisUrl } from './support/testkit.js';

test('dropped clients are collected without a crash', async () => {
  const child = spawn(process.execPath, ['--expose-gc', path.join(__dirname, 'fixtures', 'gc_unclosed.mjs'), redisUrl], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const [code, signal] = await new Promise<[number | null, string | null]>((r) => child.on('exit', (c, s) => r([c, s])));
  expect({ code, signal, output: output.trim() }).toEqual({ code: 0, signal: null, output: 'ok' });
});
