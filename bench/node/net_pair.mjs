// Node `net` over TCP loopback, one role per process (bench/PROTOCOL.md): frames of a u32 LE
// length and the payload, written in batches of about 64 KiB as a throughput-minded user would.
//   node net_pair.mjs --role pair-recv|pair-send --size B --count N --warmup W --port P
import net from 'node:net';
import { once } from 'node:events';

import { Receiver, fail, filler, parseOptions, readSeq, run, runSender, writeSeq } from './bench_common.mjs';

const opts = parseOptions({ needs: ['port'] });
const BATCH_BYTES = 64 * 1024;
const frameBytes = 4 + opts.size;

async function receive() {
  const server = net.createServer();
  server.listen(opts.port, '127.0.0.1');
  await once(server, 'listening');
  const rx = new Receiver(opts, { dupsAllowed: false });
  rx.ready();
  if (rx.done) return; // --count 0 --warmup 0: nothing to wait for
  const [socket] = await Promise.race([once(server, 'connection'), rx.finished]);
  server.close(); // one sender per run
  let held = null; // the start of a frame that the previous chunk cut off
  socket.on('data', (chunk) => {
    // A chunk may end inside a frame: the cut-off start is glued to the next chunk.
    const buf = held ? Buffer.concat([held, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 4) {
      const length = buf.readUInt32LE(at);
      if (buf.length - at - 4 < length) break;
      if (length !== opts.size) return rx.reject(new Error(`frame of ${length} bytes, expected ${opts.size}`));
      rx.see(readSeq(buf, at + 4));
      at += 4 + length;
    }
    held = at < buf.length ? buf.subarray(at) : null;
  });
  socket.on('error', (e) => rx.reject(e));
  socket.on('end', () => rx.done || rx.reject(new Error('the sender closed the connection early')));
  await rx.finished;
  socket.destroy();
}

async function send() {
  const socket = net.connect(opts.port, '127.0.0.1');
  socket.setNoDelay(true); // writes are already batched: do not hold the last one back for an ACK
  await once(socket, 'connect');
  socket.on('error', fail);
  socket.resume(); // the receiver sends nothing; reading lets its FIN end and close the socket
  const template = filler(opts.size);
  const framesPerBatch = Math.max(1, Math.floor(BATCH_BYTES / frameBytes));
  await runSender(opts, {
    async send(from, to) {
      let waits = 0;
      for (let seq = from; seq < to; ) {
        const frames = Math.min(framesPerBatch, to - seq);
        // A new Buffer per write: the socket keeps a reference to it until it is written.
        const batch = Buffer.allocUnsafe(frames * frameBytes);
        for (let at = 0; at < batch.length; at += frameBytes, seq++) {
          batch.writeUInt32LE(opts.size, at);
          template.copy(batch, at + 4);
          writeSeq(batch, at + 4, seq);
        }
        // write() returning false means the socket's buffer is over its high-water mark: wait
        // for 'drain' (counted as `busy`, the analogue of a "queue full" answer).
        if (!socket.write(batch)) {
          waits++;
          await once(socket, 'drain');
        }
      }
      return waits;
    },
    async close() {
      // The receiver may have closed its side already, and with it (allowHalfOpen off) ours.
      if (!socket.closed) await new Promise((resolve) => socket.end(resolve));
    },
  });
}

run(opts.role === 'pair-recv' ? receive : send);
