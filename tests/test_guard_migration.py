"""A guard store written by the first release opens, migrated, with its alarms intact."""

from __future__ import annotations

import sqlite3

from controller.guard.db import Db, PgDb, is_postgres
from controller.guard.schema import SCHEMA_VERSION
from controller.guard.store import Store

# the schema exactly as the first release created it (controller/guard/schema.py, c57107f)
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS events(
  id TEXT PRIMARY KEY, office TEXT NOT NULL, seq INTEGER NOT NULL, ts TEXT NOT NULL,
  type TEXT NOT NULL, test INTEGER NOT NULL, alarm_id TEXT, received_at REAL NOT NULL,
  payload TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_office_seq ON events(office, seq);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE INDEX IF NOT EXISTS events_received ON events(received_at);
CREATE TABLE IF NOT EXISTS offices(
  id TEXT PRIMARY KEY, first_seen REAL NOT NULL, max_seq INTEGER NOT NULL DEFAULT 0,
  duplicates INTEGER NOT NULL DEFAULT 0, info TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS gaps(
  office TEXT NOT NULL, from_seq INTEGER NOT NULL, to_seq INTEGER NOT NULL,
  found_at REAL NOT NULL, requests INTEGER NOT NULL DEFAULT 0, last_request REAL,
  PRIMARY KEY(office, from_seq));
CREATE TABLE IF NOT EXISTS alarms(
  alarm_id TEXT PRIMARY KEY, office TEXT NOT NULL, test INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL, raised_at TEXT NOT NULL, received_at REAL NOT NULL,
  presses INTEGER NOT NULL DEFAULT 1, location TEXT NOT NULL DEFAULT '{}',
  acknowledged_by TEXT, acknowledged_at TEXT, resolved_by TEXT, resolved_at TEXT,
  escalated_at TEXT, escalation_status TEXT, command TEXT, command_status TEXT,
  command_by TEXT, command_at TEXT, guard_ack_by TEXT, guard_ack_at TEXT);
CREATE INDEX IF NOT EXISTS alarms_state ON alarms(state);
CREATE TABLE IF NOT EXISTS audit(
  id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, user TEXT NOT NULL,
  action TEXT NOT NULL, target TEXT NOT NULL DEFAULT '', outcome TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
"""


def _old_store(target: str) -> None:
    db: Db = PgDb(target) if is_postgres(target) else sqlite3.connect(target)
    db.executescript(OLD_SCHEMA)
    rows = [("11111111-1111-1111-1111-111111111111", 0, "resolved", "ack"),
            ("22222222-2222-2222-2222-222222222222", 1, "active", None),
            ("33333333-3333-3333-3333-333333333333", 0, "acknowledged", "bob")]
    for alarm_id, test, state, by in rows:
        db.execute("INSERT INTO alarms(alarm_id, office, test, state, raised_at, received_at,"
                   " acknowledged_by, resolved_by, resolved_at) VALUES (?,?,?,?,?,?,?,?,?)",
                   (alarm_id, "eg-101", test, state, "2026-01-01T10:00:00.000Z", 1.0, by,
                    by if state == "resolved" else None,
                    "2026-01-01T10:05:00.000Z" if state == "resolved" else None))
    db.commit()
    db.close()


def test_first_release_store_is_migrated(store_target: str) -> None:
    path = store_target
    _old_store(path)
    store = Store(str(path))
    assert store.schema_version == SCHEMA_VERSION
    closed = store.alarm("11111111-1111-1111-1111-111111111111")
    assert closed is not None
    assert closed["state"] == "closed" and closed["kind"] == "panic"
    assert closed["closed_at"] == "2026-01-01T10:05:00.000Z" and closed["responders"] == []
    drill = store.alarm("22222222-2222-2222-2222-222222222222")
    assert drill is not None and drill["kind"] == "drill" and drill["state"] == "active"
    assert [a["alarm_id"][:1] for a in store.alarms(open_only=True)] == ["3", "2"]
    store.log_alarm(closed["alarm_id"], "2026-01-01T10:06:00.000Z", "note", "bob")
    store.commit()
    store.close()
    again = Store(str(path))  # a second start changes nothing
    assert again.schema_version == SCHEMA_VERSION
    assert again.alarm_log("11111111-1111-1111-1111-111111111111")[0]["what"] == "note"
    assert again.db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 1
    again.close()
