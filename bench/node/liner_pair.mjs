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
  const options = { atLeastOnce };
  // With sendAll, a BUSY copy is thrown after the others were queued: sending again repeats
  // the message to the replicas that had it (they count duplicates).
  const sendOne = opts.fanout ? (data) => client.sendAll(sink, data, options) : (data) => client.sendTo(sink, data, options);
  // Payloads reused from call to call (sends copy them before they return): one, or with
  // --batch M one per message of a sendToMany call, each carrying its own sequence number.
  const batch = Array.from({ length: opts.batch }, () => filler(opts.size));
  // Sends messages seq .. seq+n-1 in one call and returns how many were queued: fewer than n
  // when the peer's queue is full (BUSY).
  function sendFrom(seq, n) {
    for (let i = 0; i < n; i++) writeSeq(batch[i], 0, seq + i);
    if (opts.batch > 1) return client.sendToMany(sink, n === batch.length ? batch : batch.slice(0, n), options);
    try {
      sendOne(batch[0]);
      return 1;
    } catch (e) {
      if (isCode(e, 'BUSY')) return 0;
      throw e;
    }
  }
  await runSender(opts, {
    async send(from, to, measured) {
      let busy = 0;
      const patience = Date.now() + NO_ADDRESS_PATIENCE_MS;
      for (let seq = from; seq < to; ) {
        const n = Math.min(batch.length, to - seq);
        try {
          const queued = sendFrom(seq, n);
          seq += queued;
          if (queued < n) {
            if (measured) busy++;
            await client.drain(); // the rest goes once there is room
          }
        } catch (e) {
          if (isCode(e, 'NO_ADDRESS') && !measured && Date.now() < patience) {
            await sleep(10); // the receiver's address is not in the directory yet
          } else throw e;
        }
      }
      if (failure) throw failure;
      return busy;
    },
    async close() {
      await client.close();
      if (failure) throw failure;
    },
  });
}

run(opts.role === 'pair-recv' ? receive : send);
