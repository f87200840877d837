"""Private PostgreSQL databases for tests: one fresh database per use, dropped afterwards.

The server is the one `.ci/setup` finds or starts (default
`postgresql://postgres@127.0.0.1:5432/postgres`; set OFFICESEC_TEST_PG to
another admin URL). OFFICESEC_TEST_PG=off leaves the PostgreSQL variants
out (they are then reported as skipped, never silently passed).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

ADMIN_URL = os.environ.get("OFFICESEC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin() -> object:
    import psycopg

    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)


def create_database() -> str:
    """Create `officesec_test_<random>` and return its URL (drop it with `drop_database`)."""
    if ADMIN_URL == "off":
        pytest.skip("OFFICESEC_TEST_PG=off: PostgreSQL variant not run")
    name = f"officesec_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = _admin()
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {ADMIN_URL} not reachable ({exc}); run .ci/setup or set "
                    "OFFICESEC_TEST_PG=off")
    with admin:  # type: ignore[attr-defined]
        admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    return f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def drop_database(url: str) -> None:
    """Drop a database made by `create_database`, even while a killed station still holds it."""
    name = url.rsplit("/", 1)[1]
    assert name.startswith("officesec_test_"), name  # never anything else
    with _admin() as admin:  # type: ignore[attr-defined]
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A fresh database's URL for the duration of the block."""
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


def wanted() -> bool:
    """OFFICESEC_TEST_STORE=postgresql: guard processes of every test use PostgreSQL (CI)."""
    return os.environ.get("OFFICESEC_TEST_STORE", "sqlite") == "postgresql"
