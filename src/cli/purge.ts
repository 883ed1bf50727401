/**
 * `liner purge`: what the clear_* calls do, for an operator: `--topic T` deletes the address
 * directory of T (clearAddressesOfTopic / lnr_clear_addresses_of_topic), `--sender NAME`
 * deletes the offline queues and acknowledgement counters of NAME's channels and its
 * sender→listener map (clearStoredMessages / lnr_clear_stored_messages). Shows what it will
 * delete and asks first. It runs the library's own clear_* calls, so it deletes exactly what
 * they delete.
 *
 * @internal
 * @packageDocumentation
 */
import * as readline from 'node:readline/promises';

import { flagOption, noPositionals, valueOption } from './args.js';
import type { Command, Context } from './command.js';
import { openRedis, shownUrl } from './command.js';
import { CliError, usage } from './errors.js';
import type { Directory } from './layout.js';
import { count } from './output.js';
import { ephemeralName, nameOption, openClient } from './peer.js';

interface Plan {
  /** What purge will do, for people. */
  lines: string[];
  /** Key names it deletes (some may not exist). */
  keys: string[];
  /** Runs the clear_* call(s). */
  execute: () => Promise<void>;
  /** Nothing to delete. */
  empty: boolean;
}

async function confirm(ctx: Context, question: string): Promise<boolean> {
  if (ctx.parsed.options.yes) return true;
  if (!process.stdin.isTTY) {
    throw new CliError('CONFIRMATION_REQUIRED', 'purge deletes data: confirm on a terminal, or pass --yes');
  }
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

async function topicPlan(ctx: Context, redis: Directory, topic: string): Promise<Plan> {
  const [info] = await redis.readTopics(topic);
  const directoryKey = redis.name('topicAddresses', topic);
  if (!info) throw new CliError('UNKNOWN_TOPIC', `topic '${topic}' is not in ${shownUrl(ctx)} (no ${directoryKey} or :key)`);
  const lines = info.addresses.length
    ? [
        `delete the directory of topic ${topic} (${directoryKey}), ${info.addresses.length} address(es):`,
        ...info.addresses.map((a) => `  ${a.address}  ${a.name}`),
        'peers still running there put their own address back within about a second',
      ]
    : [`topic ${topic} has no directory entries: nothing to delete`];
  return {
    lines,
    keys: [directoryKey],
    empty: info.addresses.length === 0,
    execute: async () => {
      // A throwaway client of the topic: clearAddressesOfTopic works on the client's own topic.
      const client = openClient(ctx, ephemeralName('purge'), topic);
      try {
        await client.clearAddressesOfTopic();
      } finally {
        await client.close();
      }
    },
  };
}

async function senderPlan(ctx: Context, redis: Directory, sender: string, force: boolean): Promise<Plan> {
  const directory = await redis.readTopics();
  const sourceTopics = await redis.senderTopicsOf(sender);
  const registered = directory.flatMap((t) => t.addresses.filter((a) => a.name === sender).map((a) => `${a.address} under ${t.topic}`));
  if (sourceTopics.length === 0) {
    if (registered.length) return { lines: [`sender ${sender} has no stored messages, channels or sender map: nothing to delete`], keys: [], empty: true, execute: async () => undefined };
    throw new CliError('UNKNOWN_SENDER', `no sender named '${sender}' in ${shownUrl(ctx)} (no ${redis.name('senderListeners', sender, '*')} or ${redis.name('channelName', sender, '*', '*')})`);
  }
  if (registered.length && !force) {
    throw new CliError(
      'SENDER_RUNNING',
      `sender ${sender} is registered (${registered.join(', ')}): stop it first (clearing under a running sender loses its messages), or pass --force if it crashed`,
    );
  }
  const channels = await redis.readChannels(directory, { sender });
  const lines: string[] = [];
  const doomed: string[] = [];
  for (const s of sourceTopics) {
    const mine = channels.filter((c) => c.senderTopic === s);
    lines.push(`sender ${sender} (topic ${s}): ${mine.length} channel(s)`);
    for (const c of mine) {
      lines.push(`  ck ${c.connectionKey} -> ${c.listener}: delete ${count(c.queueLength)} stored message(s) and the ack counter (last acked ${c.lastAcked ?? '-'})`);
      doomed.push(redis.name('channelQueue', c.connectionKey), redis.name('channelAck', c.connectionKey));
    }
    const maps = [redis.name('senderListeners', sender, s), redis.name('senderListenerNames', sender, s)];
    lines.push(`  delete its sender->listener maps ${maps[0]} and ${maps[1]}`);
    doomed.push(...maps);
  }
  lines.push('connection keys and topic keys stay, as with clear_stored_messages');
  return {
    lines,
    keys: doomed,
    empty: false,
    execute: async () => {
      for (const s of sourceTopics) {
        // The sender's own identity, never started: clearStoredMessages needs a stopped client.
        const client = openClient(ctx, sender, s);
        try {
          await client.clearStoredMessages();
        } finally {
          await client.close();
        }
      }
    },
  };
}

export const purge: Command = {
  name: 'purge',
  summary: 'delete a topic directory or a sender\'s offline queues, as clear_* do (asks first)',
  usage: 'liner purge --topic T | --sender NAME [--yes] [--force] [--redis URL] [--json]',
  description: [
    '--topic T deletes the address directory of T, as clearAddressesOfTopic() does for a client',
    'of T (lnr_topic:T:addr: every replica and subscriber registered there).',
    "--sender NAME deletes NAME's offline queues and acknowledgement counters of every channel",
    'and its sender->listener map, as clearStoredMessages() does (lnr_connection:{ck}:messages,',
    ':mess_number, lnr_sender:NAME:{topic}:listener). It refuses while NAME is registered.',
    'Shows the plan and asks for confirmation; --yes skips the question (needed off a terminal).',
  ].join('\n'),
  options: {
    topic: valueOption('T', 'delete the directory (addresses) of topic T'),
    sender: valueOption('NAME', 'delete the stored messages of sender NAME'),
    yes: flagOption('do not ask', 'y'),
    force: flagOption('with --sender: even if NAME is registered (it crashed)'),
  },
  async run(ctx) {
    const { out, parsed } = ctx;
    if ((parsed.options.topic === undefined) === (parsed.options.sender === undefined)) throw usage('give either --topic T or --sender NAME');
    noPositionals(parsed);
    const topic = nameOption(parsed, 'topic');
    const sender = nameOption(parsed, 'sender');
    const redis = await openRedis(ctx);
    const plan = topic !== undefined ? await topicPlan(ctx, redis, topic) : await senderPlan(ctx, redis, sender!, parsed.options.force === true);
    const report = (done: boolean): void => {
      if (out.json) out.data({ redis: shownUrl(ctx), topic: topic ?? null, sender: sender ?? null, purged: done, keys: done ? plan.keys : [], plan: plan.lines });
    };
    if (plan.empty) {
      if (!out.json) for (const l of plan.lines) out.line(l);
      report(false);
      return;
    }
    if (!out.json || !parsed.options.yes) for (const l of plan.lines) (out.json ? out.note.bind(out) : out.line.bind(out))(l);
    if (!(await confirm(ctx, 'Delete?'))) {
      if (!out.json) out.line('nothing deleted');
      report(false);
      return 1;
    }
    await plan.execute();
    if (out.json) report(true);
    else out.line(out.paint('green', `purged (${shownUrl(ctx)})`));
  },
};
