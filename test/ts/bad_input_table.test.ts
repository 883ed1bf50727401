// The bad-input table of the TypeScript API: every public method with names that are not usable
// (wrong type, empty, embedded NUL, lone surrogate), and every method after close. Each gives its
// documented error (LinerError with a stable code); nothing crashes, nothing is registered.
import { describe, expect, test } from 'vitest';

import { Client, LinerError, redisUrl, useMesh } from './support/testkit.js';

const mesh = useMesh();

const BAD_NAMES: [string, unknown][] = [
  ['a number', 42],
  ['null', null],
  ['undefined', undefined],
  ['an object', { topic: 'x' }],
  ['empty', ''],
  ['with a NUL', 'a\0b'],
  ['only a NUL', '\0'],
  ['with a lone surrogate', 'a\ud800b'],
];

type TopicCall = (c: Client, topic: string) => Promise<unknown> | unknown;
const TOPIC_METHODS: [string, TopicCall][] = [
  ['subscribe', (c, t) => c.subscribe(t)],
  ['unsubscribe', (c, t) => c.unsubscribe(t)],
  ['refreshAddressTopic', (c, t) => c.refreshAddressTopic(t)],
  ['listAddresses', (c, t) => c.listAddresses(t)],
  ['sendTo', (c, t) => c.sendTo(t, 'x')],
  ['sendAll', (c, t) => c.sendAll(t, 'x')],
  ['sendToMany', (c, t) => c.sendToMany(t, ['x'])],
];

async function codeOf(call: () => Promise<unknown> | unknown): Promise<string> {
  try {
    await call();
  } catch (e) {
    expect(e).toBeInstanceOf(LinerError);
    expect((e as LinerError).message).not.toBe('');
    return (e as LinerError).code;
  }
  return 'no error';
}

describe('names', () => {
  test.each(BAD_NAMES)('a client name that is %s is refused with INVALID_ARGUMENT', async (_, bad) => {
    expect(await codeOf(() => new Client({ name: bad as string, topic: 't', redis: redisUrl }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(await codeOf(() => new Client({ name: 'n', topic: bad as string, redis: redisUrl }))).toBe(
      'INVALID_ARGUMENT',
    );
  });

  for (const [method, call] of TOPIC_METHODS) {
    test.each(BAD_NAMES)(`${method} with a topic that is %s: INVALID_ARGUMENT`, async (_, bad) => {
      const c = mesh.client('table', 'table_topic');
      await c.start();
      expect(await codeOf(() => call(c, bad as string))).toBe('INVALID_ARGUMENT');
      // Nothing was registered under a truncated or altered name.
      const keys = await mesh.rdb().keys();
      expect(keys.filter((k) => k.startsWith('lnr_topic:a:') || k.includes('\ufffd'))).toEqual([]);
    });
  }
});

describe('after close', () => {
  const rejecting: [string, (c: Client) => Promise<unknown>][] = [
    ['start', (c) => c.start()],
    ['subscribe', (c) => c.subscribe('x')],
    ['unsubscribe', (c) => c.unsubscribe('x')],
    ['refreshAddressTopic', (c) => c.refreshAddressTopic('x')],
    ['listAddresses', (c) => c.listAddresses('x')],
    ['pendingCount', (c) => c.pendingCount()],
    ['pendingByPeer', (c) => c.pendingByPeer()],
    ['clearStoredMessages', (c) => c.clearStoredMessages()],
    ['clearAddressesOfTopic', (c) => c.clearAddressesOfTopic()],
    ['drain', (c) => c.drain()],
  ];

  test.each(rejecting)('%s rejects with CLOSED', async (_, call) => {
    const c = mesh.client('closed', 'closed_topic');
    await c.start();
    await c.close();
    expect(await codeOf(() => call(c))).toBe('CLOSED');
  });

  test('sendTo, sendAll and setAdvertiseAddress throw CLOSED; close and stop again resolve; stats still answer', async () => {
    const c = mesh.client('closed', 'closed_topic');
    await c.start();
    await c.close();
    expect(await codeOf(() => c.sendTo('x', 'y'))).toBe('CLOSED');
    expect(await codeOf(() => c.sendAll('x', 'y'))).toBe('CLOSED');
    expect(await codeOf(() => c.setAdvertiseAddress('127.0.0.1:0'))).toBe('CLOSED');
    await c.close();  // double close
    await c.stop();
    expect(c.isRunning).toBe(false);
    expect(typeof c.stats().messagesSent).toBe('number');
  });
});
