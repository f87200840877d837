"""Chaos suite (issue 7): every test here carries the existing `chaos` marker.

Sizes come from environment variables (see tests/chaos/support.py): CI size by
default, full size from `python -m tests.chaos.report`.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/chaos/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.chaos)
