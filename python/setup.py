"""What pyproject.toml cannot say: the version, read from the top-level CMakeLists.txt, and that
the wheel is platform-specific although it holds no Python extension module.

Run by scripts/build_wheel.sh on a staged copy of this folder under build/wheel/.
"""
import os
import re
import sys

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel

HERE = os.path.dirname(os.path.abspath(__file__))
LIBRARY = os.path.join(HERE, "liner", "libliner_broker.so")


def cmake_version():
    """x.y.z of `project(liner VERSION x.y.z)` in the nearest CMakeLists.txt above this file
    (python/ in the repository, build/wheel/stage/ when staged)."""
    folder = HERE
    while True:
        path = os.path.join(folder, "CMakeLists.txt")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                found = re.search(r"^project\(\s*liner\s+VERSION\s+([0-9][0-9.]*)", f.read(), re.M)
            if found:
                return found.group(1)
        parent = os.path.dirname(folder)
        if parent == folder:
            sys.exit("setup.py: no CMakeLists.txt with project(liner VERSION ...) above " + HERE)
        folder = parent


class NativeDistribution(Distribution):
    """Says it has extension modules although it has none: then setuptools installs the package
    into platlib (a wheel root that is not purelib, where auditwheel looks for libraries) and
    tags the wheel for this platform, never py3-none-any."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    """The wheel carries a native library but needs no particular Python: the library is called
    through ctypes, not through Python's C API. Hence py3-none-<platform> rather than
    cp3X-cp3X-<platform>; auditwheel turns <platform> into a manylinux tag."""

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform

    def run(self):
        # A wheel without the library would install fine, then fail at load_lib() on every
        # machine without a liner build: refuse to make one.
        if not os.path.exists(LIBRARY):
            sys.exit("setup.py: %s is missing; build the wheel with scripts/build_wheel.sh" % LIBRARY)
        super().run()

setup(version=cmake_version(), distclass=NativeDistribution, cmdclass={"bdist_wheel": PlatformWheel})
