// Back-pressure on send: when a peer's bounded queue is full, sendTo throws BUSY (the message is
// not queued), the client emits a `busy` status event, and `await drain()` resolves once the
// queue has room again (`writable`), after which sending works again.
import { expect, test } from 'vitest';

import { LinerError, type StatusEvent, stalledPeer, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

test('BUSY when the peer queue is full, drain() when it has room again', async () => {
  const peer = await stalledPeer(mesh.rdb(), 'stalled');
  const sender = mesh.client('sender', 'sender_topic', { maxSendQueueMessages: 32 });
  const events: StatusEvent[] = [];
  sender.on('status', (e) => events.push(e));
  await sender.start();
  expect(await sender.drain()).toBeUndefined(); // nothing was refused: resolves at once

  const payload = Buffer.alloc(64 * 1024, 'x');
  let accepted = 0;
  let busy: LinerError | undefined;
  const fill = (): void => {
    for (busy = undefined; !busy && accepted < 10_000; ) {
      try {
        sender.sendTo('stalled', payload, { atLeastOnce: false });
        accepted++;
      } catch (e) {
        busy = e as LinerError;
      }
    }
  };
  // Until the kernel's socket buffers are full too, the queue keeps emptying into them: send
  // until a refusal lasts.
  for (;;) {
    fill();
    expect(busy).toBeInstanceOf(LinerError);
    expect(busy!.code).toBe('BUSY');
    let drained = false;
    void sender.drain().then(() => (drained = true));
    await new Promise((r) => setTimeout(r, 100));
    if (!drained) break;
  }
  expect(busy!.message).toMatch(/drain/);
  expect(sender.stats().sendQueueMessages).toBeGreaterThan(16);
  expect(await waitUntil(() => events.some((e) => e.kind === 'busy'), 2000)).toBe(true);

  const writableBefore = events.filter((e) => e.kind === 'writable').length;
  const draining = sender.drain();
  peer.resume();
  await draining;
  expect(await waitUntil(() => events.filter((e) => e.kind === 'writable').length > writableBefore, 2000)).toBe(true);
  sender.sendTo('stalled', payload, { atLeastOnce: false });
  expect(await waitUntil(() => peer.bytes() >= (accepted + 1) * payload.length, 5000)).toBe(true);
  await sender.close();
  await peer.close();
});
