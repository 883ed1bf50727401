/**
 * A throwaway redis-server, as scripts/lib/redis.sh starts for `npm run demo`: a free loopback
 * port, files in a temporary directory, no persistence; stopped and deleted afterwards.
 *
 * @internal
 * @packageDocumentation
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { CliError } from './errors.js';
import { Directory } from './layout.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export class ThrowawayRedis {
  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {}

  /** Starts one; throws CliError when redis-server is missing or does not come up in 10 s. */
  static async start(): Promise<ThrowawayRedis> {
    const dir = mkdtempSync(path.join(tmpdir(), 'liner-redis-'));
    // The port was free a moment ago but may be taken before redis binds it: retry.
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
        stdio: 'ignore',
      });
      const failed = new Promise<NodeJS.ErrnoException | number>((resolve) => {
        child.once('error', resolve);
        child.once('exit', (code) => resolve(code ?? 1));
      });
      const url = `redis://127.0.0.1:${port}/0`;
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const early = await Promise.race([failed, new Promise<undefined>((r) => setTimeout(() => r(undefined), 50))]);
        if (early !== undefined) {
          if (typeof early === 'object' && early.code === 'ENOENT') {
            rmSync(dir, { recursive: true, force: true });
            throw new CliError('DEMO', 'redis-server is not installed (Debian: apt-get install redis-server); or pass --redis URL of a running Redis');
          }
          break; // exited: port taken? try another
        }
        try {
          await new Directory(url).ping();
          return new ThrowawayRedis(url, child, dir);
        } catch {
          // not up yet
        }
      }
      child.kill();
    }
    rmSync(dir, { recursive: true, force: true });
    throw new CliError('DEMO', 'could not start a throwaway redis-server');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill();
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
