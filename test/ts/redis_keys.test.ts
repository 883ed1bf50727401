// A two-peer exchange through the TypeScript API writes exactly the Redis keys, types and values
// of liner_broker 1.3.1 (compat spec §2.4), and close() removes the address from the directory.
import { expect, test } from 'vitest';

import { Inbox, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();

test('a two-peer exchange writes the 1.3.1 key layout', async () => {
  const b = mesh.client('client2', 'topic_client2');
  const a = mesh.client('client1', 'topic_client1');
  const inbox = new Inbox(b);
  await b.start();
  await a.start();
  const rdb = mesh.rdb();

  a.sendTo('topic_client2', 'hello');
  expect(await inbox.waitCount(1)).toBe(1);
  expect(inbox.items).toEqual([{ to: 'topic_client2', from: 'topic_client1', data: Buffer.from('hello') }]);
  // The listener writes its acknowledgement within about a second of delivery.
  expect(await waitUntil(async () => (await rdb.get('lnr_connection:3:mess_number')) === '1', 2500)).toBe(true);

  const dump = await rdb.dump();
  // liner only: each running peer's lease, when its entry lapses (ms, Redis's clock): within the
  // 7 s lease of now, renewed every second.
  const now = Date.now();
  for (const [topic, address] of [['topic_client1', a.address], ['topic_client2', b.address]] as const) {
    const [kind, lease] = dump[`lnr_topic:${topic}:lease`] as [string, Record<string, string>];
    delete dump[`lnr_topic:${topic}:lease`];
    expect(kind).toBe('hash');
    expect(Object.keys(lease)).toEqual([address]);
    expect(Number(lease[address])).toBeGreaterThan(now - 2000);
    expect(Number(lease[address])).toBeLessThanOrEqual(now + 9000);
  }
  expect(dump).toEqual({
    lnr_unique_key: ['string', '3'],
    'lnr_topic:topic_client2:addr': ['hash', { [b.address]: 'client2' }],
    'lnr_topic:topic_client2:key': ['string', '1'],
    'lnr_topic:topic_client1:addr': ['hash', { [a.address]: 'client1' }],
    'lnr_topic:topic_client1:key': ['string', '2'],
    'lnr_connection:client1:topic_client1:client2:key': ['string', '3'],
    'lnr_connection:3:sender': ['string', 'topic_client1'],
    'lnr_connection:3:mess_number': ['string', '1'],
    'lnr_sender:client1:topic_client1:listener': ['hash', { [b.address]: 'topic_client2' }],
    // liner only, beside 1.3.1's keys: the listener's name, for a restarted sender
    'lnr_sender:client1:topic_client1:listener_name': ['hash', { [b.address]: 'client2' }],
  });
  expect(await rdb.llen('lnr_connection:3:messages')).toBe(0);
});

test('close() removes the address from every directory the client registered in', async () => {
  const b = mesh.client('client2', 'topic_client2');
  await b.subscribe('news');
  await b.start();
  const rdb = mesh.rdb();
  expect(await rdb.hgetall('lnr_topic:topic_client2:addr')).toEqual({ [b.address]: 'client2' });
  expect(await rdb.hgetall('lnr_topic:news:addr')).toEqual({ [b.address]: 'client2' });
  await b.close();
  expect(await rdb.hgetall('lnr_topic:topic_client2:addr')).toEqual({});
  expect(await rdb.hgetall('lnr_topic:news:addr')).toEqual({});
  expect(await rdb.get('lnr_topic:topic_client2:key')).not.toBeNull();
});
