// Route semantics of liner_broker 1.4.1 (compat spec §6.1): a peer that unsubscribed is no
// longer waited for once refreshAddressTopic resolved; a peer that stopped still is, also by a
// sender that restarted since.
import { expect, test } from 'vitest';

import { Inbox, codeOf, freePort, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

test('after unsubscribe and refreshAddressTopic, at-least-once sends throw NO_ADDRESS at once', async () => {
  const consumer = mesh.client('rs_consumer', 'rs_consumer_topic');
  const producer = mesh.client('rs_producer', 'rs_producer_topic');
  const inbox = new Inbox(consumer);
  await consumer.start();
  await producer.start();
  for (let i = 0; i < 5; i++) {
    const topic = `rs_news_${i}`;
    await consumer.subscribe(topic);
    expect(await waitUntil(() => codeOf(() => producer.sendTo(topic, `before ${i}`)) === undefined, 2000)).toBe(true);
    expect(await inbox.waitCount(i + 1)).toBe(i + 1);
    const pending = await producer.pendingCount();
    await consumer.unsubscribe(topic);
    expect(await producer.refreshAddressTopic(topic)).toBe(false);
    expect(codeOf(() => producer.sendTo(topic, `after ${i}`))).toBe('NO_ADDRESS');
    expect(await producer.pendingCount()).toBe(pending);
  }
});

test('a restarted sender keeps messages for a stopped listener, delivered in order', async () => {
  const listen = `127.0.0.1:${await freePort()}`;
  const b = mesh.client('rs3_b', 'rs3_b_topic', { listen });
  const inbox = new Inbox(b);
  await b.start();
  const a = mesh.client('rs3_a', 'rs3_a_topic');
  await a.start();
  a.sendTo('rs3_b_topic', '1');
  expect(await inbox.waitCount(1)).toBe(1);
  await b.close();
  a.sendTo('rs3_b_topic', '2');
  await a.close();

  const a2 = mesh.client('rs3_a', 'rs3_a_topic');
  await a2.start();
  a2.sendTo('rs3_b_topic', '3');
  // Sent while its look-up reads the (empty) directory and then the listeners a2 remembers:
  // none may be refused in between.
  const more = Array.from({ length: 2000 }, (_, i) => `4.${i}`);
  for (const m of more) a2.sendTo('rs3_b_topic', m);
  // Best effort has no offline route: refused once a2 has read the topic (its first send's
  // look-up runs off the JS thread; one sent before that is dropped with an 'error' event).
  expect(await waitUntil(() => codeOf(() => a2.sendTo('rs3_b_topic', 'best effort', { atLeastOnce: false })) === 'NO_ADDRESS', 5000)).toBe(true);

  const b2 = mesh.client('rs3_b', 'rs3_b_topic', { listen });
  const inbox2 = new Inbox(b2);
  await b2.start();
  expect(await inbox2.waitCount(2 + more.length, 15_000)).toBe(2 + more.length);
  expect(inbox2.items.map((m) => m.data.toString())).toEqual(['2', '3', ...more]);
});
