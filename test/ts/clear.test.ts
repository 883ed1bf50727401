// clearStoredMessages / clearAddressesOfTopic: refused while running, otherwise exactly the
// deletions of compat spec §2.3.
import { expect, test } from 'vitest';

import { Inbox, freePort, seqOf, seqPayload, sleep, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();
const SENDER_MAP = 'lnr_sender:sender:sender_topic:listener';
const SENDER_NAMES = 'lnr_sender:sender:sender_topic:listener_name'; // liner only, beside SENDER_MAP
const CK_KEY = 'lnr_connection:sender:sender_topic:listener:key';

function without<T extends object>(dump: T, keys: string[]): Partial<T> {
  return Object.fromEntries(Object.entries(dump).filter(([k]) => !keys.includes(k))) as Partial<T>;
}

test('clear is refused while running and changes nothing', async () => {
  const client = mesh.client('client', 'client_topic');
  await client.start();
  const before = await mesh.rdb().dump();
  await expect(client.clearStoredMessages()).rejects.toMatchObject({ code: 'CLEAR_WHILE_RUNNING' });
  await expect(client.clearAddressesOfTopic()).rejects.toMatchObject({ code: 'CLEAR_WHILE_RUNNING' });
  expect(await mesh.rdb().dump()).toEqual(before);
});

test('clear on a fresh store creates nothing', async () => {
  const client = mesh.client('client', 'client_topic');
  await client.clearStoredMessages();
  await client.clearAddressesOfTopic();
  expect(await mesh.rdb().keys()).toEqual([]);
});

/** A running listener that acknowledged 3 messages of a sender that is closed again. */
async function ackedChannel() {
  const inbox = new Inbox();
  const { sender } = await mesh.listenerAndSender(inbox.push);
  for (let i = 1; i <= 3; i++) sender.sendTo('listener_topic', seqPayload(i));
  expect(await inbox.waitCount(3)).toBe(3);
  const rdb = mesh.rdb();
  const ck = (await rdb.get(CK_KEY))!;
  expect(await waitUntil(async () => (await rdb.get(`lnr_connection:${ck}:mess_number`)) === '3', 3000)).toBe(true);
  await sender.close();
  return { inbox, ck };
}

test('clearStoredMessages deletes the channel state only', async () => {
  const { ck } = await ackedChannel();
  const rdb = mesh.rdb();
  await rdb.cmd('RPUSH', `lnr_connection:${ck}:messages`, 'x');
  const before = await rdb.dump();
  expect(before[SENDER_MAP]).toBeDefined();
  const sender = mesh.client('sender', 'sender_topic');
  await sender.clearStoredMessages();
  const deleted = [`lnr_connection:${ck}:messages`, `lnr_connection:${ck}:mess_number`, SENDER_MAP, SENDER_NAMES];
  expect(await rdb.dump()).toEqual(without(before, deleted));
});

test('a running listener accepts the restarted numbering after clearStoredMessages', async () => {
  const { inbox, ck } = await ackedChannel();
  const sender = mesh.client('sender', 'sender_topic');
  await sender.clearStoredMessages();
  await sender.start();
  for (let i = 4; i <= 6; i++) sender.sendTo('listener_topic', seqPayload(i));
  expect(await inbox.waitCount(6), 'messages sent after clearStoredMessages were dropped').toBe(6);
  expect(inbox.items.map((m) => seqOf(m.data))).toEqual([1, 2, 3, 4, 5, 6]);
  const rdb = mesh.rdb();
  expect(await rdb.get(CK_KEY)).toBe(ck);
  expect(await waitUntil(async () => (await rdb.get(`lnr_connection:${ck}:mess_number`)) === '3', 3000)).toBe(true);
});

test('clearStoredMessages drops the queue of an offline listener', async () => {
  const addr = `127.0.0.1:${await freePort()}`;
  const inbox = new Inbox();
  const { listener, sender } = await mesh.listenerAndSender(inbox.push, { listen: addr });
  sender.sendTo('listener_topic', seqPayload(1));
  expect(await inbox.waitCount(1)).toBe(1);
  await listener.close();
  for (let i = 2; i < 12; i++) sender.sendTo('listener_topic', seqPayload(i));
  const rdb = mesh.rdb();
  const ck = await rdb.get(CK_KEY);
  const messagesKey = `lnr_connection:${ck}:messages`;
  expect(await waitUntil(async () => (await rdb.llen(messagesKey)) === 10)).toBe(true);
  await sender.close();
  expect(await rdb.llen(messagesKey)).toBe(10);

  const sender2 = mesh.client('sender', 'sender_topic');
  const before = await rdb.dump();
  await sender2.clearStoredMessages();
  // The queue's hand-over marks (its messages were sent with sendTo) go with it.
  const marksKey = `lnr_connection:${ck}:handover`;
  expect(await rdb.dump()).toEqual(
    without(before, [messagesKey, `lnr_connection:${ck}:mess_number`, marksKey, SENDER_MAP, SENDER_NAMES]),
  );

  const listener2 = mesh.client('listener', 'listener_topic', { listen: addr });
  const inbox2 = new Inbox(listener2);
  await listener2.start();
  await sender2.start();
  await sleep(2000);
  expect(inbox2.items).toEqual([]);
});

test('clearAddressesOfTopic deletes every replica', async () => {
  const r1 = mesh.client('replica1', 'jobs');
  const r2 = mesh.client('replica2', 'jobs');
  await r1.start();
  await r2.start();
  const other = mesh.client('other', 'other_topic');
  await other.start();
  const rdb = mesh.rdb();
  expect(Object.keys(await rdb.hgetall('lnr_topic:jobs:addr'))).toHaveLength(2);
  const before = await rdb.dump();
  const r3 = mesh.client('replica3', 'jobs');
  await r3.clearAddressesOfTopic();
  expect(await rdb.dump()).toEqual(without(before, ['lnr_topic:jobs:addr']));
});
