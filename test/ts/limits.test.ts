// Limits: per client (ClientOptions: maxMessageSize, compressThreshold, maxSendQueueBytes,
// maxSendQueueMessages / maxSendQueue; absent or 0 = process-wide) and process-wide
// (getLimits/setLimits). A payload above the max size is refused by the sender
// (INVALID_ARGUMENT) and by the receiver (it closes the connection); a full send queue throws
// BUSY and recovers.
import { randomBytes } from 'node:crypto';

import { afterEach, expect, test } from 'vitest';

import { getLimits, setLimits } from '../../dist/index.mjs';
import {
  Client,
  Inbox,
  LinerError,
  type StatusEvent,
  redisUrl,
  sleep,
  stalledPeer,
  useMesh,
  waitUntil,
} from './support/testkit.js';

const mesh = useMesh();
const DEFAULTS = {
  maxMessageSize: 2 ** 30 - 21,
  compressThreshold: 1024 * 1024,
  maxSendQueueMessages: 0,
  maxSendQueueBytes: 8 * 1024 * 1024,
  leaseMs: 7000,
};

afterEach(() => setLimits(DEFAULTS)); // process-wide: this file's process only

/**
 * Opens `client`'s channel to the stalled peer with one small message. Until it is open, messages
 * wait for it under the looser waiting caps (4 byte caps), which are not what these tests measure.
 */
async function openChannel(client: Client, topic: string, peer: { connections: () => number }): Promise<void> {
  const before = peer.connections();
  client.sendTo(topic, 'open', { atLeastOnce: false });
  expect(await waitUntil(() => peer.connections() > before && client.stats().sendQueueMessages === 0, 5000)).toBe(true);
}

/**
 * Sends best-effort `payload` until BUSY, again until the queue stays full (until the kernel's
 * socket buffers are full too, the sender keeps moving the queue into them); returns how many
 * were accepted.
 */
async function fillUntilBusy(client: Client, topic: string, payload: Buffer, full: () => boolean): Promise<number> {
  let accepted = 0;
  for (let round = 0; round < 100; round++) {
    for (;;) {
      try {
        client.sendTo(topic, payload, { atLeastOnce: false });
        if (++accepted % 16 === 0) await sleep(1);
      } catch (e) {
        expect(e).toBeInstanceOf(LinerError);
        expect((e as LinerError).code).toBe('BUSY');
        break;
      }
      if (accepted > 20_000) throw new Error('never BUSY');
    }
    await sleep(50);
    if (full()) return accepted;
  }
  throw new Error('the queue never stayed full');
}

test('getLimits gives the defaults; setLimits changes what it is given, all or nothing', () => {
  expect(getLimits()).toEqual(DEFAULTS);
  setLimits({ maxMessageSize: 4096, maxSendQueue: 10 });
  expect(getLimits()).toEqual({ ...DEFAULTS, maxMessageSize: 4096, maxSendQueueMessages: 10 });
  setLimits({ compressThreshold: 100, maxSendQueueBytes: 1 << 20, maxSendQueueMessages: 0, leaseMs: 3000 });
  expect(getLimits()).toEqual({ maxMessageSize: 4096, compressThreshold: 100, maxSendQueueMessages: 0, maxSendQueueBytes: 1 << 20, leaseMs: 3000 });
  const before = getLimits();
  for (const bad of [
    { maxMessageSize: 0 },
    { maxMessageSize: 2 ** 30 },
    { maxMessageSize: -1 },
    { compressThreshold: 0 },
    { maxSendQueueBytes: 0 },
    { maxSendQueueMessages: -1 },
    { maxSendQueueMessages: 1.5 },
    { maxSendQueueBytes: '1000' as unknown as number },
    { maxSendQueue: 3, maxSendQueueMessages: 4 },
    { leaseMs: 2999 },
    { leaseMs: 3_600_001 },
    { compressThreshold: 10, maxMessageSize: 0 }, // one bad value: nothing changes
  ]) {
    expect(() => setLimits(bad), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  }
  expect(() => setLimits(null as unknown as object)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  expect(getLimits()).toEqual(before);
});

test('limit options are checked by the constructor', () => {
  const base = { name: 'c', topic: 'c_topic', redis: redisUrl };
  for (const bad of [
    { maxMessageSize: 2 ** 30 },
    { maxMessageSize: -5 },
    { compressThreshold: 1.25 },
    { maxSendQueueBytes: Number.NaN },
    { maxSendQueue: 3, maxSendQueueMessages: 4 },
  ]) {
    expect(() => new Client({ ...base, ...bad }), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  }
  for (const good of [{ maxMessageSize: 2 ** 30 - 21 }, { maxMessageSize: 0 }, { maxSendQueue: 3, maxSendQueueMessages: 3 }]) {
    void new Client({ ...base, ...good }).close();
  }
});

test("a limit option out of range throws the core's message, which says 0 is the process-wide value", () => {
  const base = { name: 'c', topic: 'c_topic', redis: redisUrl };
  expect(() => new Client({ ...base, maxMessageSize: 2 ** 30 })).toThrow(
    expect.objectContaining({
      code: 'INVALID_ARGUMENT',
      reason: 'max message size must be from 1 to 1073741803 bytes, or 0 for the process-wide value, not 1073741824',
    }),
  );
  expect(() => setLimits({ maxMessageSize: -1 })).toThrow(
    expect.objectContaining({ code: 'INVALID_ARGUMENT', reason: 'maxMessageSize must be a non-negative integer, not -1' }),
  );
});

test('maxMessageSize: the sender refuses a larger payload with INVALID_ARGUMENT (own option, else process-wide)', async () => {
  const listener = mesh.client('listener', 'listener_topic');
  const inbox = new Inbox(listener);
  await listener.start();
  const own = mesh.client('own', 'own_topic', { maxMessageSize: 1000 });
  const shared = mesh.client('shared', 'shared_topic', { maxMessageSize: 0 }); // 0: process-wide
  await own.start();
  await shared.start();

  own.sendTo('listener_topic', Buffer.alloc(1000, 'a'));
  expect(() => own.sendTo('listener_topic', Buffer.alloc(1001, 'a'))).toThrow(
    expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/1001 bytes exceeds .* 1000/) }),
  );
  expect(() => own.sendAll('listener_topic', Buffer.alloc(1001, 'a'))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));

  shared.sendTo('listener_topic', Buffer.alloc(5000, 'b'));
  setLimits({ maxMessageSize: 2000 }); // applies to running clients at their next send
  expect(() => shared.sendTo('listener_topic', Buffer.alloc(2001, 'b'))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  shared.sendTo('listener_topic', Buffer.alloc(2000, 'b'));
  own.sendTo('listener_topic', Buffer.alloc(1000, 'c')); // its own limit still wins
  expect(await inbox.waitCount(4)).toBe(4);
  // Two senders: order only holds per sender.
  const sizes = (from: string) => inbox.items.filter((m) => m.from === from).map((m) => m.data.length);
  expect(sizes('own_topic')).toEqual([1000, 1000]);
  expect(sizes('shared_topic')).toEqual([5000, 2000]);
});

test('maxMessageSize: the receiver refuses a larger message alone and its sender is told which', async () => {
  const listener = mesh.client('listener', 'listener_topic', { maxMessageSize: 1000 });
  const inbox = new Inbox(listener);
  await listener.start();
  const sender = mesh.client('sender', 'sender_topic');
  const events: StatusEvent[] = [];
  sender.on('status', (e) => events.push(e));
  sender.on('error', () => {}); // sendError also comes as an 'error' event
  await sender.start();
  sender.sendTo('listener_topic', 'small');
  expect(await inbox.waitCount(1)).toBe(1);

  sender.sendTo('listener_topic', randomBytes(5000)); // incompressible, at-least-once
  sender.sendTo('listener_topic', 'after');
  expect(await inbox.waitCount(2)).toBe(2);
  const refused = await waitUntil(
    () => events.find((e) => e.kind === 'sendError' && e.message.includes('message 2 refused')),
    3000,
  );
  expect(refused?.topic).toBe('listener_topic');
  // The connection stayed: nothing was lost or reconnected, and the big one never arrives.
  expect(events.some((e) => e.kind === 'peerDisconnected' || e.kind === 'routeLost')).toBe(false);
  await sleep(200);
  expect(inbox.payloads()).toEqual(['small', 'after']);
});

test('compressThreshold: payloads above it are compressed on the wire (own option, else process-wide)', async () => {
  const listener = mesh.client('listener', 'listener_topic');
  const inbox = new Inbox(listener);
  await listener.start();
  const compressing = mesh.client('compressing', 'compressing_topic', { compressThreshold: 1000 });
  const plain = mesh.client('plain', 'plain_topic');
  await compressing.start();
  await plain.start();
  const payload = Buffer.alloc(100_000, 'z');
  compressing.sendTo('listener_topic', payload);
  plain.sendTo('listener_topic', payload);
  expect(await inbox.waitCount(2)).toBe(2);
  expect(inbox.items.every((m) => m.data.equals(payload))).toBe(true);
  await waitUntil(() => compressing.stats().messagesSent === 1 && plain.stats().messagesSent === 1);
  expect(compressing.stats().bytesSent).toBeLessThan(10_000);
  expect(plain.stats().bytesSent).toBeGreaterThan(100_000);

  setLimits({ compressThreshold: 1000 }); // now the plain one compresses too
  plain.sendTo('listener_topic', payload);
  expect(await inbox.waitCount(3)).toBe(3);
  await waitUntil(() => plain.stats().messagesSent === 2);
  expect(plain.stats().bytesSent).toBeLessThan(110_000);
});

test('maxSendQueueBytes: a full queue throws BUSY, and sending works again once it drained', async () => {
  const peer = await stalledPeer(mesh.rdb(), 'stalled');
  try {
    const sender = mesh.client('sender', 'sender_topic', { maxSendQueueBytes: 1 << 20 });
    const busy: StatusEvent[] = [];
    sender.on('busy', (e) => busy.push(e));
    await sender.start();
    await openChannel(sender, 'stalled', peer);
    const payload = Buffer.alloc(64 * 1024, 'q');
    const accepted = await fillUntilBusy(sender, 'stalled', payload, () => sender.stats().sendQueueBytes > 512 * 1024);
    expect(sender.stats().sendQueueBytes).toBeLessThanOrEqual(1 << 20);
    expect(await waitUntil(() => busy.length > 0, 1000)).toBe(true);
    peer.resume();
    await sender.drain();
    expect(await waitUntil(() => sender.stats().sendQueueBytes < 512 * 1024, 5000)).toBe(true);
    sender.sendTo('stalled', payload, { atLeastOnce: false });
    expect(await waitUntil(() => peer.bytes() >= (accepted + 1) * payload.length, 5000)).toBe(true);
    await sender.close();
  } finally {
    await peer.close();
  }
});

test('maxSendQueueMessages, process-wide: BUSY for a client without its own limit, not for one with a larger one', async () => {
  const peer = await stalledPeer(mesh.rdb(), 'stalled');
  try {
    setLimits({ maxSendQueue: 16 });
    const limited = mesh.client('limited', 'limited_topic');
    await limited.start();
    await openChannel(limited, 'stalled', peer);
    const payload = Buffer.alloc(64 * 1024, 'm');
    await fillUntilBusy(limited, 'stalled', payload, () => limited.stats().sendQueueMessages === 16);

    const roomy = mesh.client('roomy', 'roomy_topic', { maxSendQueueMessages: 64 });
    await roomy.start();
    await openChannel(roomy, 'stalled', peer);
    await fillUntilBusy(roomy, 'stalled', payload, () => roomy.stats().sendQueueMessages === 64);
    peer.resume();
    await limited.close();
    await roomy.close();
  } finally {
    await peer.close();
  }
});
