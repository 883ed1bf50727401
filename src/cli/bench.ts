/**
 * `liner bench`: a quick pair-throughput run on this machine: two peers in this process, one
 * sending N messages to the other through the mesh's Redis (for the directory) and TCP, with a
 * progress bar and a summary. bench/node/ is the full benchmark (against ZeroMQ).
 *
 * @internal
 * @packageDocumentation
 */
import { flagOption, intOption, noPositionals, secondsOption, valueOption } from './args.js';
import type { Command } from './command.js';
import { openRedis, shownUrl } from './command.js';
import { CliError } from './errors.js';
import { ProgressBar, bytes, count } from './output.js';
import { ephemeralName, openClient, sendPatiently } from './peer.js';

export const bench: Command = {
  name: 'bench',
  summary: 'quick pair-throughput run (two peers in this process) with a summary',
  usage: 'liner bench [--count N] [--size BYTES] [--best-effort] [--timeout SECONDS] [--redis URL] [--json]',
  description: [
    'Starts two peers in this process and sends --count messages of --size bytes from one to',
    "the other (sendTo -> 'message' handler), then prints messages and bytes per second. The",
    'peers register in the given Redis like any other and remove their keys afterwards.',
  ].join('\n'),
  options: {
    count: valueOption('N', 'messages to send (default 500000)'),
    size: valueOption('BYTES', 'payload size (default 100)'),
    'best-effort': flagOption('at-most-once messages (default: at-least-once)'),
    timeout: valueOption('SECONDS', 'give up after this time (default 60)'),
  },
  async run(ctx) {
    const { out, parsed } = ctx;
    noPositionals(parsed);
    const total = intOption(parsed, 'count', 1, 100_000_000) ?? 500_000;
    const size = intOption(parsed, 'size', 1, 64 << 20) ?? 100;
    const atLeastOnce = parsed.options['best-effort'] !== true;
    const timeoutMs = secondsOption(parsed, 'timeout') ?? 60_000;
    const redis = await openRedis(ctx);
    const sinkName = ephemeralName('bench-sink');
    const sourceName = ephemeralName('bench-source');
    const sink = openClient(ctx, sinkName, sinkName);
    const source = openClient(ctx, sourceName, sourceName);
    const bar = new ProgressBar(total, !out.json && process.stderr.isTTY === true);
    let received = 0;
    let busy = 0;
    let done: () => void = () => undefined;
    const allReceived = new Promise<void>((resolve) => (done = resolve));
    sink.on('message', () => {
      if (++received === total) done();
    });
    const stop = (): void => {
      bar.clear();
      void Promise.all([source.close(), sink.close()]).finally(() => process.exit(130));
    };
    process.once('SIGINT', stop);
    try {
      await sink.start();
      await source.start();
      if (!out.json) out.note(`liner bench: ${count(total)} messages of ${bytes(size)}, ${atLeastOnce ? 'at-least-once' : 'best effort'}, Redis ${shownUrl(ctx)}`);
      const payload = Buffer.alloc(size, 'x');
      const started = performance.now();
      const deadline = Date.now() + timeoutMs;
      const rate = (): string => `${count(received)}/${count(total)}  ${count(received / ((performance.now() - started) / 1000 || 1e-3))} msg/s`;
      for (let i = 0; i < total; i++) {
        try {
          source.sendTo(sinkName, payload, { atLeastOnce });
        } catch (e) {
          if ((e as { code?: string }).code !== 'BUSY') throw e;
          busy += 1 + (await sendPatiently(source, false, sinkName, payload, atLeastOnce, deadline));
        }
        // Let the handler and the bar run now and then while the queue has room.
        if ((i & 4095) === 4095) {
          bar.update(received, rate());
          await new Promise((r) => setImmediate(r));
        }
      }
      const sentSeconds = (performance.now() - started) / 1000;
      const ticker = setInterval(() => bar.update(received, rate()), 100);
      const late = new Promise<'late'>((r) => setTimeout(() => r('late'), Math.max(0, deadline - Date.now())).unref());
      const outcome = await Promise.race([allReceived.then(() => 'ok' as const), late]);
      clearInterval(ticker);
      const seconds = (performance.now() - started) / 1000;
      bar.update(received, rate(), true);
      bar.clear();
      if (outcome === 'late') throw new CliError('TIMEOUT', `received ${count(received)} of ${count(total)} messages within ${timeoutMs / 1000} s`);
      const result = {
        redis: shownUrl(ctx),
        count: total,
        size,
        atLeastOnce,
        sendSeconds: Number(sentSeconds.toFixed(4)),
        seconds: Number(seconds.toFixed(4)),
        messagesPerSecond: Math.round(total / seconds),
        bytesPerSecond: Math.round((total * size) / seconds),
        busyWaits: busy,
      };
      if (out.json) {
        out.data(result);
      } else {
        out.line(`${out.paint('bold', `${count(result.messagesPerSecond)} msg/s`)}  ${bytes(result.bytesPerSecond)}/s of payload`);
        out.line(`  ${count(total)} messages of ${bytes(size)} in ${seconds.toFixed(2)} s (all queued after ${sentSeconds.toFixed(2)} s; ${count(busy)} BUSY wait(s))`);
        out.line(out.paint('dim', '  both peers in this one process, over loopback TCP; npm run bench compares with raw TCP and ZeroMQ'));
      }
    } finally {
      process.removeListener('SIGINT', stop);
      bar.clear();
      await source.close();
      await sink.close();
      await redis.forgetPeer(sourceName, sourceName);
      await redis.forgetPeer(sinkName, sinkName);
    }
  },
};
