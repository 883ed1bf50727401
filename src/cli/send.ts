/**
 * `liner send`: joins the mesh as a one-off peer, sends one message (text, a file or stdin)
 * to one peer of a topic or to all of them, and leaves; says whether it was acknowledged.
 *
 * @internal
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises';

import { flagOption, secondsOption, stringOption, valueOption } from './args.js';
import type { Command } from './command.js';
import { openRedis, shownUrl } from './command.js';
import { CliError, usage } from './errors.js';
import { bytes } from './output.js';
import { checkName, ephemeralName, liner, openClient, sendPatiently } from './peer.js';

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The payload of `<text | @file | ->`. */
export async function payloadOf(arg: string): Promise<Buffer> {
  if (arg === '-') return readStdin();
  if (arg.startsWith('@')) {
    const file = arg.slice(1);
    if (!file) throw usage("'@' must be followed by a file name (@path/to/file)");
    try {
      return await readFile(file);
    } catch (e) {
      throw new CliError('IO', `cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  return Buffer.from(arg, 'utf8');
}

export const send: Command = {
  name: 'send',
  summary: 'send one message (text, @file or - for stdin) to a topic',
  usage: 'liner send --to T [--all] [--best-effort] [--from NAME] [--timeout SECONDS] <text | @file | ->',
  description: [
    'Joins the mesh as a short-lived peer, sends one message to one peer serving topic T',
    '(round-robin, like sendTo) or with --all to every peer serving it (like sendAll), and',
    'leaves. At-least-once (the default) waits until the receiver acknowledged the message; if',
    'it did not, the message stays in Redis, sent again when a peer with the same name (--from)',
    'runs again, and the command fails. The receiver sees `from` = the --from name, by default',
    'liner-send-<host>-<pid>, whose keys are removed again once everything was acknowledged.',
  ].join('\n'),
  options: {
    to: valueOption('T', 'topic to send to (required)'),
    all: flagOption('one copy to every peer serving T (sendAll)'),
    'best-effort': flagOption('at-most-once: no acknowledgement, dropped if the peer is down'),
    from: valueOption('NAME', 'unique name and topic of the sending peer (to resume its stored messages)'),
    timeout: valueOption('SECONDS', 'give up when the send queue stays full this long (default 10)'),
  },
  async run(ctx) {
    const { out, parsed } = ctx;
    const to = stringOption(parsed, 'to');
    if (to === undefined) throw usage('--to T is required (the topic to send to)');
    if (parsed.positionals.length !== 1) {
      throw usage(parsed.positionals.length === 0 ? 'give the message: text, @file or - (stdin)' : `give the message as one argument (quote it); got ${parsed.positionals.length}`);
    }
    const given = stringOption(parsed, 'from');
    const name = given === undefined ? ephemeralName('send') : checkName('from', given);
    const all = parsed.options.all === true;
    const atLeastOnce = parsed.options['best-effort'] !== true;
    const timeoutMs = secondsOption(parsed, 'timeout') ?? 10_000;
    const data = await payloadOf(parsed.positionals[0]!);
    if (data.length === 0) throw usage('the message is empty: liner sends at least 1 byte');

    const redis = await openRedis(ctx);
    const { LinerError } = liner();
    const client = openClient(ctx, name, name);
    const started = Date.now();
    let copies = 1;
    try {
      await client.start();
      if (all) copies = (await client.listAddresses(to)).length;
      // Read before the send: nobody serving the topic is then refused by the send (NO_ADDRESS)
      // instead of being reported by an event after the send's own look-up.
      await client.refreshAddressTopic(to);
      await sendPatiently(client, all, to, data, atLeastOnce, started + timeoutMs);
    } catch (e) {
      await client.close();
      if (e instanceof LinerError && e.code === 'NO_ADDRESS') {
        throw new CliError('NO_ADDRESS', `nobody serves topic '${to}' in ${shownUrl(ctx)} (${redis.name('topicAddresses', to)} is empty)`);
      }
      throw e;
    }
    // close() sends what is queued, waits for the acknowledgements and stores the rest in Redis.
    await client.close();
    const stored = atLeastOnce ? await redis.storedCount(name, name) : 0;
    const result = {
      to,
      from: name,
      all,
      atLeastOnce,
      size: data.length,
      copies,
      acknowledged: atLeastOnce ? stored === 0 : null,
      stored,
      elapsedMs: Date.now() - started,
    };
    if (stored > 0) {
      if (out.json) out.data(result);
      throw new CliError(
        'NOT_DELIVERED',
        `${stored} message(s) to ${to} were not acknowledged and wait in Redis: they are sent when a peer named ${name} runs again ` +
          `('liner send --from ${name} …' does), or dropped by 'liner purge --sender ${name}'`,
      );
    }
    if (given === undefined) await redis.forgetPeer(name, name);
    if (out.json) {
      out.data(result);
    } else {
      const where = all ? `${copies} peer(s) of ${to}` : `one peer of ${to}`;
      const how = atLeastOnce ? out.paint('green', 'acknowledged') : 'written (best effort: not acknowledged)';
      out.line(`sent ${bytes(data.length)} to ${where} as ${name}: ${how} (${result.elapsedMs} ms)`);
    }
  },
};
