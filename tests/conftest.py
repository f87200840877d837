"""Shared fixtures: a real Mosquitto per test, gpiozero's MockFactory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker import Mosquitto


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private Mosquitto (no persistence) on a free port."""
    mq = Mosquitto(tmp_path / "mq").start()
    try:
        yield mq
    finally:
        mq.kill()


@pytest.fixture
def persistent_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private Mosquitto with persistence (autosave every second)."""
    mq = Mosquitto(tmp_path / "mq", persistence=True).start()
    try:
        yield mq
    finally:
        mq.kill()


@pytest.fixture
def mock_factory() -> Iterator[object]:
    """gpiozero's own MockFactory as the default pin factory, reset afterwards."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    saved = Device.pin_factory
    Device.pin_factory = MockFactory()
    try:
        yield Device.pin_factory
    finally:
        Device.pin_factory.reset()
        Device.pin_factory = saved


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """What `Store()` opens, once per backend: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "guard.sqlite3")
        return
    from tests.pg import fresh_database

    with fresh_database() as url:
        yield url
