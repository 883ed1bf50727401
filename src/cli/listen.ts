/**
 * `liner listen`: joins the mesh as a peer of a topic (and of subscriptions) and prints every
 * message that arrives: to, from, size and a preview that is safe to show on a terminal.
 *
 * @internal
 * @packageDocumentation
 */
import { flagOption, intOption, listOption, noPositionals, secondsOption, stringOption, valueOption } from './args.js';
import type { Command } from './command.js';
import { openRedis } from './command.js';
import { CliError, usage } from './errors.js';
import { bytes, escapeText, preview } from './output.js';
import { checkName, ephemeralName, nameOption, openClient } from './peer.js';

function clock(d: Date): string {
  return d.toTimeString().slice(0, 8) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

export const listen: Command = {
  name: 'listen',
  summary: 'join the mesh on a topic and print what arrives (to, from, size, preview)',
  usage: 'liner listen --topic T [--subscribe S …] [--name NAME] [--count N] [--timeout SECONDS] [--preview BYTES] [--full]',
  description: [
    'Starts a peer whose own topic is T (and that subscribes to every S), and prints each',
    'message it receives until Ctrl-C, --count messages or --timeout. It is a real peer: while',
    'it runs, sendTo(T) round-robins over it and the other peers of T, and sendAll reaches it.',
    'Messages are acknowledged once printed. With --json, one JSON object per line.',
  ].join('\n'),
  options: {
    topic: valueOption('T', "the listening peer's own topic (required)"),
    subscribe: listOption('S', 'also receive messages sent to topic S (repeatable)'),
    name: valueOption('NAME', 'unique name of the peer (default liner-listen-<host>-<pid>)'),
    listen: valueOption('ADDR', 'TCP address to listen on (default 127.0.0.1:0)'),
    count: valueOption('N', 'leave after N messages (those arriving meanwhile are printed too); status 1 if --timeout comes first'),
    timeout: valueOption('SECONDS', 'stop listening after this time'),
    preview: valueOption('BYTES', 'bytes of each payload shown (default 64)'),
    full: flagOption('print whole payloads (JSON: base64 in "data")'),
  },
  async run(ctx) {
    const { out, parsed } = ctx;
    noPositionals(parsed);
    const topic = nameOption(parsed, 'topic');
    if (topic === undefined) throw usage('--topic T is required (the topic to listen on)');
    const subscriptions = ((parsed.options.subscribe as string[] | undefined) ?? []).map((s) => checkName('subscribe', s));
    if (subscriptions.includes(topic)) throw usage(`--subscribe ${topic} is the peer's own topic already`);
    const name = nameOption(parsed, 'name') ?? ephemeralName('listen');
    const limit = intOption(parsed, 'count', 1);
    const timeoutMs = secondsOption(parsed, 'timeout');
    const previewBytes = intOption(parsed, 'preview', 1, 1 << 20) ?? 64;
    const full = parsed.options.full === true;

    // Fail fast and clearly when Redis is not there; and tell who else serves the topic.
    const [served] = await (await openRedis(ctx)).readTopics(topic);
    const others = served?.addresses.length ?? 0;

    const client = openClient(ctx, name, topic, stringOption(parsed, 'listen'));
    let received = 0;
    let finish: (status: number) => void = () => undefined;
    const finished = new Promise<number>((resolve) => (finish = resolve));

    client.on('message', ({ to, from, data }) => {
      // Past --count too: a message handed to this peer is acknowledged already, so every one
      // that arrives until close() returned is printed rather than silently dropped.
      received++;
      const at = new Date();
      const p = preview(data, full ? data.length : previewBytes);
      if (out.json) {
        out.data(
          {
            time: at.toISOString(),
            to,
            from,
            size: data.length,
            preview: p.text,
            previewKind: p.kind,
            truncated: p.truncated,
            ...(full ? { data: data.toString('base64') } : {}),
          },
          true,
        );
      } else {
        const text = p.kind === 'text' ? `"${p.text}"` : `hex ${p.text}`;
        out.line(
          `${out.paint('dim', clock(at))}  ${out.paint('cyan', escapeText(from) || '?')} -> ${out.paint('bold', escapeText(to))}  ${bytes(data.length)}  ${text}${p.truncated ? '…' : ''}`,
        );
      }
      if (limit !== undefined && received === limit) finish(0);
    });

    for (const s of subscriptions) await client.subscribe(s);
    try {
      await client.start();
    } catch (e) {
      await client.close();
      throw e;
    }
    const onSignal = (): void => finish(0);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => finish(limit !== undefined && received < limit ? 3 : 0), timeoutMs);

    const subs = subscriptions.length ? `, subscribed to ${subscriptions.join(', ')}` : '';
    const shared = others > 0 ? `; ${others} other peer(s) serve ${topic}: sendTo('${topic}') now round-robins over them and this one` : '';
    out.note(`listening as ${name} on ${client.address}: topic ${topic}${subs}${shared} (Ctrl-C to stop)`);

    const status = await finished;
    if (timer) clearTimeout(timer);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await client.close();
    if (status === 3) {
      throw new CliError('TIMEOUT', `received ${received} of ${limit} message(s) within ${(timeoutMs! / 1000).toFixed(1)} s`);
    }
    if (!out.json) out.note(`${received} message(s) received`);
  },
};
