// A TypeScript peer and a Python peer (python/liner over libliner_broker) exchange messages
// both ways on one Redis: each sends its own and echoes the other's.
import { spawn } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { Inbox, redisUrl, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();
const root = path.resolve(__dirname, '../..');
const N = 20;

test('TS and Python peers exchange messages both ways', async () => {
  const ts = mesh.client('ts_peer', 'ts_topic');
  const inbox = new Inbox(ts);
  await ts.start();

  const py = spawn('python3', [path.join(__dirname, 'fixtures', 'python_peer.py'), redisUrl, 'py_peer', 'py_topic', 'ts_topic', String(N)], {
    env: { ...process.env, PYTHONPATH: path.join(root, 'python') },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  py.stdout.on('data', (d) => (out += d));
  py.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => py.on('exit', r));
  try {
    expect(await waitUntil(() => out.includes('ready') || py.exitCode !== null, 15_000), err).toBe(true);
    for (let i = 0; i < N; i++) ts.sendTo('py_topic', `ts ${i}`);

    // Python -> TS: its own messages, then the echoes of ours.
    expect(await inbox.waitCount(2 * N, 10_000)).toBe(2 * N);
    expect(inbox.items.every((m) => m.from === 'py_topic' && m.to === 'ts_topic')).toBe(true);
    const payloads = inbox.payloads();
    expect(payloads.filter((p) => p.startsWith('py '))).toEqual(Array.from({ length: N }, (_, i) => `py ${i}`));
    expect(payloads.filter((p) => p.startsWith('py:'))).toEqual(Array.from({ length: N }, (_, i) => `py:ts ${i}`));

    // TS -> Python: what the Python callback printed.
    const lines = (): string[] => out.split('\n').filter((l) => l.startsWith('{'));
    await waitUntil(() => lines().length >= N);
    const received = lines().map((l) => JSON.parse(l) as { to: string; from: string; data: string });
    expect(received).toEqual(Array.from({ length: N }, (_, i) => ({ to: 'py_topic', from: 'ts_topic', data: `ts ${i}` })));
  } finally {
    py.stdin.end();
    expect(await exited, err).toBe(0);
  }
});
