// The SQL stores seen from the TypeScript API, each test on a fresh SQLite file and on a fresh
// PostgreSQL database: peers that share the store find each other, exchange at-least-once
// messages, keep them while a receiver is away, and learn of a new replica. A file that cannot
// be opened, a server that does not answer, or a store URL no store serves, is a clear error.
// (The Redis store is what every other test file uses.)
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { afterEach, beforeEach, describe, expect, test } from 'vitest';

import { Client, Inbox, LinerError, freePort, seqOf, seqPayload, sleep, waitUntil } from './support/testkit.js';

let dir = '';
let store = '';
const clients: Client[] = [];

/** A fresh store of each kind: a file in this test's directory, a database on the run's server. */
const FRESH: Record<string, () => string> = {
  sqlite: () => `sqlite:${path.join(dir, 'mesh.db')}`,
  postgres: () => {
    const server = process.env.LINER_TEST_POSTGRES_URL;
    if (!server) throw new Error('LINER_TEST_POSTGRES_URL is not set: run through scripts/test.sh (or scripts/lib/postgres.sh)');
    const name = `ts_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    execFileSync('psql', [server, '-qc', `CREATE DATABASE ${name}`], { timeout: 30_000 });
    return server.replace(/\/[^/]*$/, `/${name}`);
  },
};

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

describe.each(Object.keys(FRESH))('%s', (kind) => {
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'liner-stores-'));
    store = FRESH[kind]!();
  });

  function client(name: string, topic = name, extra: { listen?: string } = {}): Client {
    const c = new Client({ name, topic, store, ...extra });
    clients.push(c);
    return c;
  }

  test('two peers on one store exchange at-least-once messages both ways', async () => {
    const a = client('a');
    const b = client('b');
    const atA = new Inbox(a);
    const atB = new Inbox(b);
    await a.start();
    await b.start();
    for (let i = 1; i <= 100; i++) a.sendTo('b', seqPayload(i));
    b.sendTo('a', 'hello');
    expect(await atB.waitCount(100)).toBe(100);
    expect(atB.items.map((m) => seqOf(m.data))).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(new Set(atB.items.map((m) => `${m.to} ${m.from}`))).toEqual(new Set(['b a']));
    expect(await atA.waitCount(1)).toBe(1);
    expect(atA.items[0]).toMatchObject({ to: 'a', from: 'b' });
    expect(await a.listAddresses('b')).toEqual([{ address: b.address, name: 'b' }]);
  });

  test('messages for a receiver that is away wait in the store and arrive once, in order', async () => {
    const addr = `127.0.0.1:${await freePort()}`;
    const sender = client('sender');
    let listener = client('listener', 'listener', { listen: addr });
    const inbox = new Inbox(listener);
    await listener.start();
    await sender.start();
    sender.sendTo('listener', seqPayload(1));
    expect(await inbox.waitCount(1)).toBe(1);
    await listener.close();
    for (let i = 2; i <= 50; i++) sender.sendTo('listener', seqPayload(i));
    expect(await waitUntil(async () => (await sender.pendingCount()) === 49, 10_000)).toBe(true);

    listener = client('listener', 'listener', { listen: addr });
    listener.on('message', inbox.push);
    await listener.start();
    expect(await inbox.waitCount(50, 15_000)).toBe(50);
    await sleep(300); // a duplicate would show up here
    expect(inbox.items.map((m) => seqOf(m.data))).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(await waitUntil(async () => (await sender.pendingCount()) === 0, 10_000)).toBe(true);
  });

  test('a sender learns of a new replica from the store', async () => {
    const sender = client('sender');
    const first = client('w1', 'work');
    const atFirst = new Inbox(first);
    await first.start();
    await sender.start();
    sender.sendTo('work', 'one');
    expect(await atFirst.waitCount(1)).toBe(1);
    const second = client('w2', 'work');
    const atSecond = new Inbox(second);
    await second.start();
    // Round-robin reaches the new replica once the change feed told the sender.
    const reached = await waitUntil(async () => {
      sender.sendTo('work', 'more', { atLeastOnce: false });
      await sleep(20);
      return atSecond.length > 0;
    }, 5000);
    expect(reached).toBe(true);
  });
});

test('a store URL no store serves is INVALID_ARGUMENT naming the schemes', () => {
  let error: unknown;
  try {
    new Client({ name: 'x', topic: 'x', store: 'mongodb://user:secret@127.0.0.1/x' });
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(LinerError);
  expect((error as LinerError).code).toBe('INVALID_ARGUMENT');
  expect((error as LinerError).message).toMatch(/mongodb:\/\/user:\*\*\*@127\.0\.0\.1\/x.*sqlite:.*redis:\/\/|redis:\/\/.*sqlite:/);
  expect((error as LinerError).message).not.toContain('secret');
});

test('a file that cannot be created is a STORE error naming it', async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'liner-stores-'));
  const c = new Client({ name: 'x', topic: 'x', store: `sqlite:${path.join(dir, 'missing', 'mesh.db')}`, waitForRedis: 0 });
  clients.push(c);
  const error = await c.start().then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(LinerError);
  expect((error as LinerError).code).toBe('STORE');
  expect((error as LinerError).message).toContain(path.join(dir, 'missing', 'mesh.db'));
});

test('a PostgreSQL server that does not answer is a STORE error without the password', async () => {
  const c = new Client({ name: 'x', topic: 'x', store: `postgres://u:Pw-SECRET@127.0.0.1:${await freePort()}/db`, waitForRedis: 0 });
  clients.push(c);
  const error = await c.start().then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(LinerError);
  expect((error as LinerError).code).toBe('STORE');
  expect((error as LinerError).message).not.toContain('Pw-SECRET');
});

test('store and its alias redis must not disagree', () => {
  expect(() => new Client({ name: 'x', topic: 'x', store, redis: 'redis://127.0.0.1:6379/0' })).toThrow(/give one of the two/);
});
