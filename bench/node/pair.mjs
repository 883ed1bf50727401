// Pair throughput in one Node process: liner (sendTo -> 'message' handler, at-least-once, over a
// local Redis for the directory) against zeromq.js (PUSH -> PULL over TCP loopback), measured in
// the same run. Each cycle sends `count` messages and ends when the last one was handled in
// JS; the figure is the median over the cycles, after one warm-up cycle.
//
//   node bench/node/pair.mjs <redis_url> [--cycles 5] [--count 10000]
//   npm run bench:node      (starts a throwaway redis-server, installs zeromq in bench/node)
import * as zmq from 'zeromq';

import { Client, LinerError } from '../../dist/index.mjs';

const args = process.argv.slice(2);
const redis = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a)) ?? 'redis://127.0.0.1:6379/0';
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const CYCLES = option('cycles', 5);
const COUNT = option('count', 10_000);
const SIZES = [100, 1024];

/** Counts handled messages; `reach(n)` resolves once n were handled. */
function counter() {
  const c = { n: 0, target: Infinity, resolve: () => {} };
  c.handle = (data) => {
    c.bytes = data.length; // touch the payload, as a real handler would
    if (++c.n >= c.target) c.resolve();
  };
  c.reach = (target) =>
    new Promise((resolve) => {
      c.target = target;
      c.resolve = resolve;
      if (c.n >= target) resolve();
    });
  return c;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function linerRates(size) {
  const suffix = `${size}_${process.pid}`;
  const sink = new Client({ name: `bench.sink.${suffix}`, topic: `bench.sink.${suffix}`, redis });
  const source = new Client({ name: `bench.source.${suffix}`, topic: `bench.source.${suffix}`, redis });
  const received = counter();
  sink.on('message', (m) => received.handle(m.data));
  await sink.start();
  await source.start();
  const payload = Buffer.alloc(size, 'x');
  const rates = [];
  let busy = 0;
  for (let cycle = 0; cycle <= CYCLES; cycle++) {
    const done = received.reach(received.n + COUNT);
    const started = performance.now();
    for (let i = 0; i < COUNT; i++) {
      try {
        source.sendTo(sink.topic, payload);
      } catch (e) {
        if (!(e instanceof LinerError && e.code === 'BUSY')) throw e;
        busy++;
        await source.drain();
        i--;
      }
    }
    await done;
    if (cycle > 0) rates.push(COUNT / ((performance.now() - started) / 1000));
  }
  await sink.close();
  await source.close();
  return { rate: median(rates), busy };
}

async function zeromqRates(size) {
  const push = new zmq.Push();
  await push.bind('tcp://127.0.0.1:*');
  const pull = new zmq.Pull();
  pull.connect(push.lastEndpoint);
  const received = counter();
  const receiving = (async () => {
    for await (const [msg] of pull) received.handle(msg);
  })();
  const payload = Buffer.alloc(size, 'x');
  const rates = [];
  for (let cycle = 0; cycle <= CYCLES; cycle++) {
    const done = received.reach(received.n + COUNT);
    const started = performance.now();
    for (let i = 0; i < COUNT; i++) await push.send(payload); // zeromq.js: one pending send at a time
    await done;
    if (cycle > 0) rates.push(COUNT / ((performance.now() - started) / 1000));
  }
  push.close();
  pull.close();
  await receiving.catch(() => undefined);
  return { rate: median(rates) };
}

const fmt = (n) => Math.round(n).toLocaleString('en').padStart(11);
console.log(`pair throughput in one Node ${process.version} process: ${CYCLES} cycles of ${COUNT.toLocaleString('en')} messages (+1 warm-up), median msgs/s`);
console.log('liner: sendTo -> message handler, at-least-once; zeromq.js: await push.send -> for await pull');
console.log('');
console.log('size     liner        zeromq.js    liner/zeromq.js');
const results = [];
for (const size of SIZES) {
  const liner = await linerRates(size);
  const zeromq = await zeromqRates(size);
  const ratio = liner.rate / zeromq.rate;
  results.push({ size, liner: liner.rate, zeromq: zeromq.rate, ratio });
  const label = size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
  console.log(`${label.padEnd(6)} ${fmt(liner.rate)}  ${fmt(zeromq.rate)}    ${ratio.toFixed(1)}x${liner.busy ? `   (liner waited on BUSY ${liner.busy} times)` : ''}`);
}
const kib = results.find((r) => r.size === 1024);
console.log('');
console.log(`target: at 1 KiB liner >= 10x zeromq.js -> ${kib.ratio >= 10 ? 'met' : 'NOT met'} (${kib.ratio.toFixed(1)}x)`);
