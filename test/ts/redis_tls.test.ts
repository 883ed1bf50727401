// Redis over TLS from the TypeScript API and the `liner` command: the same rediss:// URL (TLS
// settings in its query) works in both, and a server that does not verify is a STORE error.
import { afterAll, beforeAll, expect, test } from 'vitest';

import { liner } from './support/cli.js';
import { Client, Inbox, LinerError, seqOf, seqPayload } from './support/testkit.js';
import { TlsRedis } from './support/tls_redis.js';

let server: TlsRedis;
beforeAll(async () => {
  server = await TlsRedis.start();
}, 60_000);
afterAll(async () => server?.dispose());

test('clients exchange at-least-once messages through a TLS-only Redis', async () => {
  await using rx = new Client({ name: 'tls_rx', topic: 'tls_rx_topic', store: server.url() });
  await using tx = new Client({ name: 'tls_tx', topic: 'tls_tx_topic', store: server.url() });
  const inbox = new Inbox(rx);
  await rx.start();
  await tx.start();
  for (let i = 0; i < 100; i++) tx.sendTo('tls_rx_topic', seqPayload(i), { atLeastOnce: true });
  expect(await inbox.waitCount(100, 10_000)).toBe(100);
  expect(inbox.items.map((m) => seqOf(m.data)).sort((a, b) => a - b)).toEqual([...Array(100).keys()]);
  expect(server.cli('HLEN', 'lnr_topic:tls_rx_topic:addr')).toBe('1');
});

test('a server signed by another CA fails start() with STORE, naming the reason', async () => {
  const client = new Client({ name: 'tls_bad', topic: 'tls_bad_topic', store: server.url('other-ca.pem'), waitForRedis: 0 });
  const failure = await client.start().then(() => undefined, (e: unknown) => e);
  expect(failure).toBeInstanceOf(LinerError);
  expect((failure as LinerError).code).toBe('STORE');
  expect((failure as LinerError).message).toMatch(/certificate of 127\.0\.0\.1:\d+ was not accepted/);
  await client.close();
});

test('the liner command takes the same URL', async () => {
  await using rx = new Client({ name: 'tls_cli_rx', topic: 'tls_cli_topic', store: server.url('ca.pem', 1) });
  await rx.start();
  const r = await liner(['topics', '--redis', server.url('ca.pem', 1)]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/tls_cli_topic/);
  const bad = await liner(['topics', '--redis', server.url('other-ca.pem', 1)]);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toMatch(/not accepted/);
});
