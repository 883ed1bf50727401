"""one_to_many - one publisher, several subscribers.

Three subscribers each have their own source topic and subscribe() to a common topic. The
publisher calls send_all() on the common topic: every subscriber gets every message, with
`to` = the common topic.

    python3 examples/python/one_to_many.py [redis_url]

Exits 0 when each subscriber got every message once, in order.
"""
import example

SUBSCRIBERS = 3
MESSAGES = 10
NEWS = "one_to_many.news"
PUBLISHER = "one_to_many.publisher"
SUBSCRIBER_TOPICS = ["one_to_many.subscriber%d" % (i + 1) for i in range(SUBSCRIBERS)]


def main():
    liner = example.load()
    url = example.redis_url()
    print("one_to_many: send_all to %d subscribers of %s (redis %s)" % (SUBSCRIBERS, NEWS, url))

    got = {topic: [] for topic in SUBSCRIBER_TOPICS}
    bad = []
    counter = example.Counter()

    def receiver_of(topic):
        def on_receive(to, from_, data):
            if to == NEWS and from_ == PUBLISHER:
                got[topic].append(data)
            else:
                bad.append((topic, to, from_, data))
            counter.add(topic)
        return on_receive

    subscribers = [example.client(topic, topic, url) for topic in SUBSCRIBER_TOPICS]
    publisher = example.client(PUBLISHER, PUBLISHER, url)
    try:
        for s, topic in zip(subscribers, SUBSCRIBER_TOPICS):
            # Subscribing works before run too; the address is registered when the client runs.
            example.check(s.subscribe(NEWS), s, "subscribe")
            example.run(s, receiver_of(topic))
        example.run(publisher, example.ignore)

        for i in range(1, MESSAGES + 1):
            example.send(publisher, NEWS, "news %d" % i, all_=True)

        ok = counter.wait(SUBSCRIBERS * MESSAGES)
    finally:
        for c in [publisher] + subscribers:  # senders first: receivers still read their last frames
            c.close()

    expected = [b"news %d" % i for i in range(1, MESSAGES + 1)]
    for topic in SUBSCRIBER_TOPICS:
        print("  %-28s got %2d of %d" % (topic, len(got[topic]), MESSAGES))
        ok = ok and got[topic] == expected
    ok = ok and not bad
    return example.finish("one_to_many", ok, "every message at every subscriber, once, in order")


if __name__ == "__main__":
    raise SystemExit(main())
