"""one_to_one_for_many - several senders, one receiver.

Three senders send to the same receiver topic. The receiver tells them apart by `from_`, the
sender's source topic; each sender's messages arrive in that sender's order.

    python3 examples/python/one_to_one_for_many.py [redis_url]

Exits 0 when the receiver got every message of every sender once, in each sender's order.
"""
import example

SENDERS = 3
MESSAGES = 10  # per sender
RECEIVER = "one_to_one_for_many.receiver"
SENDER_TOPICS = ["one_to_one_for_many.sender%d" % (s + 1) for s in range(SENDERS)]


def main():
    liner = example.load()
    url = example.redis_url()
    print("one_to_one_for_many: %d senders, one receiver (redis %s)" % (SENDERS, url))

    got = {topic: [] for topic in SENDER_TOPICS}
    unexpected = []
    counter = example.Counter()

    def on_receive(to, from_, data):
        if to == RECEIVER and from_ in got:
            got[from_].append(data)
        else:
            unexpected.append((to, from_, data))
        counter.add(from_)

    receiver = example.client(RECEIVER, RECEIVER, url)
    senders = [example.client(topic, topic, url) for topic in SENDER_TOPICS]
    try:
        example.run(receiver, on_receive)
        for s in senders:
            example.run(s, example.ignore)

        # Interleave the senders, as independent processes would.
        for i in range(1, MESSAGES + 1):
            for s, topic in zip(senders, SENDER_TOPICS):
                example.send(s, RECEIVER, "%s says %d" % (topic, i))

        ok = counter.wait(SENDERS * MESSAGES)
    finally:
        for c in senders + [receiver]:  # senders first: the receiver still reads their last frames
            c.close()

    for topic in SENDER_TOPICS:
        expected = [b"%s says %d" % (topic.encode(), i) for i in range(1, MESSAGES + 1)]
        print("  from %-32s %2d of %d" % (topic, len(got[topic]), MESSAGES))
        ok = ok and got[topic] == expected
    ok = ok and not unexpected
    return example.finish("one_to_one_for_many", ok, "every sender's messages once, in its order")


if __name__ == "__main__":
    raise SystemExit(main())
