"""An exception raised by a receive callback is printed to stderr and delivery goes on."""
from liner_testkit import Inbox


def test_exception_in_callback_is_printed_and_delivery_continues(make_client, capfd):
    inbox = Inbox()

    def on_message(to, from_, data):
        inbox(to, from_, data)
        if data == b"boom":
            raise ValueError("callback failed on purpose")

    listener = make_client("listener", "listener_topic")
    sender = make_client("sender", "sender_topic")
    assert listener.run(on_message)
    assert sender.run(Inbox())
    for data in (b"one", b"boom", b"two", b"boom", b"three"):
        assert sender.send_to("listener_topic", data)
    assert inbox.wait_count(5) == 5
    assert inbox.payloads() == [b"one", b"boom", b"two", b"boom", b"three"]
    err = capfd.readouterr().err
    assert err.count("ValueError: callback failed on purpose") == 2
    assert "Traceback" in err


def test_system_exit_in_callback_does_not_end_the_process(make_client, capfd):
    inbox = Inbox()

    def on_message(to, from_, data):
        inbox(to, from_, data)
        raise SystemExit(3)

    listener = make_client("listener", "listener_topic")
    sender = make_client("sender", "sender_topic")
    assert listener.run(on_message)
    assert sender.run(Inbox())
    assert sender.send_to("listener_topic", b"a")
    assert sender.send_to("listener_topic", b"b")
    assert inbox.wait_count(2) == 2
    assert "SystemExit" in capfd.readouterr().err
