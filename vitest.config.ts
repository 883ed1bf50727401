// vitest: the TypeScript suite (test/ts). Every file gets a Redis database of its own on one
// redis-server (LINER_TEST_REDIS_URL, or a private one started by the global setup), so files
// run in parallel; most of their time is spent waiting for peers, not on the CPU.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/ts/**/*.test.ts'],
    globalSetup: ['test/ts/support/global_setup.ts'],
    // A process per file: native threads, process exit and GC behaviour stay per file.
    pool: 'forks',
    poolOptions: { forks: { minForks: 1, maxForks: 4 } },
    testTimeout: 60_000,
    hookTimeout: 30_000,
    teardownTimeout: 30_000,
  },
});
