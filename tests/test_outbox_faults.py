"""Outbox under storage failure: corrupt file, wrong path, a disk that fails after open.

The alarm path must never wait on a broken disk: events keep flowing from memory
and the fault is reported; when the disk comes back everything is written.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from controller.office.outbox import SEQ_BLOCK, Outbox
from tests.test_outbox import add, make, rows


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "office.sqlite3"


# ------------------------------------------------------------- faults


def _works_from_memory(ob: Outbox) -> None:
    seqs = [add(ob, "panic", is_alarm=True), add(ob), add(ob)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    ob.delivered(f"ev-{seqs[1]}")
    assert [p.seq for p in ob.pending()] == [seqs[0], seqs[2]]
    assert [s for s, _ in ob.stored_range(seqs[0], seqs[2])] == [seqs[0], seqs[2]]
    ob.remember_nonce("nonce-x", time.time() + 60)
    assert ob.seen_nonce("nonce-x")
    assert ob.flush(5)


def test_corrupted_file_sets_fault_and_keeps_working_from_memory(db: Path) -> None:
    db.write_bytes(b"this is not an sqlite database \x00\xff" * 200)
    t0 = time.monotonic()
    ob = make(db)
    try:
        assert ob.fault is not None
        assert str(db) in ob.fault and "not a database" in ob.fault
        _works_from_memory(ob)
        assert time.monotonic() - t0 < 5.0  # nothing waited on the broken disk
    finally:
        ob.close()
    assert db.read_bytes().startswith(b"this is not")  # never overwritten


def test_directory_in_place_of_the_file(db: Path) -> None:
    db.mkdir()
    ob = make(db)
    try:
        assert ob.fault is not None and str(db) in ob.fault
        _works_from_memory(ob)
    finally:
        ob.close()


def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("x")
    ob = make(tmp_path / "blocker" / "office.sqlite3")
    try:
        assert ob.fault is not None and "cannot open" in ob.fault
        _works_from_memory(ob)
    finally:
        ob.close()


def test_write_failure_after_open_never_blocks_events_and_recovers(db: Path) -> None:
    ob = make(db)
    assert ob.flush(5)
    other = sqlite3.connect(db)
    other.execute("ALTER TABLE meta RENAME TO meta_gone")  # every commit now fails
    other.commit()
    try:
        t0 = time.monotonic()
        seqs = [add(ob, "panic", is_alarm=True) for _ in range(SEQ_BLOCK + 10)]
        took = time.monotonic() - t0
        assert took < 3.0, f"events waited {took:.1f} s on a failing disk"
        deadline = time.monotonic() + 5
        while ob.fault is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert "cannot write" in ob.fault
        assert [p.seq for p in ob.pending()] == seqs  # nothing lost in memory
        other.execute("ALTER TABLE meta_gone RENAME TO meta")  # the disk comes back
        other.commit()
        assert ob.flush(10)
        assert ob.fault is None
        assert [r[0] for r in rows(db)] == seqs
    finally:
        other.close()
        ob.close()
