"""Fixtures for the notification tests (the fake providers are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.factories import StaffUserFactory


@pytest.fixture
def staff(db):
    """Mike, without a usable password: these tests never sign in with one, and hashing it
    (PBKDF2) costs most of a second per test."""
    return StaffUserFactory(username="mike", password=None)
