// liner through its TypeScript API (the built package in dist/), one role per process
// (bench/PROTOCOL.md): sendTo (or sendAll with --fanout 1) -> a JS 'message' handler, which
// checks the sequence number of every message.
//   node liner_pair.mjs --role pair-recv|pair-send --size B --count N --warmup W
//                       --redis URL --prefix PREFIX [--alo 0|1] [--replica K] [--fanout 0|1]
//                       [--batch M]
// --batch M (M > 1) sends with sendToMany, M messages per call.
import { Client, LinerError } from '../../dist/index.mjs';

import { Receiver, filler, parseOptions, readSeq, run, runSender, sleep, writeSeq } from './bench_common.mjs';

const opts = parseOptions({ needs: ['redis', 'prefix'], extras: ['replica', 'fanout', 'batch'] });
const sink = `${opts.prefix}.sink`;
const source = `${opts.prefix}.source`;
const atLeastOnce = opts.alo === 1;
const NO_ADDRESS_PATIENCE_MS = 60_000;

const isCode = (e, code) => e instanceof LinerError && e.code === code;

async function receive() {
  // Replicas share the topic under unique names.
  const name = opts.replica === undefined ? sink : `${sink}.${opts.replica}`;
  const client = new Client({ name, topic: sink, redis: opts.redis });
  const rx = new Receiver(opts, { dupsAllowed: atLeastOnce });
  client.on('error', (e) => rx.reject(e));
  client.on('message', ({ data }) => {
    if (data.length !== opts.size) return rx.reject(new Error(`message of ${data.length} bytes, expected ${opts.size}`));
    rx.see(readSeq(data));
  });
  await client.start();
  rx.ready();
  try {
    await rx.finished;
  } finally {
    await client.close();
  }
}

async function send() {
  const client = new Client({ name: source, topic: source, redis: opts.redis });
  let failure;
  client.on('error', (e) => (failure ??= e));
  await client.start();
  const payload = filler(opts.size); // reused: sendTo and sendAll copy it before they return
  const options = { atLeastOnce };
  // With sendAll, a BUSY copy is thrown after the others were queued: sending again repeats
  // the message to the replicas that had it (they count duplicates).
  const sendOne = opts.fanout ? (data) => client.sendAll(sink, data, options) : (data) => client.sendTo(sink, data, options);
  // --batch: sendToMany with `opts.batch` payloads of their own per call (each carries its
  // sequence number). A call that queues only part of a batch (the peer's queue filled up)
  // is answered with `await drain()`, and the rest goes next.
  const batch = Array.from({ length: opts.batch }, () => filler(opts.size));
  async function sendBatches(from, to, measured) {
    let busy = 0;
    const patience = Date.now() + NO_ADDRESS_PATIENCE_MS;
    for (let seq = from; seq < to; ) {
      const n = Math.min(batch.length, to - seq);
      for (let i = 0; i < n; i++) writeSeq(batch[i], 0, seq + i);
      let queued = 0;
      while (queued < n) {
        try {
          const part = queued === 0 && n === batch.length ? batch : batch.slice(queued, n);
          const k = client.sendToMany(sink, part, options);
          queued += k;
          if (queued < n) {
            if (measured) busy++;
            await client.drain();
          }
        } catch (e) {
          if (isCode(e, 'NO_ADDRESS') && !measured && Date.now() < patience) await sleep(10);
          else throw e;
        }
      }
      seq += n;
    }
    if (failure) throw failure;
    return busy;
  }
  await runSender(opts, {
    async send(from, to, measured) {
      let busy = 0;
      const patience = Date.now() + NO_ADDRESS_PATIENCE_MS;
      for (let seq = from; seq < to; ) {
        writeSeq(payload, 0, seq);
        try {
          sendOne(payload);
          seq++;
        } catch (e) {
          if (isCode(e, 'BUSY')) {
            if (measured) busy++;
            await client.drain();
          } else if (isCode(e, 'NO_ADDRESS') && !measured && Date.now() < patience) {
            await sleep(10); // the receiver's address is not in the directory yet
          } else throw e;
        }
      }
      if (failure) throw failure;
      return busy;
    },
    ...(opts.batch > 1 && { send: sendBatches }),
    async close() {
      await client.close();
      if (failure) throw failure;
    },
  });
}

run(opts.role === 'pair-recv' ? receive : send);
