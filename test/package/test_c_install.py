"""The C library installs anywhere: `cmake --install` into a prefix, then the prefix is moved, and
a C program (c_consumer/) still builds and runs against it four ways: pkg-config shared and
static, CMake `find_package(liner)` with liner::liner (shared) and liner::liner_static.

What it pins down: the install holds liner.h, libliner_broker.so with its SONAME, a static
archive that needs nothing of this build (the core and its third-party code are inside it),
liner.pc and the CMake package; and neither liner.pc nor the CMake package names the prefix
they were installed to (the old prefix no longer exists when the consumers build).

Reuses a configured build directory to save a full build: $LINER_BUILD_DIR if set, else the
repository's build/ if configured, else configures one in a temporary directory. Only the two
library targets are (re)built. Run: python3 -m pytest test/package -q
"""

import glob
import os
import shlex
import shutil
import subprocess

import pytest

from packagekit import run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONSUMER = os.path.join(ROOT, "test", "package", "c_consumer")
SONAME = "libliner_broker.so.0"
TOOLS = ("cmake", "pkg-config", "cc", "readelf")


def generator_args():
    return ["-G", "Ninja"] if shutil.which("ninja") else []


def build_dir(tmp):
    """A configured build directory of this tree (see the module's docstring)."""
    given = os.environ.get("LINER_BUILD_DIR")
    if given:
        if not os.path.isfile(os.path.join(given, "CMakeCache.txt")):
            pytest.fail(f"LINER_BUILD_DIR={given} is not a configured CMake build directory")
        return given
    repo_build = os.path.join(ROOT, "build")
    cache = os.path.join(repo_build, "CMakeCache.txt")
    if os.path.isfile(cache):
        with open(cache) as f:
            if f"CMAKE_HOME_DIRECTORY:INTERNAL={ROOT}\n" in f.read():
                return repo_build
    fresh = os.path.join(tmp, "build")
    run(["cmake", "-S", ROOT, "-B", fresh, *generator_args(),
         "-DLINER_BUILD_TESTS=OFF", "-DLINER_BUILD_BENCH=OFF"])
    return fresh


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """The install prefix, after it was moved away from where it was installed."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"test_c_install needs {', '.join(missing)} on PATH")
    tmp = str(tmp_path_factory.mktemp("c-install"))
    build = build_dir(tmp)
    run(["cmake", "--build", build, "--target", "liner_broker", "liner_broker_static"], timeout=1800)
    installed = os.path.join(tmp, "installed-here")
    run(["cmake", "--install", build, "--prefix", installed])
    moved = os.path.join(tmp, "moved", "elsewhere")
    os.makedirs(os.path.dirname(moved))
    shutil.move(installed, moved)
    assert not os.path.exists(installed)
    return moved


def libdir(prefix):
    pcs = glob.glob(os.path.join(prefix, "**", "pkgconfig", "liner.pc"), recursive=True)
    assert len(pcs) == 1, f"expected one liner.pc under {prefix}, found {pcs}"
    return os.path.dirname(os.path.dirname(pcs[0]))


def needed(binary):
    """The DT_NEEDED entries of an ELF file."""
    out = run(["readelf", "-d", binary])
    return [line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def test_install_holds_header_libraries_and_package_files(prefix):
    lib = libdir(prefix)
    assert os.path.isfile(os.path.join(prefix, "include", "liner.h"))
    assert os.path.isfile(os.path.join(lib, "libliner_broker.a"))
    assert os.path.islink(os.path.join(lib, SONAME))
    assert os.path.realpath(os.path.join(lib, "libliner_broker.so")) == \
        os.path.realpath(os.path.join(lib, SONAME))
    assert f"Library soname: [{SONAME}]" in run(["readelf", "-d", os.path.join(lib, SONAME)])
    for name in ("linerConfig.cmake", "linerConfigVersion.cmake", "linerTargets.cmake"):
        assert os.path.isfile(os.path.join(lib, "cmake", "liner", name)), name
    with open(os.path.join(lib, "pkgconfig", "liner.pc")) as f:
        pc = f.read()
    assert "prefix=${pcfiledir}/" in pc
    # Self-contained: nothing of hiredis, zstd or SQLite is left for a consumer to link.
    assert not any(name in pc for name in ("hiredis", "zstd", "sqlite")), pc
    # The licences of liner and of the libraries compiled into it.
    for licence in ("LICENSE", "third_party/hiredis/COPYING", "third_party/zstd/LICENSE",
                    "third_party/sqlite/LICENSE.md", "third_party/openssl/LICENSE"):
        assert os.path.isfile(os.path.join(prefix, "share", "doc", "liner", licence)), licence


def test_installed_files_do_not_name_the_install_prefix(prefix):
    """The prefix they were installed to is gone: a file naming it would break after a move."""
    old = os.path.join(os.path.dirname(os.path.dirname(prefix)), "installed-here")
    for path in glob.glob(os.path.join(prefix, "**", "*"), recursive=True):
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, "rb") as f:
                assert old.encode() not in f.read(), f"{path} names the install prefix {old}"


def pkg_config(prefix, *args):
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(libdir(prefix), "pkgconfig"))
    return shlex.split(run(["pkg-config", *args, "liner"], env=env))


def build_with_pkg_config(prefix, out, static):
    flags = pkg_config(prefix, "--cflags", "--libs", *(["--static"] if static else []))
    # With libliner_broker.so next to the archive, -lliner_broker picks the archive only in a
    # fully static link; that is what `pkg-config --static` lists the libraries for.
    run(["cc", *(["-static"] if static else []), "-std=c11", "-D_POSIX_C_SOURCE=200809L",
         os.path.join(CONSUMER, "consumer.c"), *flags, "-o", os.path.join(out, "consumer")])
    return os.path.join(out, "consumer")


def build_with_cmake(prefix, out, static):
    target = "liner::liner_static" if static else "liner::liner"
    build = os.path.join(out, "build")
    run(["cmake", "-S", CONSUMER, "-B", build, *generator_args(), f"-DCMAKE_PREFIX_PATH={prefix}",
         f"-DLINER_TARGET={target}"])
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        found = [line for line in f if line.startswith("liner_DIR:")]
    assert found and found[0].strip().endswith(os.path.join(libdir(prefix), "cmake", "liner")), \
        f"find_package(liner) did not find the moved prefix: {found}"
    run(["cmake", "--build", build])
    return os.path.join(build, "consumer")


@pytest.mark.parametrize("how,static", [
    ("pkg-config", False), ("pkg-config", True), ("cmake", False), ("cmake", True)],
    ids=["pkg-config-shared", "pkg-config-static", "cmake-liner", "cmake-liner_static"])
def test_consumer_builds_and_runs_against_the_moved_prefix(prefix, tmp_path, how, static):
    out = str(tmp_path)
    build = build_with_pkg_config if how == "pkg-config" else build_with_cmake
    binary = build(prefix, out, static)
    libs = needed(binary)
    if static:
        assert not any(n.startswith("libliner_broker") for n in libs), libs
    else:
        assert SONAME in libs, libs
    data = os.path.join(out, "data")
    os.mkdir(data)
    env = dict(os.environ, LD_LIBRARY_PATH=libdir(prefix))
    p = subprocess.run([binary, data], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=60, env=env)
    assert p.returncode == 0 and "consumer: ok" in p.stdout, \
        f"{binary} exited with {p.returncode}:\n{p.stdout}"
