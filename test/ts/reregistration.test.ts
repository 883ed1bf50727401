// A Redis that comes back empty (restarted without persistence): every running client puts
// its directory entries and keys back within 5 s, so that a client started afterwards finds
// it and reaches it, subscriptions included.
import { expect, test } from 'vitest';

import { PrivateRedis } from './support/private_redis.js';
import { Client, Inbox, waitUntil } from './support/testkit.js';

test('running clients register again after Redis restarted empty; a newcomer reaches them', async () => {
  const redis = await PrivateRedis.start();
  const made: Client[] = [];
  try {
    const worker = new Client({ name: 'rr_worker', topic: 'rr_jobs', redis: redis.url });
    const producer = new Client({ name: 'rr_producer', topic: 'rr_producer_topic', redis: redis.url });
    made.push(producer, worker);
    const inbox = new Inbox(worker);
    await worker.start();
    await worker.subscribe('rr_news');
    await producer.start();
    producer.sendTo('rr_jobs', 'before');
    expect(await inbox.waitCount(1)).toBe(1);

    await redis.restart();
    const back = Date.now();
    producer.sendTo('rr_jobs', 'after the restart'); // a known route keeps working meanwhile
    expect(await inbox.waitCount(2, 5000)).toBe(2);

    const newcomer = new Client({ name: 'rr_newcomer', topic: 'rr_newcomer_topic', redis: redis.url });
    made.push(newcomer);
    await newcomer.start();
    const listed = async (topic: string) => (await newcomer.listAddresses(topic)).map((a) => a.name);
    expect(await waitUntil(async () => (await listed('rr_jobs')).includes('rr_worker'), 5000)).toBe(true);
    expect(await waitUntil(async () => (await listed('rr_news')).includes('rr_worker'), 5000)).toBe(true);
    expect(Date.now() - back).toBeLessThan(5000);
    expect(await newcomer.refreshAddressTopic('rr_news')).toBe(true);
    newcomer.sendTo('rr_jobs', 'from the newcomer');
    newcomer.sendAll('rr_news', 'news');
    expect(await inbox.waitCount(4, 5000)).toBe(4);
    expect(inbox.items.map((m) => m.data.toString()).sort()).toEqual(['after the restart', 'before', 'from the newcomer', 'news']);
  } finally {
    for (const c of made) await c.close();
    await redis.dispose();
  }
}, 30_000);
