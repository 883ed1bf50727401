/**
 * Producer - consumer: a producer sends jobs to "example.jobs", served by three worker replicas
 * (same topic, different names); sendTo gives each job to ONE of them, round-robin. Workers
 * report to the producer. At-least-once (the default) means a job waits in Redis if no worker
 * is up, and BUSY means "slow down": the producer then awaits drain().
 *
 *   node build/examples/ts/producer_consumer.js [redis_url]
 *
 * Exits 0 when every job was done exactly once within 5 s; otherwise 1, saying why on stderr.
 */
import { Client, LinerError } from 'liner-broker';

const JOBS = 30;

async function main(redis = 'redis://127.0.0.1:6379/0'): Promise<void> {
  const workers = [1, 2, 3].map((i) => new Client({ name: `example.worker-${i}`, topic: 'example.jobs', redis }));
  const producer = new Client({ name: 'example.producer', topic: 'example.producer', redis });
  const doneBy = new Map<string, number>();
  try {
    for (const worker of workers) {
      worker.on('message', ({ from, data }) => worker.sendTo(from, `${data} done by ${worker.name}`));
      await worker.start();
    }
    producer.on('message', ({ data }) => {
      const by = data.toString().split(' done by ')[1]!;
      doneBy.set(by, (doneBy.get(by) ?? 0) + 1);
    });
    await producer.start();

    for (let i = 1; i <= JOBS; i++) {
      for (;;) {
        try {
          producer.sendTo('example.jobs', `job ${i}`);
          break;
        } catch (e) {
          if (!(e instanceof LinerError && e.code === 'BUSY')) throw e;
          await producer.drain();
        }
      }
    }
    const total = (): number => [...doneBy.values()].reduce((a, b) => a + b, 0);
    const deadline = Date.now() + 5000;
    while (total() < JOBS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const [name, n] of [...doneBy].sort()) console.log(`${name} did ${n} jobs`);
    if (total() !== JOBS) throw new Error(`${total()} of ${JOBS} jobs done within 5 s`);
  } finally {
    await producer.close();
    await Promise.all(workers.map((w) => w.close()));
  }
}

// A LinerError (Redis unreachable, a send refused) or a missing message: exit 1, saying why.
main(process.argv[2]).catch((e: unknown) => {
  console.error(`error: producer_consumer: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
