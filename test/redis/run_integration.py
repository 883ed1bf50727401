#!/usr/bin/env python3
"""Runs the Redis integration scenarios of test/redis/ (integration_*.py), each in a process of
its own, over the python/liner package and the library in build/.

    python3 test/redis/run_integration.py                      # all, stop at the first failure
    python3 test/redis/run_integration.py --list               # their names
    python3 test/redis/run_integration.py --only burst,offline # names containing a substring
    python3 test/redis/run_integration.py --continue-on-fail   # all, then the list of failures

Redis: LINER_TEST_REDIS_URL if set; else redis://127.0.0.1:$LINER_TEST_REDIS_PORT/0 (default
port 16379), where a private redis-server is started for the run when nothing answers (and
stopped at the end). Scenarios use names with a random suffix and delete their keys: they never
flush a database, so a shared Redis is fine.

Exit status: 0 all passed, 1 a scenario failed, 2 nothing to run (or bad arguments).
"""
import argparse
import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _support import ensure_redis  # noqa: E402


def discover(directory):
    """(name, path) of every integration_*.py, sorted; name = file name without prefix/suffix."""
    paths = sorted(glob.glob(os.path.join(directory, "integration_*.py")))
    return [(os.path.basename(p)[len("integration_"):-len(".py")], p) for p in paths]


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run the liner Redis integration scenarios.")
    ap.add_argument("--list", action="store_true", help="print the scenario names and exit")
    ap.add_argument("--only", default="", metavar="A,B",
                    help="run only scenarios whose name contains one of these substrings")
    ap.add_argument("--continue-on-fail", action="store_true",
                    help="run every scenario even after a failure")
    ap.add_argument("--dir", default=HERE, help=argparse.SUPPRESS)  # other scenarios (the harness's own test)
    ap.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                    help="a scenario running longer fails (default 120)")
    args = ap.parse_args(argv)

    scenarios = discover(args.dir)
    if not scenarios:
        print(f"no integration_*.py in {args.dir}", file=sys.stderr)
        return 2
    if args.list:
        for name, _ in scenarios:
            print(name)
        return 0
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    if wanted:
        scenarios = [(n, p) for n, p in scenarios if any(w in n for w in wanted)]
        if not scenarios:
            print(f"no scenario matches --only {args.only}", file=sys.stderr)
            return 2

    try:
        url, server = ensure_redis()
    except (RuntimeError, TimeoutError) as e:
        print(f"run_integration: {e}", file=sys.stderr)
        return 1
    print(f"redis: {url}" + (" (private redis-server, started for this run)" if server else ""), flush=True)
    env = dict(os.environ, LINER_TEST_REDIS_URL=url)
    failures = []
    started_all = time.monotonic()
    try:
        for name, path in scenarios:
            print(f"\n=== RUN  {name}", flush=True)
            started = time.monotonic()
            try:
                rc = subprocess.run([sys.executable, path], env=env, timeout=args.timeout).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
            took = time.monotonic() - started
            if rc == 0:
                print(f"=== OK   {name} ({took:.2f} s)", flush=True)
                continue
            print(f"=== FAIL {name} (exit {rc}, {took:.2f} s)", flush=True)
            failures.append((name, rc))
            if not args.continue_on_fail:
                break
    finally:
        if server:
            server.stop()
    took_all = time.monotonic() - started_all
    if failures:
        print("\nfailed:", file=sys.stderr)
        for name, rc in failures:
            print(f"  {name} (exit {rc})", file=sys.stderr)
        print(f"\nTOTAL: FAIL, {len(failures)} of {len(scenarios)} ({took_all:.2f} s)")
        return 1
    print(f"\nTOTAL: OK, {len(scenarios)} scenario(s) ({took_all:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
