// The rules on names and advertise addresses (native/core/names.hpp) give the same error code
// and message in TypeScript and the CLI as in C and Python (test/python/test_rules_across_faces.py):
// one table for all, test/shared/rules_table.json. The same for the ranges of the process-wide
// limits (native/core/limits.cpp): test/shared/limits_table.json.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { getLimits, setLimits } from '../../dist/index.mjs';
import { root, expectFailure } from './support/cli.js';
import { Client, LinerError, redisUrl, useMesh } from './support/testkit.js';

const mesh = useMesh();

interface Case {
  case: string;
  call: 'create' | 'subscribe' | 'advertise';
  name?: string;
  topic?: string;
  addr?: string;
  code: string;
  message: string;
}
const cases = (JSON.parse(fs.readFileSync(path.join(root, 'test', 'shared', 'rules_table.json'), 'utf8')) as { cases: Case[] }).cases;

async function thrown(call: () => unknown): Promise<LinerError> {
  try {
    await call();
  } catch (e) {
    expect(e).toBeInstanceOf(LinerError);
    return e as LinerError;
  }
  throw new Error('no error');
}

test.each(cases)('TypeScript: $case', async (c) => {
  const base = { redis: redisUrl, listen: '127.0.0.1:0' };
  let e: LinerError;
  if (c.call === 'create') {
    e = await thrown(() => new Client({ ...base, name: c.name!, topic: c.topic! }));
  } else if (c.call === 'advertise') {
    e = await thrown(() => new Client({ ...base, name: 'rules_ts', topic: 'rules_ts_topic', advertise: c.addr! }));
  } else {
    const client = mesh.client('rules_ts', 'rules_ts_topic');
    e = await thrown(() => client.subscribe(c.topic!));
  }
  expect({ code: e.code, reason: e.reason }).toEqual({ code: c.code, reason: c.message });
  expect(e.message.startsWith(`${c.message} (${c.code}: `)).toBe(true);
});

// The CLI takes names (no advertise address): a bad one is a usage error (exit 2) that says
// what the core says.
const cliArgs: Record<string, (c: Case) => string[] | undefined> = {
  create: (c) => ['listen', '--topic', c.topic!, '--name', c.name!, '--redis', redisUrl],
  subscribe: (c) => ['listen', '--topic', 'rules_cli_topic', '--subscribe', c.topic!, '--redis', redisUrl],
  advertise: () => undefined,
};
test.each(cases.filter((c) => cliArgs[c.call](c)))('CLI: $case', async (c) => {
  const escaped = c.message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  await expectFailure(cliArgs[c.call](c)!, 2, new RegExp(`^liner listen: ${escaped}$`));
});

interface LimitCase {
  case: string;
  limit: string;
  value: number;
  code: string;
  message: string;
}
const limitsTable = JSON.parse(fs.readFileSync(path.join(root, 'test', 'shared', 'limits_table.json'), 'utf8')) as {
  limits: Record<string, { ts?: string; tsOption?: string }>;
  cases: LimitCase[];
};

test.each(limitsTable.cases)('TypeScript limit: $case', async (c) => {
  const face = limitsTable.limits[c.limit];
  let e: LinerError;
  if (face.ts) {
    const before = getLimits();
    e = await thrown(() => setLimits({ [face.ts!]: c.value }));
    expect(getLimits()).toEqual(before);
  } else {
    // No process-wide setter: the client's own value, which start() refuses.
    const client = new Client({ name: 'limits_ts', topic: 'limits_ts_topic', redis: redisUrl, [face.tsOption!]: c.value });
    try {
      e = await thrown(() => client.start());
    } finally {
      await client.close();
    }
  }
  expect({ code: e.code, reason: e.reason }).toEqual({ code: c.code, reason: c.message });
  expect(e.message.startsWith(`${c.message} (${c.code}: `)).toBe(true);
});
