// Smoke of the package as a user on arm64 sees it: loads the repository through its own entry
// point (dist/index.js, which finds the addon with node-gyp-build), then two clients on one store
// exchange at-least-once messages, and messages sent while the receiver is stopped reach it, all
// and in order, when it starts again. Prints one JSON line with what was checked; exits non-zero
// on the first failure.
//
//   node smoke.cjs <repository root> <store URL>     (sqlite:/path/file.db or redis://...)
'use strict';
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');

const [root, store] = process.argv.slice(2);
const { Client } = require(path.join(root, 'dist', 'index.js'));
// The binary node-gyp-build picked: the same look-up src/native.ts does.
const addon = require(path.join(root, 'node_modules', 'node-gyp-build')).path(root);

const N = 20;
const suffix = `${process.pid}_${Date.now()}`;
const topicA = `smoke_a_${suffix}`;
const topicB = `smoke_b_${suffix}`;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitUntil(what, condition, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function receiver(listen, inbox) {
  const c = new Client({ name: 'b', topic: topicB, store, listen });
  c.on('message', (m) => inbox.push(`${m.from} ${Buffer.from(m.data).toString()}`));
  return c;
}

async function main() {
  const started = Date.now();
  const listen = `127.0.0.1:${await freePort()}`;
  const atA = [];
  const atB = [];
  const a = new Client({ name: 'a', topic: topicA, store });
  a.on('message', (m) => atA.push(`${m.from} ${Buffer.from(m.data).toString()}`));
  let b = receiver(listen, atB);
  await a.start();
  await b.start();

  // Online, both ways.
  for (let i = 1; i <= N; i++) a.sendTo(topicB, `m${i}`);
  b.sendTo(topicA, 'hello');
  await waitUntil(`${N} messages at b`, () => atB.length >= N, 60_000);
  await waitUntil('the reply at a', () => atA.length >= 1, 60_000);
  assert.deepEqual(atB, Array.from({ length: N }, (_, i) => `${topicA} m${i + 1}`));
  assert.deepEqual(atA, [`${topicB} hello`]);

  // Offline: b is stopped, a keeps sending; the store holds them until b is back.
  await b.close();
  for (let i = N + 1; i <= 2 * N; i++) a.sendTo(topicB, `m${i}`);
  await waitUntil(`${N} messages pending for the stopped receiver`, async () => (await a.pendingCount()) === N, 60_000);
  const offline = [];
  b = receiver(listen, offline);
  await b.start();
  await waitUntil(`${N} offline messages at b`, () => offline.length >= N, 60_000);
  await new Promise((r) => setTimeout(r, 1000)); // a duplicate would show up here
  assert.deepEqual(offline, Array.from({ length: N }, (_, i) => `${topicA} m${N + i + 1}`));
  await waitUntil('an empty queue at a', async () => (await a.pendingCount()) === 0, 60_000);

  await Promise.all([a.close(), b.close()]);
  console.log(JSON.stringify({
    arch: process.arch, addon, store: store.replace(/:.*/, ''), online: atB.length, offline: offline.length,
    seconds: (Date.now() - started) / 1000,
  }));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
