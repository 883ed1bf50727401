// start() waits for a Redis that is not up yet (services start in any order): up to
// waitForRedis ms (default 10 s), then rejects with STORE; 0 rejects at once.
import { expect, test } from 'vitest';

import { PrivateRedis } from './support/private_redis.js';
import { Client, Inbox, codeOf, sleep } from './support/testkit.js';

test('start() waits for a Redis that comes up late, then the client works', async () => {
  const redis = await PrivateRedis.start();
  const made: Client[] = [];
  try {
    await redis.stop();
    const late = new Client({ name: 'wr_late', topic: 'wr_late_topic', redis: redis.url });
    made.push(late);
    const started = Date.now();
    const starting = late.start();
    await sleep(1500);
    expect(late.isRunning).toBe(false);
    await redis.restart();
    await starting;
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(late.isRunning).toBe(true);
    const peer = new Client({ name: 'wr_peer', topic: 'wr_peer_topic', redis: redis.url });
    made.push(peer);
    const inbox = new Inbox(late);
    await peer.start();
    expect(codeOf(() => peer.sendTo('wr_late_topic', 'hello'))).toBeUndefined();
    expect(await inbox.waitCount(1)).toBe(1);
  } finally {
    for (const c of made) await c.close();
    await redis.dispose();
  }
}, 20_000);

test('a Redis that stays down rejects start() with STORE after waitForRedis, not before', async () => {
  const redis = await PrivateRedis.start();
  try {
    await redis.stop();
    const c = new Client({ name: 'wr_down', topic: 'wr_down_topic', redis: redis.url, waitForRedis: 1500 });
    const started = Date.now();
    await expect(c.start()).rejects.toMatchObject({ code: 'STORE' });
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(1400);
    expect(took).toBeLessThan(6000);
    expect(c.isRunning).toBe(false);
    await c.close();
  } finally {
    await redis.dispose();
  }
}, 20_000);

test('waitForRedis must be an integer from 0 to an hour', async () => {
  const base = { name: 'wr_bad', topic: 'wr_bad_topic' };
  for (const bad of [-1, 1.5, '10', Number.NaN]) {
    expect(() => new Client({ ...base, waitForRedis: bad as number })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  }
  const c = new Client({ ...base, waitForRedis: 3_600_001 });
  await expect(c.start()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  await c.close();
});
