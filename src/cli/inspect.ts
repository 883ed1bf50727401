/**
 * `liner inspect`: the channels of the mesh (sender → listener): connection keys, the sender
 * topic the listener reports, the last acknowledged message number and the offline-queue
 * length, sampled twice to tell which queues are not draining, and why.
 *
 * @internal
 * @packageDocumentation
 */
import { flagOption, secondsOption, stringOption, valueOption } from './args.js';
import type { Command } from './command.js';
import { openRedis, shownUrl } from './command.js';
import { CliError } from './errors.js';
import type { ChannelInfo, Directory, TopicInfo } from './layout.js';
import { count } from './output.js';

/** What happened to a channel's offline queue between the two samples. */
export type QueueState = 'empty' | 'draining' | 'not-draining' | 'queued';

export interface InspectedChannel extends ChannelInfo {
  queueLengthBefore: number;
  lastAckedBefore: number | null;
  state: QueueState;
  /** Why a queue is not draining (null otherwise). */
  reason: string | null;
}

function verdict(c: ChannelInfo, before: { queueLength: number; lastAcked: number | null }, sampled: boolean, seconds: string): Pick<InspectedChannel, 'state' | 'reason'> {
  if (c.queueLength === 0) return { state: 'empty', reason: null };
  if (!sampled) return { state: 'queued', reason: null };
  // The sender pops what the listener acknowledged about a second later: a rising ack counts.
  const acking = c.lastAcked !== null && (before.lastAcked === null || c.lastAcked > before.lastAcked);
  if (c.queueLength < before.queueLength || acking) return { state: 'draining', reason: null };
  // Only the sender sends its offline queue, after it (re)connected to the listener.
  if (c.senderAddresses.length === 0) {
    return { state: 'not-draining', reason: `sender ${c.sender} is not running: only it sends this queue, once it runs again` };
  }
  if (c.listenerAddresses.length === 0) {
    return { state: 'not-draining', reason: `listener ${c.listener} is not running (no address registered): the queue goes out when it is back` };
  }
  return { state: 'not-draining', reason: `sender and listener both run, but the queue did not shrink in ${seconds} s (see the sender's log and status events)` };
}

export const inspect: Command = {
  name: 'inspect',
  summary: 'channels: connection keys, sender topic, last ack, offline queues and which are stuck',
  usage: 'liner inspect [--topic T] [--sender NAME] [--interval SECONDS] [--check] [--redis URL] [--json]',
  description: [
    'Shows every sender -> listener channel (lnr_connection:{U}:{S}:{L}:key): its connection key,',
    'the sender topic the listener reports as `from`, the last message number the listener',
    'acknowledged and the length of its offline queue in Redis. Queue lengths are read twice,',
    '--interval apart: a queue that holds messages and did not shrink is reported as not',
    'draining, with the likely reason (sender or listener not running).',
  ].join('\n'),
  options: {
    topic: valueOption('T', 'only channels to or from topic T (and show who serves T)'),
    sender: valueOption('NAME', 'only channels of the sender with unique name NAME'),
    interval: valueOption('SECONDS', 'time between the two samples (default 1; 0: one sample, no verdict)'),
    check: flagOption('exit with status 1 when a queue is not draining (for monitoring)'),
  },
  async run(ctx) {
    const { out, parsed } = ctx;
    const topic = stringOption(parsed, 'topic');
    const sender = stringOption(parsed, 'sender');
    const intervalMs = secondsOption(parsed, 'interval') ?? 1000;
    const redis = await openRedis(ctx);
    const directory = await redis.readTopics();
    const topicInfo = topic === undefined ? undefined : directory.find((t) => t.topic === topic);
    if (topic !== undefined && !topicInfo) {
      throw new CliError('UNKNOWN_TOPIC', `topic '${topic}' is not in ${shownUrl(ctx)} (no ${redis.name('topicAddresses', topic)} or :key)`);
    }
    const channels = await redis.readChannels(directory, { sender, topic });
    if (sender !== undefined && channels.length === 0 && !directory.some((t) => t.names.includes(sender))) {
      // Not even registered: a typo, or another Redis/database.
      const any = await redis.readChannels(directory, { sender });
      if (any.length === 0) {
        throw new CliError('UNKNOWN_SENDER', `no sender named '${sender}' in ${shownUrl(ctx)} (no ${redis.name('channelName', sender, '*', '*')}, and no address registered under that name)`);
      }
    }
    const sampled = intervalMs > 0 && channels.length > 0;
    const before = new Map(channels.map((c) => [c.connectionKey, { queueLength: c.queueLength, lastAcked: c.lastAcked }]));
    if (sampled) {
      await new Promise((r) => setTimeout(r, intervalMs));
      const now = await redis.sampleChannels(channels.map((c) => c.connectionKey));
      for (const c of channels) Object.assign(c, now.get(c.connectionKey));
    }
    const seconds = (intervalMs / 1000).toFixed(1);
    const inspected: InspectedChannel[] = channels.map((c) => {
      const b = before.get(c.connectionKey)!;
      return { ...c, queueLengthBefore: b.queueLength, lastAckedBefore: b.lastAcked, ...verdict(c, b, sampled, seconds) };
    });
    const stuck = inspected.filter((c) => c.state === 'not-draining');
    // Unfiltered runs also report queues no channel accounts for.
    const unnamed = topic === undefined && sender === undefined ? await redis.unnamedQueues(new Set(channels.map((c) => c.connectionKey))) : [];

    if (out.json) {
      out.data({
        redis: shownUrl(ctx),
        sampledMs: sampled ? intervalMs : 0,
        ...(topicInfo ? { topic: topicInfo } : {}),
        channels: inspected,
        notDraining: stuck.map((c) => c.connectionKey),
        unnamedQueues: unnamed,
      });
    } else {
      print(ctx, redis, inspected, stuck, { topicInfo, sender, sampled, seconds });
      if (unnamed.length > 0) {
        out.line();
        out.line(out.paint('yellow', `offline queue(s) of channels without a readable connection-key name (names with ':'?):`));
        for (const q of unnamed) out.line(`  ${redis.name('channelQueue', q.connectionKey)}: ${count(q.queueLength)} message(s)`);
      }
    }
    if (parsed.options.check && stuck.length > 0) {
      throw new CliError('NOT_DRAINING', `${stuck.length} offline queue(s) not draining: ${stuck.map((c) => `ck ${c.connectionKey}`).join(', ')}`);
    }
  },
};

function print(
  ctx: Parameters<Command['run']>[0],
  redis: Directory,
  channels: InspectedChannel[],
  stuck: InspectedChannel[],
  o: { topicInfo?: TopicInfo; sender?: string; sampled: boolean; seconds: string },
): void {
  const { out } = ctx;
  if (o.topicInfo) {
    const t = o.topicInfo;
    const served = t.addresses.length ? t.addresses.map((a) => `${a.address} (${a.name})`).join(', ') : out.paint('yellow', 'nobody serves it now');
    out.line(`${out.paint('bold', `topic ${t.topic}`)}  key ${t.key ?? '-'}  served by: ${served}`);
    out.line();
  }
  const scope = o.sender !== undefined ? ` of sender ${o.sender}` : o.topicInfo ? ` touching topic ${o.topicInfo.topic}` : '';
  if (channels.length === 0) {
    out.line(`no channels${scope} in ${shownUrl(ctx)}`);
    return;
  }
  const online = (n: number): string => (n > 0 ? '' : out.paint('dim', ' (down)'));
  const rows = channels.map((c) => {
    const storedFrom = c.storedSenderTopic ?? out.paint('red', '(missing)');
    const queue = c.queueLength === c.queueLengthBefore || !o.sampled ? count(c.queueLength) : `${count(c.queueLength)} (${c.queueLength - c.queueLengthBefore > 0 ? '+' : ''}${c.queueLength - c.queueLengthBefore})`;
    const acked = c.lastAcked === null ? '-' : c.lastAckedBefore !== null && c.lastAcked > c.lastAckedBefore ? `${c.lastAcked} (+${c.lastAcked - c.lastAckedBefore})` : String(c.lastAcked);
    const state =
      c.state === 'not-draining' ? out.paint('red', 'NOT DRAINING') : c.state === 'draining' ? out.paint('green', 'draining') : c.state === 'queued' ? out.paint('yellow', 'queued') : out.paint('dim', 'empty');
    return [String(c.connectionKey), `${c.sender}${online(c.senderAddresses.length)}`, storedFrom, `${c.listener}${online(c.listenerAddresses.length)}`, acked, queue, state];
  });
  out.table(['CONN KEY', 'SENDER', 'SENDER TOPIC', 'LISTENER', 'LAST ACKED', 'QUEUE', 'STATE'], rows, ['r', 'l', 'l', 'l', 'r', 'r', 'l']);
  out.line();
  const how = o.sampled ? `queues sampled twice, ${o.seconds} s apart` : 'one sample';
  out.line(out.paint('dim', `${channels.length} channel(s)${scope} in ${shownUrl(ctx)}; ${how}`));
  for (const c of channels) {
    if (c.storedSenderTopic !== null && c.storedSenderTopic !== c.senderTopic) {
      out.line(out.paint('yellow', `ck ${c.connectionKey}: ${redis.name('channelSender', c.connectionKey)} says '${c.storedSenderTopic}', the key name says '${c.senderTopic}'`));
    }
  }
  if (stuck.length > 0) {
    out.line();
    out.line(out.paint('bold', 'not draining:'));
    for (const c of stuck) {
      const what = `${count(c.queueLength)} message(s)${c.queuedFor ? ` for ${c.queuedFor}` : ''}`;
      out.line(`  ck ${c.connectionKey} ${c.sender} -> ${c.listener}: ${what}; ${c.reason}`);
    }
  }
}
