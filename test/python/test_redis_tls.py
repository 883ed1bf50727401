"""Redis over TLS (rediss://): traffic and offline delivery work through a TLS-only server, the
server is always verified (chain and name), client certificates are sent when the URL names them,
and every refusal is a clear STORE error that names the cause and never shows the password."""
import os
import shutil
import subprocess
import sys
import time

import pytest

import liner
from liner_testkit import Inbox, made_and_closed, seq_of, seq_payload, wait_until
from tls_redis import TlsRedis

PASSWORD = "tls-s3cret/with?odd@chars"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    server = TlsRedis(str(tmp_path_factory.mktemp("tls-redis")), password=PASSWORD)
    yield server
    server.close()


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory):
    """Requires a client certificate signed by its CA."""
    server = TlsRedis(str(tmp_path_factory.mktemp("mtls-redis")), client_certs=True)
    yield server
    server.close()


@pytest.fixture
def make_client():
    yield from made_and_closed(lambda name, topic, url, addr="127.0.0.1:0": liner.Client(name, topic, addr, url),
                               reverse=True)


def refusal(url):
    """The LinerError of creating a client on `url`."""
    with pytest.raises(liner.LinerError) as e:
        liner.Client("refused", "refused_topic", "127.0.0.1:0", url)
    assert PASSWORD not in e.value.message and "s3cret" not in e.value.message, e.value.message
    return e.value


def test_messages_flow_over_a_tls_redis(tls_server, make_client):
    url = tls_server.url(ca="ca.pem")
    listener = make_client("tls_rx", "tls_rx_topic", url)
    inbox = Inbox()
    assert listener.run(inbox), listener.last_error_message()
    sender = make_client("tls_tx", "tls_tx_topic", url)
    assert sender.run(Inbox()), sender.last_error_message()
    for i in range(100):
        assert sender.send_to("tls_rx_topic", seq_payload(i), True), sender.last_error_message()
    assert inbox.wait_count(100, 10) == 100
    assert sorted(seq_of(d) for d in inbox.payloads()) == list(range(100))
    # The directory really is on the TLS server.
    assert tls_server.cli("HKEYS", "lnr_topic:tls_rx_topic:addr") == listener.bound_listen_addr()


def test_offline_delivery_over_tls(tls_server, make_client):
    url = tls_server.url(ca="ca.pem", db=1)
    addr = "127.0.0.1:%d" % __import__("liner_testkit").free_port()
    listener = make_client("tls_off_rx", "tls_off_rx_topic", url, addr)
    assert listener.run(Inbox())
    sender = make_client("tls_off_tx", "tls_off_tx_topic", url)
    assert sender.run(Inbox())
    assert sender.send_to("tls_off_rx_topic", b"warm-up", True)
    time.sleep(0.3)
    assert listener.close()
    for i in range(1, 51):
        assert sender.send_to("tls_off_rx_topic", seq_payload(i), True), sender.last_error_message()
    ck = tls_server.cli("-n", "1", "GET", "lnr_connection:tls_off_tx:tls_off_tx_topic:tls_off_rx:key")
    assert wait_until(lambda: tls_server.cli("-n", "1", "LLEN", "lnr_connection:%s:messages" % ck) == "50", 10)
    again = make_client("tls_off_rx", "tls_off_rx_topic", url, addr)
    inbox = Inbox()
    assert again.run(inbox)
    assert inbox.wait_count(50, 15) == 50
    assert [seq_of(d) for d in inbox.payloads()] == list(range(1, 51))
    assert wait_until(lambda: tls_server.cli("-n", "1", "LLEN", "lnr_connection:%s:messages" % ck) == "0", 10)


def test_a_server_signed_by_another_ca_is_refused(tls_server):
    e = refusal(tls_server.url(ca="other-ca.pem"))
    assert e.code == liner.ERR_STORE
    assert "certificate" in e.message and "not accepted" in e.message, e.message
    assert "127.0.0.1:%d" % tls_server.port in e.message


def test_without_ca_the_system_trust_store_decides(tls_server):
    # The test CA is in no system store: refused...
    e = refusal(tls_server.url())
    assert e.code == liner.ERR_STORE and "certificate" in e.message, e.message
    # ...unless SSL_CERT_FILE names it (OpenSSL's variable for the default trust store).
    code = ("import liner; liner.load_lib(); c = liner.Client('t', 't_topic', '127.0.0.1:0', %r); "
            "print('connected'); c.close()" % tls_server.url())
    env = dict(os.environ, SSL_CERT_FILE=tls_server.files["ca.pem"],
               PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "python"), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert "connected" in out.stdout, out.stderr


def test_without_ca_the_distributions_ca_bundle_is_read(tls_server):
    # The bundle Debian keeps at /etc/ssl/certs/ca-certificates.crt, replaced (in a private mount
    # namespace) by the test CA: liner's linked-in OpenSSL finds it with no ca= and no variable.
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    if not os.path.exists(bundle) or not shutil.which("unshare"):
        pytest.skip("needs %s and unshare" % bundle)
    if "san" in os.environ.get("LD_PRELOAD", ""):
        # Seen: ThreadSanitizer's runtime crashes the child at start inside unshare (SIGSEGV
        # before Python runs); the plain suite runs this test.
        pytest.skip("a sanitizer runtime is preloaded (scripts/sanitize.sh)")
    code = ("import liner; liner.load_lib(); c = liner.Client('t', 't_topic', '127.0.0.1:0', %r); "
            "print('connected'); c.close()" % tls_server.url())
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "python"), os.environ.get("PYTHONPATH", "")])
    script = 'mount --bind "$1" "$2" && exec "$3" -c "$4"'
    out = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", tls_server.files["ca.pem"], bundle,
                          sys.executable, code], env=env, capture_output=True, text=True, timeout=30)
    if "Operation not permitted" in out.stderr:
        pytest.skip("no permission for a private mount namespace: " + out.stderr.strip())
    assert "connected" in out.stdout, out.stderr


def test_the_server_name_is_verified(tls_server, make_client):
    # localhost is in the certificate too; a name that is not is refused, even with the right CA.
    assert make_client("tls_name", "tls_name_topic", tls_server.url(host="localhost", ca="ca.pem"))
    e = refusal(tls_server.url(ca="ca.pem", sni="redis.example.com"))
    assert "hostname mismatch" in e.message and "redis.example.com" in e.message, e.message


def test_plain_redis_to_a_tls_port_fails_and_does_not_hang(tls_server):
    started = time.monotonic()
    e = refusal("redis://:%s@127.0.0.1:%d/0" % (PASSWORD.replace("/", "%2F").replace("?", "%3F")
                                                .replace("@", "%40"), tls_server.port))
    assert e.code == liner.ERR_STORE
    assert time.monotonic() - started < 10


def test_tls_to_a_plain_server_fails_clearly(redis_server):
    e = refusal("rediss://127.0.0.1:%d/0" % redis_server.port)
    assert e.code == liner.ERR_STORE and "TLS" in e.message, e.message


def test_files_that_cannot_be_used_are_named(tls_server, tmp_path):
    e = refusal(tls_server.url(ca=str(tmp_path / "missing.pem")))
    assert "missing.pem" in e.message and "ca=" in e.message and "No such file" in e.message, e.message
    e = refusal(tls_server.url(ca="server.key"))  # a key where a CA bundle belongs
    assert "server.key" in e.message, e.message
    e = refusal(tls_server.url(ca="ca.pem", cert="client.pem", key="server.key"))
    assert "mismatch" in e.message and "server.key" in e.message and "client.pem" in e.message, e.message


def test_bad_tls_urls_are_invalid_arguments(tls_server):
    for url, why in [
        ("redis://127.0.0.1:%d/0?ca=/x.pem" % tls_server.port, "scheme must be rediss"),
        (tls_server.url(ca="ca.pem", cert="client.pem"), "both cert= and key="),
        (tls_server.url(ca="ca.pem", verify="none"), "unknown query parameter 'verify'"),
        (tls_server.url(ca=""), "needs a value"),
    ]:
        e = refusal(url)
        assert e.code == liner.ERR_INVALID_ARG and why in e.message, (url, e.message)


def test_client_certificates_are_sent_when_named(mtls_server, make_client):
    e = refusal(mtls_server.url(ca="ca.pem"))  # the server wants a certificate
    assert e.code == liner.ERR_STORE, e.message
    client = make_client("mtls", "mtls_topic", mtls_server.url(ca="ca.pem", cert="client.pem", key="client.key"))
    assert client.run(Inbox()), client.last_error_message()
    assert wait_until(lambda: mtls_server.cli("HLEN", "lnr_topic:mtls_topic:addr") == "1", 5)
