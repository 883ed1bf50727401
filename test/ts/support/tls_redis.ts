// A redis-server that speaks only TLS, with a test CA made by the openssl command in its own
// temporary directory (the TypeScript twin of test/python/tls_redis.py): ca.pem signed
// server.pem for DNS:localhost and IP:127.0.0.1; other-ca.pem is an unrelated CA.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { freePort } from './net.js';

export class TlsRedis {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly server: ChildProcess,
  ) {}

  static async start(): Promise<TlsRedis> {
    const dir = mkdtempSync(path.join(tmpdir(), 'liner-tls-redis-'));
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore', timeout: 60_000 });
    for (const ca of ['ca', 'other-ca'])
      openssl('req', '-x509', '-new', '-nodes', '-newkey', 'rsa:2048', '-days', '2', '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-subj', `/CN=liner test ${ca}`);
    openssl('req', '-new', '-nodes', '-newkey', 'rsa:2048', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
    writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', 'server.pem', '-extfile', 'server.ext');
    const port = await freePort();
    const server = spawn('redis-server', ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', dir, '--tls-cert-file', 'server.pem', '--tls-key-file', 'server.key', '--tls-ca-cert-file', 'ca.pem', '--tls-auth-clients', 'no'],
    { cwd: dir, stdio: 'ignore' });
    const tls = new TlsRedis(dir, port, server);
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        if (tls.cli('PING') === 'PONG') return tls;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline || server.exitCode !== null) {
        await tls.dispose();
        throw new Error('redis-server with TLS did not start');
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** rediss://127.0.0.1:port/db with `ca=` naming one of this server's CA files. */
  url(ca: 'ca.pem' | 'other-ca.pem' = 'ca.pem', db = 0): string {
    return `rediss://127.0.0.1:${this.port}/${db}?ca=${encodeURIComponent(path.join(this.dir, ca))}`;
  }

  cli(...args: string[]): string {
    return execFileSync('redis-cli', ['--tls', '--cacert', path.join(this.dir, 'ca.pem'), '-h', '127.0.0.1', '-p', String(this.port), ...args],
      { encoding: 'utf8', timeout: 10_000 }).trimEnd();
  }

  async dispose(): Promise<void> {
    if (this.server.exitCode === null && this.server.signalCode === null) {
      const exited = new Promise((r) => this.server.once('exit', r));
      this.server.kill('SIGKILL');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
