// zeromq.js 6 PUSH -> PULL over TCP loopback, one role per process (bench/PROTOCOL.md).
//   node zeromq_pushpull.mjs --role pair-recv|pair-send --size B --count N --warmup W --port P
import * as zmq from 'zeromq';

import { Receiver, filler, parseOptions, readSeq, run, runSender, writeSeq } from './bench_common.mjs';

const opts = parseOptions({ needs: ['port'] });
const endpoint = `tcp://127.0.0.1:${opts.port}`;

async function receive() {
  const pull = new zmq.Pull();
  await pull.bind(endpoint);
  const rx = new Receiver(opts, { dupsAllowed: false });
  rx.ready();
  const reading = (async () => {
    for await (const [msg] of pull) {
      if (msg.length !== opts.size) throw new Error(`message of ${msg.length} bytes, expected ${opts.size}`);
      rx.see(readSeq(msg));
      if (rx.done) break;
    }
  })();
  await Promise.race([rx.finished, reading.then(() => rx.finished)]);
  pull.close();
}

async function send() {
  const push = new zmq.Push();
  push.connect(endpoint);
  const template = filler(opts.size);
  await runSender(opts, {
    async send(from, to) {
      for (let seq = from; seq < to; seq++) {
        // A fresh buffer each time: zeromq.js hands buffers over 128 bytes to libzmq without
        // copying, so the one just sent may still be read after send() resolved.
        const payload = Buffer.allocUnsafe(opts.size);
        template.copy(payload);
        writeSeq(payload, 0, seq);
        // zeromq.js allows one pending send per socket: awaiting each send is how it is used.
        await push.send(payload);
      }
      return 0; // send() waits for room itself; there is no "queue full" answer to count
    },
    close: () => push.close(),
  });
}

run(opts.role === 'pair-recv' ? receive : send);
