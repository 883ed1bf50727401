// A redis-server of a test's own, for tests that stop Redis under running clients ("store
// down"): on a free loopback port, no persistence, in a temporary directory removed with it.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { freePort, redisPing } from './net.js';

export class PrivateRedis {
  private constructor(
    readonly url: string,
    private server: ChildProcess | undefined,
    private readonly dir: string,
    private readonly port: number,
  ) {}

  static async start(): Promise<PrivateRedis> {
    const dir = mkdtempSync(path.join(tmpdir(), 'liner-private-redis-'));
    const port = await freePort();
    try {
      return new PrivateRedis(`redis://127.0.0.1:${port}/0`, await PrivateRedis.spawn(port, dir), dir, port);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  private static async spawn(port: number, dir: string): Promise<ChildProcess> {
    const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', dir], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await redisPing(port))) {
      if (Date.now() > deadline || server.exitCode !== null) {
        server.kill('SIGKILL');
        throw new Error('private redis-server did not start');
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return server;
  }

  /** Starts a stopped server again, on the same port and empty (no persistence). */
  async restart(): Promise<void> {
    await this.stop();
    this.server = await PrivateRedis.spawn(this.port, this.dir);
  }

  /** Kills the server (at once: clients see connections refused from now on). Idempotent. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server || server.exitCode !== null || server.signalCode !== null) return;
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGKILL');
    await exited;
  }

  /** Stops the server and deletes its directory. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
