// A send never waits on Redis on the JS thread. A topic the client has not read yet is looked up
// on the core's own thread while the message waits; nobody serving it is reported by an 'error'
// event (code SEND) naming the topic, and from then on sends to it throw NO_ADDRESS at once.
// With Redis paused, sends to known peers keep flowing and a send to a new topic returns at once.
import { performance } from 'node:perf_hooks';

import { expect, test } from 'vitest';

import type { LinerStatusError } from '../../dist/index.mjs';
import { PrivateRedis } from './support/private_redis.js';
import { Redis } from './support/redis.js';
import { Client, Inbox, type LinerError, codeOf, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

test('sends to a topic not read yet return at once and arrive in order once it is looked up', async () => {
  const listener = mesh.client('listener', 'fresh_topic');
  const sender = mesh.client('sender', 'sender_topic');
  const inbox = new Inbox(listener);
  await listener.start();
  await sender.start();
  const sent: string[] = [];
  for (let i = 0; i < 200; i++) {
    sent.push(`m${i}`);
    sender.sendTo('fresh_topic', `m${i}`);
  }
  sender.sendToMany('fresh_topic', ['b0', 'b1', 'b2']);
  sent.push('b0', 'b1', 'b2');
  expect(await inbox.waitCount(sent.length, 10_000)).toBe(sent.length);
  expect(inbox.items.map((m) => m.data.toString())).toEqual(sent);
});

test("a topic nobody serves: the send's look-up reports an 'error' (SEND) naming it; later sends throw NO_ADDRESS", async () => {
  const sender = mesh.client('sender', 'sender_topic');
  const errors: LinerStatusError[] = [];
  sender.on('error', (e) => errors.push(e as LinerStatusError));
  await sender.start();
  expect(codeOf(() => sender.sendTo('nobody_here', 'lost'))).toBeUndefined();
  expect(await waitUntil(() => errors.length > 0, 5000)).toBe(true);
  expect(errors[0]!.code).toBe('SEND');
  expect(errors[0]!.topic).toBe('nobody_here');
  expect(errors[0]!.message).toMatch(/1 message to topic nobody_here dropped: not found addr for topic nobody_here/);
  expect(codeOf(() => sender.sendTo('nobody_here', 'refused'))).toBe('NO_ADDRESS');
  expect(codeOf(() => sender.sendAll('nobody_here', 'refused'))).toBe('NO_ADDRESS');
  expect(sender.stats().dropped).toBe(1);
});

test('with Redis paused, sends never block the event loop, known peers keep flowing, a new topic waits', async () => {
  const redis = await PrivateRedis.start();
  const known = new Client({ name: 'known', topic: 'known_topic', redis: redis.url });
  const fresh = new Client({ name: 'fresh', topic: 'fresh_topic', redis: redis.url });
  const sender = new Client({ name: 'sender', topic: 'sender_topic', redis: redis.url });
  const rdb = await Redis.connect(redis.url);
  try {
    const knownInbox = new Inbox(known);
    const freshInbox = new Inbox(fresh);
    await known.start();
    await fresh.start();
    await sender.start();
    sender.sendTo('known_topic', 'warm-up');
    expect(await knownInbox.waitCount(1)).toBe(1);

    // Sends 50 best-effort messages per event-loop turn for `ms`, timing every liner call.
    // (At-least-once ones are held until their ack is in Redis: with Redis paused they flow
    // until the peer's send queue is full, then BUSY - fast, but not at full rate.)
    let slowest = 0;
    let busy = 0;
    const slowCalls: number[] = [];
    const pump = async (ms: number): Promise<number> => {
      let sent = 0;
      const end = performance.now() + ms;
      while (performance.now() < end) {
        for (let i = 0; i < 50; i++) {
          const t0 = performance.now();
          try {
            sender.sendTo('known_topic', 'x'.repeat(100), { atLeastOnce: false });
            sent++;
          } catch (e) {
            if ((e as LinerError).code !== 'BUSY') throw e;
            busy++;
          }
          const took = performance.now() - t0;
          slowest = Math.max(slowest, took);
          if (took > 1) slowCalls.push(took);
        }
        await new Promise((r) => setImmediate(r));
      }
      return sent;
    };
    const before = await pump(1000);
    const slowestBefore = slowest;
    slowest = 0;
    const deliveredBefore = knownInbox.length;
    // Every bound below is against the pause (3 s), never against this machine's speed: a call
    // that waited on Redis would take until the pause ends, a scheduling hiccup takes milliseconds.
    const pauseMs = 3000;
    await rdb.cmd('CLIENT', 'PAUSE', String(pauseMs));
    const paused = performance.now();
    const t0 = performance.now();
    sender.sendTo('fresh_topic', 'while paused'); // not read yet: its look-up waits for Redis
    const freshCall = performance.now() - t0;
    const during = await pump(pauseMs / 2);
    const deliveredDuring = knownInbox.length - deliveredBefore;
    const stillPaused = performance.now() - paused < pauseMs;
    console.log(`paused redis: ${before} sends in 1 s before, ${during} in ${pauseMs / 2} ms during (${deliveredDuring} delivered); slowest call ${slowestBefore.toFixed(2)} ms before, ${slowest.toFixed(2)} ms during; new topic call ${freshCall.toFixed(2)} ms; busy ${busy}; over 1 ms: ${slowCalls.length}`);

    expect(freshCall).toBeLessThan(pauseMs / 3);
    expect(slowest).toBeLessThan(pauseMs / 3);
    // The known peer got messages while Redis was still paused.
    expect(stillPaused).toBe(true);
    expect(deliveredDuring).toBeGreaterThan(0);
    expect(freshInbox.length).toBe(0);
    expect(await freshInbox.waitCount(1, 10_000)).toBe(1);
    expect(performance.now() - paused).toBeGreaterThan(pauseMs - 500); // it did wait for Redis
  } finally {
    rdb.close();
    await sender.close();
    await fresh.close();
    await known.close();
    await redis.dispose();
  }
});
