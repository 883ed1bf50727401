// sendTo from inside a message handler works: two echo peers bounce a message back and forth.
import { expect, test } from 'vitest';

import { Inbox, useMesh } from './support/testkit.js';

const mesh = useMesh();

test('echo peers answer from inside their handlers', async () => {
  const ping = mesh.client('ping', 'ping_topic');
  const pong = mesh.client('pong', 'pong_topic');
  const rounds = 100;
  const inbox = new Inbox(ping);
  pong.on('message', (m) => pong.sendTo(m.from, m.data)); // echo
  ping.on('message', (m) => {
    const n = Number(m.data.toString());
    if (n < rounds) ping.sendTo('pong_topic', String(n + 1));
  });
  await ping.start();
  await pong.start();
  ping.sendTo('pong_topic', '1');
  expect(await inbox.waitCount(rounds, 10_000)).toBe(rounds);
  expect(inbox.payloads()).toEqual(Array.from({ length: rounds }, (_, i) => String(i + 1)));
  expect(inbox.items.every((m) => m.from === 'pong_topic' && m.to === 'ping_topic')).toBe(true);
});
