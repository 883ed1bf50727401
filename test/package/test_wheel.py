"""The Python wheel: scripts/build_wheel.sh makes one manylinux wheel that carries the C library,
and that wheel, installed without network into a fresh venv, works with no LINER_LIB and no
repository around it.

    LINER_TEST_REDIS_URL=redis://127.0.0.1:PORT/0 python3 -m pytest test/package

The last test runs part of test/python against the installed copy (LINER_PYTHON_FROM=installed,
see test/conftest.py) and needs the Redis of LINER_TEST_REDIS_URL; without it that test fails.
"""
import json
import os
import re
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIST = os.path.join(ROOT, "dist", "python")
AUDITWHEEL = os.path.join(ROOT, "build", "wheel-tools", "bin", "auditwheel")

# A representative part of test/python: send and receive, offline delivery, the SQLite store,
# error codes. Their test kit must not point them at the repository's python/ (it does not under
# LINER_PYTHON_FROM=installed).
SUITE_FILES = ["test_two_peer_exchange.py", "test_offline_delivery.py", "test_sqlite_store.py",
               "test_error_codes.py"]

# Run by the venv's python, outside the repository: one message between two clients sharing an
# SQLite file, and where liner, its library and the libraries mapped into the process came from.
EXCHANGE = r'''
import json, os, sys, sysconfig, threading
import liner

lib = liner.load_lib()
got, arrived = [], threading.Event()

def on_message(to, from_, data):
    got.append([to, from_, data.decode()])
    arrived.set()

db = os.path.join(sys.argv[1], "mesh.db")
with liner.Client.new_sqlite("wheel-rx", "wheel-rx", "127.0.0.1:0", db) as rx, \
     liner.Client.new_sqlite("wheel-tx", "wheel-tx", "127.0.0.1:0", db) as tx:
    assert rx.run(on_message), rx.last_error_message()
    assert tx.run(lambda to, from_, data: None), tx.last_error_message()
    assert tx.send_to("wheel-rx", b"hello from the wheel"), tx.last_error_message()
    arrived.wait(10)
with open("/proc/self/maps") as f:
    mapped = sorted({line.split()[-1] for line in f if ".so" in line and "/" in line})
print(json.dumps({"liner": liner.__file__, "lib": lib._name, "version": liner.version(),
                  "platlib": sysconfig.get_paths()["platlib"], "got": got, "mapped": mapped}))
'''


def cmake_version():
    with open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
        return re.search(r"^project\(\s*liner\s+VERSION\s+([0-9.]+)", f.read(), re.M).group(1)


def outside_env(**extra):
    """The environment of a user who installed the wheel: no LINER_LIB, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("LINER_LIB", "PYTHONPATH",
                                                           "LINER_PYTHON_FROM")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def wheel():
    """The path of the wheel scripts/build_wheel.sh made."""
    out = subprocess.run([os.path.join(ROOT, "scripts", "build_wheel.sh")], cwd=ROOT,
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stdout + out.stderr
    wheels = [f for f in os.listdir(DIST) if f.endswith(".whl")]
    assert len(wheels) == 1, wheels
    path = os.path.join(DIST, wheels[0])
    assert "build_wheel: %s (" % path in out.stdout  # it says where the wheel is
    return path


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A fresh venv with the wheel installed from the file alone (--no-index: no network).
    --system-site-packages lends it this Python's pytest; liner itself comes from the venv."""
    path = tmp_path_factory.mktemp("venv") / "wheel-venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(path)],
                   check=True, timeout=300)
    python = str(path / "bin" / "python")
    out = subprocess.run([python, "-m", "pip", "install", "--no-index", "--disable-pip-version-check",
                          "--no-cache-dir", wheel], capture_output=True, text=True, timeout=300,
                         env=outside_env())
    assert out.returncode == 0, out.stdout + out.stderr
    return python


def test_wheel_is_named_and_tagged_manylinux_for_any_python3(wheel):
    name = os.path.basename(wheel)
    assert re.fullmatch(r"liner_broker-%s-py3-none-manylinux_2_\d+_x86_64\.whl"
                        % re.escape(cmake_version()), name), name
    with zipfile.ZipFile(wheel) as z:
        meta = z.read("liner_broker-%s.dist-info/WHEEL" % cmake_version()).decode()
    assert "Root-Is-Purelib: false" in meta
    assert re.search(r"^Tag: py3-none-manylinux_2_\d+_x86_64$", meta, re.M), meta


def test_auditwheel_finds_it_consistent_with_its_tag(wheel):
    out = subprocess.run([AUDITWHEEL, "show", wheel], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    text = " ".join(out.stdout.split())  # auditwheel wraps its lines
    tag = re.search(r"-(manylinux_2_\d+_x86_64)\.whl$", wheel).group(1)
    assert 'is consistent with the following platform tag: "%s"' % tag in text, out.stdout


def test_wheel_carries_the_library_the_license_and_the_metadata(wheel):
    version = cmake_version()
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read("liner_broker-%s.dist-info/METADATA" % version).decode()
        with open(os.path.join(ROOT, "LICENSE"), "rb") as f:
            assert z.read("liner_broker-%s.dist-info/licenses/LICENSE" % version) == f.read()
        for licence in ("third_party/hiredis/COPYING", "third_party/zstd/LICENSE", "third_party/sqlite/LICENSE.md",
                        "third_party/openssl/LICENSE"):
            assert "liner_broker-%s.dist-info/licenses/%s" % (version, licence) in z.namelist(), licence
    assert {"liner/__init__.py", "liner/_library.py", "liner/client.py",
            "liner/libliner_broker.so"} <= names
    # Native code only in the package and in what auditwheel grafted next to it.
    for n in names:
        if ".so" in os.path.basename(n):
            assert n.startswith(("liner/", "liner_broker.libs/")), n
    assert "Name: liner-broker\n" in meta
    assert "Version: %s\n" % version in meta
    assert "License-Expression: MIT AND BSD-3-Clause AND Apache-2.0\n" in meta
    assert "Requires-Python: >=3.8\n" in meta
    assert "Classifier: Operating System :: POSIX :: Linux\n" in meta
    assert "Description-Content-Type: text/markdown" in meta
    # The build stages under build/wheel/: the repository's package never holds a library that
    # would shadow the CMake build (python/liner/_library.py looks inside the package first).
    assert not [f for f in os.listdir(os.path.join(ROOT, "python", "liner")) if ".so" in f]


def test_installed_wheel_exchanges_a_message_without_liner_lib(venv, tmp_path):
    out = subprocess.run([venv, "-c", EXCHANGE, str(tmp_path)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env=outside_env())
    assert out.returncode == 0, out.stdout + out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    package = os.path.join(seen["platlib"], "liner")
    assert seen["liner"] == os.path.join(package, "__init__.py")
    assert seen["lib"] == os.path.join(package, "libliner_broker.so")
    assert seen["got"] == [["wheel-rx", "wheel-tx", "hello from the wheel"]]
    assert seen["version"].endswith("liner." + cmake_version()), seen["version"]
    # Nothing of the repository's build is mapped: the library's own dependencies come from the
    # wheel (liner_broker.libs/) or the system, never from build/.
    venv_root = os.path.dirname(os.path.dirname(venv))
    liner_maps = [m for m in seen["mapped"] if "liner" in os.path.basename(m)]
    assert liner_maps and all(m.startswith(venv_root + os.sep) for m in liner_maps), seen["mapped"]
    assert not [m for m in seen["mapped"] if m.startswith(ROOT + os.sep)], seen["mapped"]


def test_python_readme_quick_start_runs_on_the_installed_wheel(venv, tmp_path):
    # python/README.md is the wheel's long description: its example must work as printed.
    with open(os.path.join(ROOT, "python", "README.md"), encoding="utf-8") as f:
        blocks = re.findall(r"^```python\n(.*?)^```", f.read(), re.M | re.S)
    assert len(blocks) == 1
    out = subprocess.run([venv, "-c", blocks[0]], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60, env=outside_env())
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout == "boss -> jobs: b'hello'\n"


def test_python_suites_pass_against_the_installed_wheel(venv, tmp_path):
    url = os.environ.get("LINER_TEST_REDIS_URL")
    if not url:
        pytest.fail("LINER_TEST_REDIS_URL is not set: this test runs test/python files that need "
                    "a Redis (scripts/test.sh sets it; or start one and export its URL)")
    files = [os.path.join(ROOT, "test", "python", f) for f in SUITE_FILES]
    out = subprocess.run([venv, "-m", "pytest", "-p", "no:cacheprovider", "-c",
                          os.path.join(ROOT, "pytest.ini"), "--rootdir", ROOT] + files,
                         cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env=outside_env(LINER_PYTHON_FROM="installed", LINER_TEST_REDIS_URL=url))
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    # test/conftest.py's header names the liner the session imported: the venv's.
    header = re.search(r"^liner package: (.*)$", out.stdout, re.M)
    venv_root = os.path.dirname(os.path.dirname(venv))
    assert header and header.group(1).startswith(venv_root + os.sep), out.stdout[:2000]
    summary = out.stdout.strip().splitlines()[-1]
    assert re.search(r"\b\d+ passed\b", summary) and "failed" not in summary \
        and "error" not in summary, summary
