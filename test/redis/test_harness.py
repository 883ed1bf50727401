"""The Redis integration harness (run_integration.py): --list, --only (substring match),
--continue-on-fail, the private redis-server it starts when nothing answers on
LINER_TEST_REDIS_PORT, and every scenario passing against the test Redis.

The scenarios run on database 12 of the session's Redis (test/conftest.py): they never flush,
and the other suites use databases 0 to 4.
"""
import os
import re
import socket
import subprocess
import sys
import textwrap

import pytest
from liner_testkit import free_port  # the shared test kit (test/conftest.py puts it on the path)

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "run_integration.py")
SCENARIOS = sorted(f[len("integration_"):-3] for f in os.listdir(HERE) if f.startswith("integration_") and f.endswith(".py"))


def answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def harness(*args, url=None, port=None, timeout=180):
    env = {k: v for k, v in os.environ.items() if k not in ("LINER_TEST_REDIS_URL", "LINER_TEST_REDIS_PORT")}
    if url:
        env["LINER_TEST_REDIS_URL"] = url
    if port:
        env["LINER_TEST_REDIS_PORT"] = str(port)
    return subprocess.run([sys.executable, RUNNER, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def url(redis_server):
    return f"redis://{redis_server.host}:{redis_server.port}/12"


@pytest.fixture
def fake_scenarios(tmp_path):
    """A scenario directory: a_fails and c_fails exit 3, b_passes exits 0."""
    for name, rc in (("a_fails", 3), ("b_passes", 0), ("c_fails", 3)):
        (tmp_path / f"integration_{name}.py").write_text(textwrap.dedent(f"""\
            import os, sys
            print("scenario {name} on", os.environ["LINER_TEST_REDIS_URL"])
            sys.exit({rc})
            """))
    return str(tmp_path)


def ran(stdout):
    return re.findall(r"^=== RUN  (\S+)", stdout, re.M)


def test_list_names_every_scenario():
    r = harness("--list")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == SCENARIOS
    assert {"smoke_delivery", "offline_delivery_at_least_once", "burst_1000"} <= set(SCENARIOS)


def test_only_runs_the_matching_scenarios_on_a_private_redis_server():
    port = free_port()
    assert not answers(port)
    r = harness("--only", "smoke, round_robin", port=port)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ran(r.stdout) == ["round_robin_replicas", "smoke_delivery"]
    assert f"redis: redis://127.0.0.1:{port}/0 (private redis-server, started for this run)" in r.stdout
    assert "TOTAL: OK, 2 scenario(s)" in r.stdout
    assert not answers(port), "the private redis-server was left running"


def test_only_without_a_match_runs_nothing():
    r = harness("--only", "no_such_scenario")
    assert r.returncode == 2
    assert "no scenario matches --only no_such_scenario" in r.stderr


def test_stops_at_the_first_failure(fake_scenarios, url):
    r = harness("--dir", fake_scenarios, url=url)
    assert r.returncode == 1
    assert ran(r.stdout) == ["a_fails"]
    assert "=== FAIL a_fails (exit 3" in r.stdout
    assert "a_fails (exit 3)" in r.stderr


def test_continue_on_fail_runs_everything_and_lists_the_failures(fake_scenarios, url):
    r = harness("--continue-on-fail", "--dir", fake_scenarios, url=url)
    assert r.returncode == 1
    assert ran(r.stdout) == ["a_fails", "b_passes", "c_fails"]
    assert "=== OK   b_passes" in r.stdout
    assert f"scenario b_passes on {url}" in r.stdout  # the URL reaches the scenarios
    assert re.findall(r"^  (\S+) \(exit 3\)$", r.stderr, re.M) == ["a_fails", "c_fails"]
    assert "TOTAL: FAIL, 2 of 3" in r.stdout


def test_a_redis_answering_on_the_port_is_used(fake_scenarios, redis_server):
    r = harness("--only", "b_passes", "--dir", fake_scenarios, port=redis_server.port)
    assert r.returncode == 0, r.stderr
    assert f"redis: redis://127.0.0.1:{redis_server.port}/0\n" in r.stdout


def test_an_unreachable_url_is_not_replaced(fake_scenarios):
    r = harness("--dir", fake_scenarios, url=f"redis://127.0.0.1:{free_port()}/0")
    assert r.returncode != 0
    assert "does not answer" in r.stderr


def test_every_scenario_passes(url):
    r = harness("--continue-on-fail", url=url)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert ran(r.stdout) == SCENARIOS
