// Once per vitest run: checks that the package is built, and provides the Redis URL to every
// test file (LINER_TEST_REDIS_URL, or a private redis-server on a free loopback port that is
// stopped and deleted afterwards).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';

import { freePort, redisPing } from './net.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

const root = path.resolve(__dirname, '../../..');

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  for (const file of ['dist/index.mjs', `prebuilds/${process.platform}-${process.arch}/liner.node`]) {
    if (!existsSync(path.join(root, file))) throw new Error(`${file} is missing: run 'npm run build' first`);
  }
  let server: ChildProcess | undefined;
  let dir: string | undefined;
  let url = process.env.LINER_TEST_REDIS_URL;
  if (!url) {
    dir = mkdtempSync(path.join(tmpdir(), 'liner-vitest-redis-'));
    const port = await freePort();
    server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', dir], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await redisPing(port))) {
      if (Date.now() > deadline || server.exitCode !== null) throw new Error('redis-server did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    url = `redis://127.0.0.1:${port}/0`;
  }
  project.provide('redisUrl', url);
  return async () => {
    if (server) {
      server.kill();
      await new Promise((r) => server!.once('exit', r));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
}
