// One million 100-byte at-least-once messages to a live listener: all delivered to the JS
// handler, in order, none twice.
import { expect, test } from 'vitest';

import { SeqChecker, sendRetrying, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();
const N = 1_000_000;

test('one million messages arrive in order, none twice', async () => {
  const checker = new SeqChecker(['listener_topic', 'sender_topic'], false);
  const { listener, sender } = await mesh.listenerAndSender(checker.push);

  const payload = Buffer.alloc(100, '.');
  const started = Date.now();
  for (let i = 1; i <= N; i++) {
    payload.write(String(i).padStart(10, '0'), 0, 'latin1');
    try {
      sender.sendTo('listener_topic', payload);
    } catch {
      await sendRetrying(sender, 'listener_topic', payload);
    }
  }
  expect(await waitUntil(() => checker.count >= N, 60_000, 20)).toBe(true);
  const seconds = (Date.now() - started) / 1000;
  console.log(`1M x 100 B at-least-once into a JS handler: ${(N / seconds).toFixed(0)} msg/s`);
  expect(checker.count).toBe(N);
  expect(checker.errors).toEqual([]);
  expect(checker.next).toBe(N + 1);
  expect(checker.badMeta).toEqual([]);
  // Many messages per cross-thread call.
  const stats = listener.stats();
  expect(stats.jsMessages).toBe(N);
  expect(stats.jsWakeups).toBeLessThan(N / 100);
});
