"""producer_consumer - a round-robin work queue.

Three consumers are replicas of one topic (same topic, distinct unique names). The producer
send_to()s jobs to that topic; liner hands each job to one consumer, in turn. Each consumer
replies to the producer's topic with the job's result, so the producer knows every job was done.

    python3 examples/python/producer_consumer.py [redis_url]

Exits 0 when every job was done exactly once and every consumer got its share.
"""
import example

CONSUMERS = 3
JOBS = 30
JOBS_TOPIC = "producer_consumer.jobs"
PRODUCER = "producer_consumer.producer"
CONSUMER_NAMES = ["producer_consumer.consumer%d" % (i + 1) for i in range(CONSUMERS)]


def main():
    liner = example.load()
    url = example.redis_url()
    print("producer_consumer: %d jobs over %d consumers of %s (redis %s)"
          % (JOBS, CONSUMERS, JOBS_TOPIC, url))

    done_by = {name: [] for name in CONSUMER_NAMES}
    results = {}
    counter = example.Counter()

    def consumer_of(client):
        name = client.unique_name()

        def on_job(to, from_, data):
            job = int(data.split()[1])
            done_by[name].append(job)
            # Replying from inside the callback is allowed.
            example.send(client, from_, b"result %d %d" % (job, job * job))
        return on_job

    def on_result(to, from_, data):
        _, job, square = data.split()
        results[int(job)] = results.get(int(job), 0) + 1
        counter.add(int(square) == int(job) ** 2)

    consumers = [example.client(name, JOBS_TOPIC, url) for name in CONSUMER_NAMES]
    producer = example.client(PRODUCER, PRODUCER, url)
    try:
        for c in consumers:
            example.run(c, consumer_of(c))
        example.run(producer, on_result)

        for job in range(1, JOBS + 1):
            example.send(producer, JOBS_TOPIC, "job %d" % job)

        ok = counter.wait(JOBS)
    finally:
        for c in [producer] + consumers:
            c.close()

    for name in CONSUMER_NAMES:
        print("  %-28s did %2d jobs" % (name, len(done_by[name])))
        ok = ok and len(done_by[name]) > 0
    ok = ok and sorted(results) == list(range(1, JOBS + 1)) and set(results.values()) == {1}
    ok = ok and counter.get(True) == JOBS
    print("  producer got %d of %d results" % (len(results), JOBS))
    return example.finish("producer_consumer", ok, "every job done once, and a share for every consumer")


if __name__ == "__main__":
    raise SystemExit(main())
