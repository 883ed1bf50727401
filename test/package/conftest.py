"""The package tests build and install what they test themselves (the wheel, the C library, the
npm tarball, the arm64 addon) and never load the repository's library into this process:
test/conftest.py's autouse `liner_lib` is replaced here, for every file of this folder."""
import pytest


@pytest.fixture(scope="session", autouse=True)
def liner_lib():
    return None
