// The `liner` command reads the store through the core (the addon's NativeDirectory): what
// running clients register and the channels they open are what `liner topics` and
// `liner inspect` show, and a one-off `liner send` peer leaves nothing behind.
import { expect, test } from 'vitest';

import { linerJson } from './support/cli.js';
import { Inbox, redisUrl, useMesh } from './support/testkit.js';

const mesh = useMesh();

interface TopicsJson {
  topics: { topic: string; key: number | null; addresses: { address: string; name: string }[] }[];
}
interface InspectJson {
  channels: { connectionKey: number; connectionKeyName: string; sender: string; senderTopic: string; listener: string; storedSenderTopic: string | null }[];
}

test('what clients register and open is what topics and inspect show', async () => {
  const a = mesh.client('peer-a', 'topic_a');
  const b = mesh.client('peer-b', 'topic_b');
  const inbox = new Inbox(a);
  await a.start();
  await b.start();
  await a.subscribe('news');
  b.sendTo('topic_a', 'hello');
  await inbox.waitCount(1);

  const { topics } = await linerJson<TopicsJson>(['topics', '--json', '--redis', redisUrl]);
  expect(topics.map((t) => t.topic)).toEqual(['news', 'topic_a', 'topic_b']);
  const rdb = mesh.rdb();
  for (const t of topics) {
    // The client's own view of the directory (the core's read) and the key it uses.
    const served = (await b.listAddresses(t.topic)).map(({ address, name }) => ({ address, name }));
    expect(t.addresses).toEqual(served.sort((x, y) => (x.address < y.address ? -1 : 1)));
    const key = await rdb.get(`lnr_topic:${t.topic}:key`);
    expect(t.key).toBe(key === null ? null : Number(key));
  }

  const { channels } = await linerJson<InspectJson>(['inspect', '--json', '--interval', '0', '--redis', redisUrl]);
  expect(channels).toHaveLength(1);
  const [c] = channels;
  expect(c).toMatchObject({ sender: 'peer-b', senderTopic: 'topic_b', listener: 'peer-a', storedSenderTopic: 'topic_b' });
  expect(c!.connectionKeyName).toBe('lnr_connection:peer-b:topic_b:peer-a:key');
  expect(Number(await rdb.get(c!.connectionKeyName))).toBe(c!.connectionKey);
});

test('a one-off send peer is forgotten by the core: no key of it is left', async () => {
  const rx = mesh.client('rx-1', 'rx');
  const inbox = new Inbox(rx);
  await rx.start();
  const before = await mesh.rdb().keys();
  const sent = await linerJson<{ from: string; acknowledged: boolean }>(['send', '--json', '--to', 'rx', '--redis', redisUrl, 'hi']);
  expect(sent.acknowledged).toBe(true);
  await inbox.waitCount(1);
  const left = (await mesh.rdb().keys()).filter((k) => !before.includes(k) && k !== 'lnr_unique_key');
  expect(left.filter((k) => k.includes(sent.from))).toEqual([]);
});
