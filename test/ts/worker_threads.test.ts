// Clients work inside worker_threads (each environment loads its own addon instance), and a
// worker terminated while its client runs neither crashes the process nor leaves the client
// registered.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

import { expect, test } from 'vitest';

import { Inbox, redisUrl, useMesh, waitUntil } from './support/testkit.js';

const mesh = useMesh();
const fixture = path.join(__dirname, 'fixtures', 'worker_peer.mjs');

function startWorker(name: string, topic: string) {
  const worker = new Worker(fixture, { workerData: { redis: redisUrl, name, topic } });
  const messages: unknown[] = [];
  worker.on('message', (m) => messages.push(m));
  const ready = waitUntil(() => messages.some((m) => (m as { ready?: string }).ready), 10_000);
  return { worker, messages, ready };
}

test('two workers and the main thread exchange messages', async () => {
  const w1 = startWorker('worker1', 'echo1');
  const w2 = startWorker('worker2', 'echo2');
  expect(await w1.ready).toBe(true);
  expect(await w2.ready).toBe(true);
  const main = mesh.client('main', 'main_topic');
  const inbox = new Inbox(main);
  await main.start();
  for (let i = 0; i < 50; i++) {
    main.sendTo('echo1', `a${i}`);
    main.sendTo('echo2', `b${i}`);
  }
  expect(await inbox.waitCount(100, 10_000)).toBe(100);
  expect(inbox.payloads().filter((p) => p.startsWith('worker1:'))).toEqual(Array.from({ length: 50 }, (_, i) => `worker1:a${i}`));
  expect(inbox.payloads().filter((p) => p.startsWith('worker2:'))).toEqual(Array.from({ length: 50 }, (_, i) => `worker2:b${i}`));

  w1.worker.postMessage('close');
  expect(await waitUntil(() => w1.messages.some((m) => (m as { closed?: boolean }).closed))).toBe(true);
  expect(await w1.worker.terminate()).toBe(1);
  // Terminated while its client runs: stopped at the worker's teardown.
  await w2.worker.terminate();
  expect(await mesh.rdb().hgetall('lnr_topic:echo1:addr')).toEqual({});
  expect(await mesh.rdb().hgetall('lnr_topic:echo2:addr')).toEqual({});
});
