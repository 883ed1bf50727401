/**
 * `liner topics`: every topic of the mesh with the addresses that serve it, their unique
 * names and the topic key.
 *
 * @internal
 * @packageDocumentation
 */
import { flagOption } from './args.js';
import type { Command } from './command.js';
import { openRedis, shownUrl } from './command.js';

export const topics: Command = {
  name: 'topics',
  summary: 'every topic: who serves it (address, unique name) and its topic key',
  usage: 'liner topics [--served] [--redis URL] [--json]',
  description: [
    'Lists the topics Redis knows (lnr_topic:{topic}:addr and :key, found with SCAN), with the',
    'addresses registered under each and the unique names behind them. A topic with a key but',
    'no address has been used, but nobody serves it now.',
  ].join('\n'),
  options: {
    served: flagOption('only topics that at least one peer serves now'),
  },
  async run(ctx) {
    const redis = await openRedis(ctx);
    let list = await redis.readTopics();
    if (ctx.parsed.options.served) list = list.filter((t) => t.addresses.length > 0);
    // Behind Sentinel the URL names no server: say which master answered.
    const master = /^rediss?\+sentinel:/.test(ctx.storeUrl) ? await redis.server() : '';
    const { out } = ctx;
    if (out.json) {
      out.data({ redis: shownUrl(ctx), ...(master ? { master } : {}), topics: list });
      return;
    }
    if (master) out.line(out.paint('dim', `redis master: ${master} (from the sentinels)`));
    if (list.length === 0) {
      out.line(`no liner topics in ${shownUrl(ctx)}`);
      return;
    }
    const rows: string[][] = [];
    for (const t of list) {
      const name = t.internal ? `${t.topic} ${out.paint('dim', '(internal)')}` : out.paint('bold', t.topic);
      const key = t.key === null ? '-' : String(t.key);
      if (t.addresses.length === 0) {
        rows.push([name, key, out.paint('yellow', '(nobody serves it)'), '']);
        continue;
      }
      t.addresses.forEach((a, i) => rows.push([i === 0 ? name : '', i === 0 ? key : '', a.address, a.name]));
    }
    out.table(['TOPIC', 'KEY', 'ADDRESS', 'UNIQUE NAME'], rows, ['l', 'r', 'l', 'l']);
    const served = list.filter((t) => t.addresses.length > 0).length;
    out.line();
    out.line(out.paint('dim', `${list.length} topic(s), ${served} served, in ${shownUrl(ctx)}`));
  },
};
