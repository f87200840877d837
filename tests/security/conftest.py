"""Fixtures of the security suite: one provisioned fleet for the whole package (see fleet.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.fleet import MOSQUITTO, Stack, start, stop


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto not installed")
    running, broker_root = start(tmp_path_factory.mktemp("security"))
    try:
        yield running
    finally:
        stop(running, broker_root)
        for name in ("guard", "o-02", "mosquitto"):
            print(f"--- {name}.log (tail)\n{running.log(name)[-3000:]}")  # shown on failure
