// At-least-once messages to a listener that went offline are stored in Redis and delivered, in
// order and once, when it comes back; best-effort messages to it are dropped.
import { expect, test } from 'vitest';

import {
  FLAG_AT_LEAST_ONCE,
  Inbox,
  LinerError,
  freePort,
  parseFrame,
  seqOf,
  seqPayload,
  sleep,
  useMesh,
  waitUntil,
} from './support/testkit.js';

const mesh = useMesh();
const N = 50;
const CK_KEY = 'lnr_connection:sender:sender_topic:listener:key';

/** A sender that talked to the listener, and the listener's fixed address; the listener has closed. */
async function wentOffline() {
  const addr = `127.0.0.1:${await freePort()}`;
  const inbox = new Inbox();
  const { listener, sender } = await mesh.listenerAndSender(inbox.push, { listen: addr });
  expect(listener.address).toBe(addr);
  sender.sendTo('listener_topic', 'warm-up');
  expect(await inbox.waitCount(1)).toBe(1);
  await listener.close();
  expect(await mesh.rdb().hgetall('lnr_topic:listener_topic:addr')).toEqual({});
  return { sender, addr };
}

test('at-least-once to an offline listener is stored, then delivered once and in order', async () => {
  const { sender, addr } = await wentOffline();
  const rdb = mesh.rdb();
  for (let i = 1; i <= N; i++) sender.sendTo('listener_topic', seqPayload(i));
  // The connection key exists as soon as sendTo returned.
  const ck = await rdb.get(CK_KEY);
  expect(ck).not.toBeNull();
  const messagesKey = `lnr_connection:${ck}:messages`;
  expect(await waitUntil(async () => (await rdb.llen(messagesKey)) === N)).toBe(true);

  const frames = (await rdb.lrange(messagesKey)).map(parseFrame);
  expect(frames.map((f) => Number(f.number))).toEqual(Array.from({ length: N }, (_, i) => i + 2));
  expect(new Set(frames.map((f) => f.ck))).toEqual(new Set([Number(ck)]));
  expect(frames.every((f) => (f.flags & FLAG_AT_LEAST_ONCE) !== 0)).toBe(true);
  expect(frames.map((f) => seqOf(f.data))).toEqual(Array.from({ length: N }, (_, i) => i + 1));

  const listener = mesh.client('listener', 'listener_topic', { listen: addr });
  const inbox = new Inbox(listener);
  await listener.start();
  expect(await inbox.waitCount(N, 15_000)).toBe(N);
  await sleep(500); // a duplicate would show up here
  expect(inbox.items.map((m) => seqOf(m.data))).toEqual(Array.from({ length: N }, (_, i) => i + 1));
  expect(new Set(inbox.items.map((m) => `${m.to} ${m.from}`))).toEqual(new Set(['listener_topic sender_topic']));
  expect(await waitUntil(async () => (await rdb.llen(messagesKey)) === 0)).toBe(true);
  expect(await waitUntil(async () => (await rdb.get(`lnr_connection:${ck}:mess_number`)) === String(N + 1), 3000)).toBe(true);
});

test('stored messages survive a sender restart', async () => {
  const { sender, addr } = await wentOffline();
  const rdb = mesh.rdb();
  for (let i = 1; i <= N; i++) sender.sendTo('listener_topic', seqPayload(i));
  const messagesKey = `lnr_connection:${await rdb.get(CK_KEY)}:messages`;
  expect(await waitUntil(async () => (await rdb.llen(messagesKey)) === N)).toBe(true);
  await sender.close();
  expect(await rdb.llen(messagesKey)).toBe(N);

  // Both come back: the new sender (same identity) resumes the channel without any send.
  const listener = mesh.client('listener', 'listener_topic', { listen: addr });
  const inbox = new Inbox(listener);
  await listener.start();
  const sender2 = mesh.client('sender', 'sender_topic');
  await sender2.start();
  expect(await inbox.waitCount(N, 15_000)).toBe(N);
  await sleep(500);
  expect(inbox.items.map((m) => seqOf(m.data))).toEqual(Array.from({ length: N }, (_, i) => i + 1));
  expect(await waitUntil(async () => (await rdb.llen(messagesKey)) === 0)).toBe(true);
});

test('best effort to an offline listener is neither stored nor delivered later', async () => {
  const { sender, addr } = await wentOffline();
  const rdb = mesh.rdb();
  for (let i = 1; i <= N; i++) {
    try {
      sender.sendTo('listener_topic', seqPayload(i), { atLeastOnce: false });
    } catch (e) {
      expect((e as LinerError).code).toBe('NO_ADDRESS');
    }
  }
  const ck = await rdb.get(CK_KEY);
  await sleep(1500);
  expect(await rdb.llen(`lnr_connection:${ck}:messages`)).toBe(0);

  const listener = mesh.client('listener', 'listener_topic', { listen: addr });
  const inbox = new Inbox(listener);
  await listener.start();
  await sleep(2000);
  expect(inbox.items).toEqual([]);
  // The channel still works for new messages.
  const sent = await waitUntil(() => {
    try {
      sender.sendTo('listener_topic', 'new');
      return true;
    } catch {
      return false;
    }
  }, 2000);
  expect(sent).toBe(true);
  expect(await inbox.waitCount(1)).toBe(1);
  expect(inbox.payloads()).toEqual(['new']);
});
