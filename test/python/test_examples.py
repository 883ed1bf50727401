"""Every example in examples/python runs against the test Redis and exits 0 within seconds, and
exits 1 with a reason on stderr when it cannot reach Redis."""
import os
import subprocess
import sys

import pytest
from liner_testkit import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = ["one_to_one", "one_to_one_for_many", "one_to_many", "many_to_many", "producer_consumer"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_and_succeeds(redis, name):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "python", name + ".py"),
                             redis.url], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("%s: OK" % name), result.stdout


@pytest.mark.parametrize("name", ["one_to_one"])
def test_example_runs_twice_on_the_same_redis(redis, name):
    for _ in range(2):
        result = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "python", name + ".py"),
                                 redis.url], capture_output=True, text=True, timeout=30, cwd=ROOT)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_fails_loudly_when_redis_is_unreachable(name):
    """An example is documentation that runs: when it cannot do what it shows, it must fail whoever
    runs it (exit 1, a reason on stderr), not print an error and exit 0."""
    unreachable = "redis://127.0.0.1:%d/0" % free_port()  # nothing listens there
    result = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "python", name + ".py"),
                             unreachable], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: " in result.stderr and "unreachable" in result.stderr, result.stderr


C_EXAMPLES = sorted(f for f in os.listdir(os.path.join(ROOT, "examples", "c")) if f.endswith(".c"))


@pytest.mark.parametrize("name", C_EXAMPLES)
def test_c_example_builds_with_the_documented_command(name, tmp_path):
    """A C user builds an example the way docs/bindings.md says (plain `cc -std=c11`, no extra
    feature macros): it must compile, link and warn about nothing."""
    sys.path.insert(0, os.path.join(ROOT, "test", "docs"))
    import docblocks  # the docs check owns the documented command
    argv = docblocks.c_command(os.path.join(ROOT, "examples", "c", name), str(tmp_path / "app"), True,
                               build=os.path.join(ROOT, "build"))
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # the compiler is not under test
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert result.returncode == 0, " ".join(argv) + "\n" + result.stderr
