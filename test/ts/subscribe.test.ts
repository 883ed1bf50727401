// subscribe() works before and after start(); unsubscribe() at runtime stops delivery and makes
// later sends throw NO_ADDRESS; a client cannot subscribe to its own topic.
import { expect, test } from 'vitest';

import { Inbox, type StatusEvent, codeOf, sleep, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

test('subscribe before start', async () => {
  const consumer = mesh.client('consumer', 'consumer_topic');
  const producer = mesh.client('producer', 'producer_topic');
  const inbox = new Inbox(consumer);
  await consumer.subscribe('news');
  await consumer.start();
  await producer.start();
  // The directory holds the bound address, not the "127.0.0.1:0" given at creation.
  expect(await mesh.rdb().hgetall('lnr_topic:news:addr')).toEqual({ [consumer.address]: 'consumer' });
  producer.sendTo('news', 'n1');
  producer.sendTo('consumer_topic', 'direct');
  expect(await inbox.waitCount(2)).toBe(2);
  expect(inbox.items.map((m) => [m.to, m.from, m.data.toString()]).sort()).toEqual([
    ['consumer_topic', 'producer_topic', 'direct'],
    ['news', 'producer_topic', 'n1'],
  ]);
});

test('subscribe after start', async () => {
  const consumer = mesh.client('consumer', 'consumer_topic');
  const producer = mesh.client('producer', 'producer_topic');
  const inbox = new Inbox(consumer);
  await consumer.start();
  await producer.start();
  // Once the producer read the topic (a refresh, or its first send's look-up), nobody serving
  // it is known at once.
  expect(await producer.refreshAddressTopic('news')).toBe(false);
  expect(codeOf(() => producer.sendTo('news', 'nobody yet'))).toBe('NO_ADDRESS');
  await consumer.subscribe('news');
  expect(await mesh.rdb().hgetall('lnr_topic:news:addr')).toEqual({ [consumer.address]: 'consumer' });
  expect(await waitUntil(() => codeOf(() => producer.sendTo('news', 'n1')) === undefined, 2000)).toBe(true);
  expect(await inbox.waitCount(1)).toBe(1);
  expect(inbox.items).toEqual([{ to: 'news', from: 'producer_topic', data: Buffer.from('n1') }]);
});

test('subscribing to the own topic is refused with SELF_TOPIC', async () => {
  const consumer = mesh.client('consumer', 'consumer_topic');
  await expect(consumer.subscribe('consumer_topic')).rejects.toMatchObject({ code: 'SELF_TOPIC' });
  await consumer.start();
  await expect(consumer.subscribe('consumer_topic')).rejects.toMatchObject({ code: 'SELF_TOPIC' });
  await expect(consumer.unsubscribe('consumer_topic')).rejects.toMatchObject({ code: 'SELF_TOPIC' });
});

test('unsubscribe at runtime stops delivery and later sends throw NO_ADDRESS', async () => {
  const consumer = mesh.client('consumer', 'consumer_topic');
  const producer = mesh.client('producer', 'producer_topic');
  const inbox = new Inbox(consumer);
  const heard: StatusEvent[] = [];
  producer.on('status', (e) => heard.push(e));
  await consumer.subscribe('news');
  await consumer.start();
  await producer.start();
  producer.sendTo('news', 'before');
  expect(await inbox.waitCount(1)).toBe(1);

  await consumer.unsubscribe('news');
  expect(await mesh.rdb().hgetall('lnr_topic:news:addr')).toEqual({});
  // The producer hears of it within a fraction of a second. (It does not send meanwhile: a send
  // racing the core's handling of the unsubscription can keep the topic alive in the sender's
  // channel - see the core report.)
  expect(await waitUntil(() => heard.some((e) => e.kind === 'peerUnsubscribed' && e.topic === 'news'), 1000)).toBe(true);
  await sleep(100);
  expect(codeOf(() => producer.sendTo('news', 'after'))).toBe('NO_ADDRESS');
  expect(codeOf(() => producer.sendAll('news', 'after'))).toBe('NO_ADDRESS');
  await sleep(500);
  expect(inbox.items.filter((m) => m.to === 'news').map((m) => m.data.toString())).toEqual(['before']);
  producer.sendTo('consumer_topic', 'direct');
  expect(await inbox.waitCount(2)).toBe(2);
  expect(inbox.items.at(-1)).toEqual({ to: 'consumer_topic', from: 'producer_topic', data: Buffer.from('direct') });
});

test('unsubscribe before start', async () => {
  const consumer = mesh.client('consumer', 'consumer_topic');
  const producer = mesh.client('producer', 'producer_topic');
  await consumer.subscribe('news');
  await consumer.unsubscribe('news');
  await consumer.start();
  await producer.start();
  expect(await mesh.rdb().hgetall('lnr_topic:news:addr')).toEqual({});
  expect(await producer.refreshAddressTopic('news')).toBe(false);
  expect(codeOf(() => producer.sendTo('news', 'x'))).toBe('NO_ADDRESS');
});
