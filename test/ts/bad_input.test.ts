// Bad input through the TypeScript API throws (or rejects with) LinerError with the right code;
// nothing crashes.
import * as net from 'node:net';

import { describe, expect, test } from 'vitest';

import { Client, type ClientOptions, LinerError, freePort, redisUrl, useMesh } from './support/testkit.js';

const mesh = useMesh();

function thrown(fn: () => unknown): LinerError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(LinerError);
    return e as LinerError;
  }
  throw new Error('did not throw');
}

const base: ClientOptions = { name: 'bad', topic: 'bad_topic', redis: redisUrl };

describe('creating a client', () => {
  test.each<[string, unknown]>([
    ['no options', undefined],
    ['options not an object', 'name'],
    ['name not a string', { ...base, name: 42 }],
    ['empty name', { ...base, name: '' }],
    ['name with a colon', { ...base, name: 'a:b' }],
    ['topic with a backslash', { ...base, topic: 'a\\b' }],
    ['empty topic', { ...base, topic: '' }],
    ['redis URL of another scheme', { ...base, redis: 'http://127.0.0.1:6379' }],
    ['redis URL not a string', { ...base, redis: 6379 }],
    ['empty listen address', { ...base, listen: '' }],
    ['negative size', { ...base, maxInFlightBytes: -1 }],
    ['fractional size', { ...base, maxSendQueueMessages: 1.5 }],
  ])('%s throws INVALID_ARGUMENT', (_, options) => {
    const e = thrown(() => new Client(options as ClientOptions));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/INVALID_ARGUMENT/);
  });

  test('a malformed listen address rejects start with INVALID_ARGUMENT', async () => {
    await expect(mesh.client('bad', 'bad_topic', { listen: 'no-port-here' }).start()).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  test('a malformed redis URL throws INVALID_ARGUMENT when the client is made', () => {
    // The core's URL parser runs in the constructor: it needs no I/O.
    expect(thrown(() => new Client({ ...base, redis: 'redis://127.0.0.1:notaport/0' })).code).toBe('INVALID_ARGUMENT');
  });

  test('an unreachable Redis rejects start with STORE, quickly (waitForRedis: 0)', async () => {
    const port = await freePort();
    const c = new Client({ ...base, redis: `redis://127.0.0.1:${port}/0`, waitForRedis: 0 });
    const started = Date.now();
    await expect(c.start()).rejects.toMatchObject({ code: 'STORE' });
    expect(Date.now() - started).toBeLessThan(5000);
    await c.close();
  });

  test('the reserved topic rejects start with INTERNAL_TOPIC', async () => {
    await expect(mesh.client('bad', '__#internal_channel').start()).rejects.toMatchObject({ code: 'INTERNAL_TOPIC' });
  });

  test('a listen address in use rejects start with BIND, and start can be retried', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as net.AddressInfo;
    const c = mesh.client('bad', 'bad_topic', { listen: `127.0.0.1:${port}` });
    await expect(c.start()).rejects.toMatchObject({ code: 'BIND' });
    expect(await mesh.rdb().keys()).not.toContain('lnr_topic:bad_topic:addr');
    await new Promise((r) => server.close(r));
    await c.start();
    expect(c.address).toBe(`127.0.0.1:${port}`);
  });
});

describe('sending', () => {
  async function pair(options: Partial<ClientOptions> = {}) {
    const a = mesh.client('a', 'topic_a', options);
    const b = mesh.client('b', 'topic_b');
    b.on('message', () => undefined);
    await a.start();
    await b.start();
    return a;
  }

  test('before start throws NOT_RUNNING; after close CLOSED', async () => {
    const a = mesh.client('a', 'topic_a');
    expect(thrown(() => a.sendTo('topic_b', 'x')).code).toBe('NOT_RUNNING');
    expect(thrown(() => a.sendAll('topic_b', 'x')).code).toBe('NOT_RUNNING');
    expect(thrown(() => a.sendToMany('topic_b', ['x'])).code).toBe('NOT_RUNNING');
    await a.start();
    await a.close();
    expect(thrown(() => a.sendTo('topic_b', 'x')).code).toBe('CLOSED');
    expect(thrown(() => a.sendToMany('topic_b', ['x'])).code).toBe('CLOSED');
    await expect(a.start()).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(a.subscribe('news')).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(a.drain()).rejects.toMatchObject({ code: 'CLOSED' });
  });

  test.each<[string, unknown, unknown, string]>([
    ['topic not a string', 42, 'x', 'INVALID_ARGUMENT'],
    ['empty topic', '', 'x', 'INVALID_ARGUMENT'],
    ['own topic', 'topic_a', 'x', 'SELF_TOPIC'],
    ['reserved topic', '__#internal_channel', 'x', 'INTERNAL_TOPIC'],
    ['nobody serves the topic', 'nobody', 'x', 'NO_ADDRESS'],
    ['data a number', 'topic_b', 42, 'INVALID_ARGUMENT'],
    ['data null', 'topic_b', null, 'INVALID_ARGUMENT'],
    ['data undefined', 'topic_b', undefined, 'INVALID_ARGUMENT'],
    ['data a plain object', 'topic_b', { a: 1 }, 'INVALID_ARGUMENT'],
    ['empty string', 'topic_b', '', 'INVALID_ARGUMENT'],
    ['empty Buffer', 'topic_b', Buffer.alloc(0), 'INVALID_ARGUMENT'],
  ])('%s throws %s (sendTo, sendAll and sendToMany)', async (_, topic, data, code) => {
    const a = await pair();
    // A topic nobody serves is refused at once when the client has read it (else the send's
    // look-up reports it: unknown_topic.test.ts).
    if (code === 'NO_ADDRESS') expect(await a.refreshAddressTopic(topic as string)).toBe(false);
    expect(thrown(() => a.sendTo(topic as string, data as string)).code).toBe(code);
    expect(thrown(() => a.sendAll(topic as string, data as string)).code).toBe(code);
    expect(thrown(() => a.sendToMany(topic as string, ['ok', data as string])).code).toBe(code);
  });

  test('an oversize payload throws INVALID_ARGUMENT', async () => {
    const a = await pair({ maxMessageSize: 1024 });
    a.sendTo('topic_b', Buffer.alloc(1024));
    const e = thrown(() => a.sendTo('topic_b', Buffer.alloc(1025)));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/1025/);
  });

  test('subscribe and friends refuse bad topics', async () => {
    const a = mesh.client('a', 'topic_a');
    await expect(a.subscribe('')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(a.subscribe(42 as unknown as string)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(a.subscribe('a:b')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(a.subscribe('__#internal_channel')).rejects.toMatchObject({ code: 'INTERNAL_TOPIC' });
    await expect(a.refreshAddressTopic('')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(a.listAddresses(undefined as unknown as string)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
