// Status events reach JS as `status` events: connections in both directions, and directory
// changes (subscribe, unsubscribe, leave) on topics the client uses.
import { expect, test } from 'vitest';

import { Inbox, type StatusEvent, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

function recorder(events: StatusEvent[]) {
  return (kind: string, topic: string) => waitUntil(() => events.some((e) => e.kind === kind && e.topic === topic), 3000);
}

test('connections and directory changes are reported', async () => {
  const consumer = mesh.client('status_consumer', 'status_consumer_topic');
  const sender = mesh.client('status_sender', 'status_sender_topic');
  const consumerEvents: StatusEvent[] = [];
  const senderEvents: StatusEvent[] = [];
  consumer.on('status', (e) => consumerEvents.push(e));
  sender.on('status', (e) => senderEvents.push(e));
  const inbox = new Inbox(consumer);
  await consumer.subscribe('status_news');
  await consumer.start();
  await sender.start();
  sender.sendTo('status_news', 'hello');
  expect(await inbox.waitCount(1)).toBe(1);

  const senderSaw = recorder(senderEvents);
  const consumerSaw = recorder(consumerEvents);
  expect(await senderSaw('peerConnected', 'status_news')).toBe(true);
  expect(senderEvents.find((e) => e.kind === 'peerConnected')!.peer).toBe(consumer.address);
  expect(await consumerSaw('peerConnected', 'status_sender_topic')).toBe(true);

  // A second subscriber joins the topic the sender uses, then leaves it.
  const second = mesh.client('status_second', 'status_second_topic');
  await second.start();
  await second.subscribe('status_news');
  expect(await senderSaw('peerSubscribed', 'status_news')).toBe(true);
  expect(senderEvents.find((e) => e.kind === 'peerSubscribed')!.peer).toBe(second.address);
  await second.unsubscribe('status_news');
  expect(await senderSaw('peerUnsubscribed', 'status_news')).toBe(true);

  // The consumer closes: the sender hears that its peer went away.
  await consumer.close();
  expect(await senderSaw('peerDisconnected', 'status_news')).toBe(true);
});
