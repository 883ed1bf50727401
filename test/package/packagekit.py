"""What the package tests share: running a command that must succeed, with its output in the
failure message."""
import shlex
import subprocess

import pytest


def run(cmd, timeout=600, **kw):
    """Runs cmd; on failure (exit status or timeout), fails the test with the command and its
    combined output. Returns the output."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"{shlex.join(cmd)}: did not finish within {timeout} s\n{out}")
    if p.returncode != 0:
        pytest.fail(f"{shlex.join(cmd)}: exit status {p.returncode}\n{p.stdout}")
    return p.stdout
