// `liner send`: one message (text, @file or stdin) to one peer of a topic or to all of them,
// acknowledged before the command returns; a one-off sender leaves no keys behind.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { afterAll, expect, test } from 'vitest';

import { deadRedisUrl, expectFailure, liner, linerJson, ownLines } from './support/cli.js';
import { Inbox, redisUrl, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();
const dir = mkdtempSync(path.join(tmpdir(), 'liner-cli-send-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface SendJson {
  to: string;
  from: string;
  all: boolean;
  atLeastOnce: boolean;
  size: number;
  copies: number;
  acknowledged: boolean | null;
  stored: number;
  elapsedMs: number;
}

const send = (...args: string[]): Promise<SendJson> => linerJson(['send', '--json', '--redis', redisUrl, ...args]);

test('text, a file and stdin reach the peer, acknowledged, and the one-off sender leaves no key', async () => {
  const rx = mesh.client('rx', 'rx');
  const inbox = new Inbox(rx);
  await rx.start();
  const rdb = mesh.rdb();
  const before = await rdb.keys();

  const text = await send('--to', 'rx', 'hello rx');
  expect(text).toMatchObject({ to: 'rx', all: false, atLeastOnce: true, size: 8, copies: 1, acknowledged: true, stored: 0 });
  expect(text.from).toMatch(/^liner-send-.+-\d+$/);

  const file = path.join(dir, 'payload.bin');
  const bytes = Buffer.from([0, 1, 2, 3, 0xff, 10, 13]);
  writeFileSync(file, bytes);
  expect((await send('--to', 'rx', `@${file}`)).size).toBe(7);

  const piped = await liner(['send', '--to', 'rx', '--redis', redisUrl, '-'], { input: 'from stdin\n' });
  expect(piped.code, piped.stderr).toBe(0);
  expect(piped.stdout).toMatch(/^sent 11 B to one peer of rx as liner-send-\S+: acknowledged \(\d+ ms\)\n$/);

  expect(inbox.items.map((m) => [m.to, m.from.startsWith('liner-send-'), m.data])).toEqual([
    ['rx', true, Buffer.from('hello rx')],
    ['rx', true, bytes],
    ['rx', true, Buffer.from('from stdin\n')],
  ]);
  // Only what the receiver owns stays; the counter may have moved.
  expect((await rdb.keys()).filter((k) => !before.includes(k) && k !== 'lnr_unique_key')).toEqual([]);
});

test('--all reaches every replica; --best-effort is not acknowledged; --from names the sender and keeps its keys', async () => {
  const r1 = mesh.client('r1', 'jobs');
  const r2 = mesh.client('r2', 'jobs');
  const inboxes = [new Inbox(r1), new Inbox(r2)];
  await r1.start();
  await r2.start();

  expect(await send('--to', 'jobs', '--all', 'to everyone')).toMatchObject({ all: true, copies: 2, acknowledged: true });
  for (const i of inboxes) expect(await i.waitCount(1)).toBe(1);

  expect(await send('--to', 'jobs', '--best-effort', 'maybe')).toMatchObject({ atLeastOnce: false, acknowledged: null });
  const total = (): number => inboxes[0]!.length + inboxes[1]!.length;
  expect(await waitUntil(() => total() === 3)).toBe(true);

  expect(await send('--to', 'jobs', '--from', 'ops', 'signed')).toMatchObject({ from: 'ops', acknowledged: true });
  expect(await waitUntil(() => total() === 4)).toBe(true);
  expect(inboxes.flatMap((i) => i.items).find((m) => m.data.toString() === 'signed')?.from).toBe('ops');
  expect(await mesh.rdb().get('lnr_topic:ops:key')).not.toBeNull();
});

test('a message nobody acknowledges stays in Redis and the command fails', async () => {
  // A peer that crashed: its address is still registered, nothing listens there.
  const rdb = mesh.rdb();
  await rdb.cmd('HSET', 'lnr_topic:ghost:addr', '127.0.0.1:1', 'ghost-1');
  const r = await liner(['send', '--to', 'ghost', '--from', 'ops', '--json', '--redis', redisUrl, 'lost?']);
  expect(r.code).toBe(1);
  expect(JSON.parse(r.stdout)).toMatchObject({ acknowledged: false, stored: 1 });
  expect(JSON.parse(ownLines(r.stderr).at(-1)!).error).toMatchObject({ code: 'NOT_DELIVERED', message: expect.stringMatching(/runs again/) });
  const ck = Number(await rdb.get('lnr_connection:ops:ops:ghost-1:key'));
  expect(await rdb.llen(`lnr_connection:${ck}:messages`)).toBe(1);
});

test('bad input, nobody serving the topic and Redis down fail with one line', async () => {
  const cases: [string[], number, RegExp][] = [
    [['send', 'x'], 2, /^liner send: --to T is required/],
    [['send', '--to', 'rx'], 2, /^liner send: give the message/],
    [['send', '--to', 'rx', 'a', 'b'], 2, /^liner send: give the message as one argument/],
    [['send', '--to', 'rx', ''], 2, /^liner send: the message is empty/],
    [['send', '--to', 'rx', '@'], 2, /^liner send: '@' must be followed by a file name/],
    [['send', '--to', 'rx', `@${path.join(dir, 'missing')}`], 1, /^liner send: cannot read '.*missing': ENOENT$/],
    [['send', '--to', 'rx', '--from', 'a:b', 'x'], 2, /must not contain ':'/],
    [['send', '--to', 'rx', 'x', '--redis', 'unix://relative'], 2, /^liner send: invalid Redis URL 'unix:\/\/relative': expected an absolute socket path$/],
    [['send', '--to', 'nobody', 'x'], 1, /^liner send: nobody serves topic 'nobody' in redis:\/\/.* \(lnr_topic:nobody:addr is empty\)$/],
  ];
  for (const [args, code, message] of cases) {
    await expectFailure(args.includes('--redis') ? [...args] : [...args, '--redis', redisUrl], code, message);
  }
  await expectFailure(['send', '--to', 'rx', 'x', '--redis', await deadRedisUrl()], 1, /^liner send: cannot reach Redis/);
});
