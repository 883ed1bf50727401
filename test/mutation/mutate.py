#!/usr/bin/env python3
"""The mutation check: plants each curated bug of mutants.py in a copy of the tree and expects
the tests named with it to fail.

    python3 test/mutation/mutate.py                 a sample that fits the time budget, chosen
                                                    by day (--budget, default 240 s, counted from
                                                    the copy's first build); fails if no mutant
                                                    ran
    python3 test/mutation/mutate.py --all           every mutant, whatever it takes
    python3 test/mutation/mutate.py --only ID,ID     these mutants
    python3 test/mutation/mutate.py --list          the list, without running anything

Why a scripted harness rather than StrykerJS, mutmut or mull: the mutants are a curated list of
bugs that matter to the delivery promise (dedup, acks, re-queue, round-robin, caps, frame
checks, names), across three languages, and each must be killed; generated operator mutants
would be hundreds per file (far over a 10-minute budget on two cores, and mostly equivalent or
trivial), and each tool covers one language with its own report. One list, one report, one
budget.

How one mutant runs (invariants):
- The tree is copied to <workdir>/liner (files git knows, plus untracked ones it does not
  ignore), node_modules linked, and built there once (-O0: the quickest to rebuild). The
  original tree is never written.
- A mutant replaces one exact text that must occur exactly once in its file; a text that is
  missing or repeated fails the check (the mutant went stale: fix the list, never skip it).
- The copy is built (only the targets its tests need), its tests run in order, and the file is
  restored. It is killed when a test command fails or times out; it survived when all pass;
  a mutant that does not build fails the check (a curated bug must be a compilable one).
- Before any mutant, every test command the selected mutants use runs once on the unmutated
  copy and must pass: a kill then means the mutant broke it, not the copy.
The report (one line per mutant) and a summary line are printed; the exit status is non-zero
when any mutant survived, went stale, did not build, or a baseline test failed.
"""
import argparse
import datetime
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from mutants import MUTANTS  # noqa: E402

# Each test command gets this long; a mutant that makes a test hang is killed by the timeout.
COMMAND_TIMEOUT = 180


def log(msg):
    print(msg, flush=True)


def run(cmd, cwd, env=None, timeout=None, quiet=True):
    """Runs cmd; returns (exit status or 'timeout', output tail)."""
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return "timeout", out[-3000:]
    if not quiet:
        sys.stdout.write(p.stdout)
    return p.returncode, p.stdout[-3000:]


class Copy:
    """The mutable copy of the tree and its build directory."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "liner")
        self.build = os.path.join(self.dir, "build")
        self.tsc_done = False

    def sync(self):
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                               check=True, stdout=subprocess.PIPE).stdout.decode().split("\0")
        copied = 0
        for rel in filter(None, files):
            src, dst = os.path.join(ROOT, rel), os.path.join(self.dir, rel)
            if not os.path.isfile(src):
                continue  # deleted in the working tree
            with open(src, "rb") as f:
                data = f.read()
            if os.path.exists(dst):
                with open(dst, "rb") as f:
                    if f.read() == data:
                        continue  # unchanged: keeps its mtime, so nothing rebuilds
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "wb") as f:
                f.write(data)
            shutil.copymode(src, dst)
            copied += 1
        # The TS layer is mutated, never the addon: the copy uses the original's dependencies
        # and built addon.
        for name in ("node_modules", "prebuilds"):
            link = os.path.join(self.dir, name)
            if not os.path.lexists(link):
                os.symlink(os.path.join(ROOT, name), link)
        return copied

    def configure(self):
        if os.path.exists(os.path.join(self.build, "build.ninja")):
            return 0, ""
        spec = os.path.join(os.path.dirname(ROOT), "shared", "spec")
        return run(["cmake", "-S", self.dir, "-B", self.build, "-G", "Ninja",
                    "-DCMAKE_BUILD_TYPE=Debug", "-DCMAKE_C_FLAGS_DEBUG=-O0", "-DCMAKE_CXX_FLAGS_DEBUG=-O0",
                    "-DLINER_BUILD_BENCH=OFF", "-DLINER_SPEC_DIR=" + spec], cwd=self.dir)

    def build_targets(self, targets):
        if not targets:
            return 0, ""
        return run(["cmake", "--build", self.build, "--target", *sorted(targets)], cwd=self.dir)

    def tsc(self):
        return run([os.path.join(self.dir, "node_modules", ".bin", "tsc"), "-p", "tsconfig.json"], cwd=self.dir)


def targets_of(commands):
    """The CMake targets a list of test commands needs."""
    out = set()
    for kind, args in commands:
        if kind == "pytest":
            out.add("liner_broker")
        elif kind == "ctest":
            out.update(args)
    return out


def needs_tsc(commands):
    return any(kind == "vitest" for kind, _ in commands)


def command_line(copy, kind, args):
    if kind == "pytest":
        return [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *args]
    if kind == "ctest":
        return ["ctest", "--test-dir", copy.build, "--timeout", str(COMMAND_TIMEOUT),
                "-R", "^(" + "|".join(args) + ")$"]
    if kind == "vitest":
        return [os.path.join(copy.dir, "node_modules", ".bin", "vitest"), "run", *args]
    raise ValueError(kind)


def test_env(copy):
    env = dict(os.environ)
    env["LINER_LIB"] = os.path.join(copy.build, "libliner_broker.so")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_commands(copy, commands):
    """Runs the commands in order; returns (None, '') when all pass, else (label, output)."""
    env = test_env(copy)
    for kind, args in commands:
        status, out = run(command_line(copy, kind, args), cwd=copy.dir, env=env, timeout=COMMAND_TIMEOUT)
        if status != 0:
            label = "%s %s" % (kind, " ".join(args))
            return ("timeout in " if status == "timeout" else "") + label, out
    return None, ""


def stale(m):
    path = os.path.join(ROOT, m["file"])
    if not os.path.isfile(path):
        return "file %s does not exist" % m["file"]
    n = open(path, encoding="utf-8").read().count(m["find"])
    return None if n == 1 else "its text occurs %d times in %s (must be exactly once)" % (n, m["file"])


def select(args):
    if args.only:
        wanted = args.only.split(",")
        unknown = [w for w in wanted if w not in {m["id"] for m in MUTANTS}]
        if unknown:
            sys.exit("unknown mutant(s): " + ", ".join(unknown))
        return [m for m in MUTANTS if m["id"] in wanted], "chosen"
    if args.all:
        return list(MUTANTS), "all"
    # A window of the list that moves every day, so that a week of runs covers every mutant.
    day = int(os.environ.get("LINER_MUTANTS_DAY", datetime.date.today().toordinal()))
    start = (day * args.per_day) % len(MUTANTS)
    return MUTANTS[start:] + MUTANTS[:start], "day %d, from #%d" % (day, start + 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--all", action="store_true", help="run every mutant, ignoring the budget")
    ap.add_argument("--only", help="comma-separated mutant ids")
    ap.add_argument("--list", action="store_true", help="print the list and exit")
    ap.add_argument("--budget", type=float, default=float(os.environ.get("LINER_MUTANTS_BUDGET", 240)),
                    help="seconds for the sampled run, set-up included (default 240)")
    ap.add_argument("--per-day", type=int, default=12, help="how far the daily window moves")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build-mutants"))
    args = ap.parse_args()

    ids = [m["id"] for m in MUTANTS]
    assert len(ids) == len(set(ids)), "duplicate mutant ids"
    if args.list:
        for m in MUTANTS:
            log("%-28s %-34s %s" % (m["id"], m["file"], m["bug"]))
        log("%d mutants" % len(MUTANTS))
        return 0

    started = time.monotonic()
    budgeted = not (args.all or args.only)
    chosen, how = select(args)
    failures = 0
    report = []

    fresh = []
    for m in chosen:
        why = stale(m)
        if why:
            report.append((m, "STALE", why, 0.0))
            failures += 1
        else:
            fresh.append(m)
    chosen = fresh

    copy = Copy(args.workdir)
    log("mutation: copying the tree to %s (%d files changed)" % (copy.dir, copy.sync()))
    status, out = copy.configure()
    if status != 0:
        log(out)
        log("mutation: FAILED to configure the copy")
        return 1

    # Baseline: the commands of what may run must pass on the unmutated copy. In a sampled run,
    # only the first mutants of the window are taken until the set-up has used a third of the
    # budget; the rest are then run while the budget lasts.
    commands, seen = [], set()
    for m in chosen:
        for c in m["tests"]:
            key = (c[0], tuple(c[1]))
            if key not in seen:
                seen.add(key)
                commands.append((c[0], list(c[1])))
    status, out = copy.build_targets(targets_of(commands))
    if status == 0 and any(needs_tsc(m["tests"]) for m in chosen):
        status, out = copy.tsc()
    if status != 0:
        log(out)
        log("mutation: FAILED to build the unmutated copy")
        return 1
    # The budget is for baselines and mutants: the copy's first build (which compiles the vendored
    # libraries too) varies from machine to machine and must not eat it whole.
    built = time.monotonic()
    log("mutation: the unmutated copy built in %.0f s (not counted in the budget)" % (built - started))
    baseline_ok = set()
    for kind, cargs in commands:
        if budgeted and time.monotonic() - built > args.budget / 3:
            break
        t0 = time.monotonic()
        failed, out = run_commands(copy, [(kind, cargs)])
        if failed:
            log(out)
            log("mutation: baseline FAILED on the unmutated copy: %s" % failed)
            failures += 1
        else:
            baseline_ok.add((kind, tuple(cargs)))
            log("mutation: baseline %s %s passed (%.1f s)" % (kind, " ".join(cargs), time.monotonic() - t0))

    skipped = []
    for m in chosen:
        if any((c[0], tuple(c[1])) not in baseline_ok for c in m["tests"]):
            skipped.append(m)
            continue
        if budgeted and time.monotonic() - built > args.budget:
            skipped.append(m)
            continue
        t0 = time.monotonic()
        path = os.path.join(copy.dir, m["file"])
        with open(path, encoding="utf-8") as f:
            original = f.read()
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(original.replace(m["find"], m["replace"], 1))
            # Always built: an earlier mutant's file was restored after its build.
            status, out = copy.build_targets(targets_of(m["tests"]))
            if status == 0 and m["file"].startswith("src/"):
                status, out = copy.tsc()
            if status != 0:
                verdict, detail = "NO BUILD", out.strip().splitlines()[-1:] or [""]
                detail = detail[0]
                failures += 1
                log(out)
            else:
                killed, out = run_commands(copy, m["tests"])
                if killed:
                    verdict, detail = "killed", "by " + killed
                else:
                    verdict, detail = "SURVIVED", "every test passed"
                    failures += 1
        finally:
            with open(path, "w", encoding="utf-8") as f:
                f.write(original)
            if m["file"].startswith("src/"):
                copy.tsc()  # dist/ back to the original for the next mutant
        report.append((m, verdict, detail, time.monotonic() - t0))
        log("mutation: %-28s %-9s %s (%.1f s)" % (m["id"], verdict, detail, time.monotonic() - t0))

    log("")
    log("=== mutation report (%s)" % how)
    for m, verdict, detail, secs in report:
        log("%-28s %-9s %5.1fs  %s — %s" % (m["id"], verdict, secs, m["bug"], detail))
    killed = sum(1 for r in report if r[1] == "killed")
    survived = sum(1 for r in report if r[1] == "SURVIVED")
    other = len(report) - killed - survived
    not_run = len(skipped)
    log("mutation: %d of %d mutants run in %.0f s: %d killed, %d survived, %d stale or not built%s" % (
        len(report), len(MUTANTS), time.monotonic() - started, killed, survived, other,
        ("; %d left for another day (budget %.0f s)" % (not_run, args.budget)) if not_run else ""))
    if not budgeted and not_run:
        failures += 1  # --all / --only promise every chosen mutant runs
    if budgeted and not report:
        log("mutation: FAILED: no mutant ran within the budget, so nothing was checked")
        failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
