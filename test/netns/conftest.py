"""Fixtures of the multi-host tests: a test bed of network namespaces (netkit.TestBed), torn
down after each test; the tests are skipped, saying why, where namespaces cannot be made."""
import pytest

from netkit import TestBed


@pytest.fixture
def bed():
    why = TestBed.available()
    if why:
        pytest.skip("multi-host test bed unavailable: " + why)
    b = TestBed()
    try:
        yield b
    finally:
        b.close()
