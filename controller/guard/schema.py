"""The guard station's SQLite schema and its migrations.

`SCHEMA` creates what is missing (every statement is idempotent). An older
store is brought up to date by `migrate()`: columns added after the first
release are added when missing, and the version reached is kept in
`schema_version`. The SQL stays plain (no SQLite-only tricks beyond
`PRAGMA table_info`) so that a PostgreSQL backend can replay the same steps:
on PostgreSQL (`controller/guard/db.py`) the DDL is translated, column
lists come from `information_schema`, and stations starting together
migrate one after the other (an advisory lock held by `Store`).
"""

from __future__ import annotations

from controller.guard.db import Db, PgDb

SCHEMA_VERSION = 3

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events(
  id TEXT PRIMARY KEY, office TEXT NOT NULL, seq INTEGER NOT NULL, ts TEXT NOT NULL,
  type TEXT NOT NULL, test INTEGER NOT NULL, alarm_id TEXT, received_at REAL NOT NULL,
  payload TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_office_seq ON events(office, seq);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE INDEX IF NOT EXISTS events_received ON events(received_at);
CREATE INDEX IF NOT EXISTS events_alarm ON events(alarm_id);
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
CREATE TABLE IF NOT EXISTS alarm_log(
  id INTEGER PRIMARY KEY AUTOINCREMENT, alarm_id TEXT NOT NULL, ts TEXT NOT NULL,
  what TEXT NOT NULL, by TEXT, detail TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS alarm_log_alarm ON alarm_log(alarm_id);
CREATE TABLE IF NOT EXISTS audit(
  id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, user TEXT NOT NULL,
  action TEXT NOT NULL, target TEXT NOT NULL DEFAULT '', outcome TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
"""

# version 2 (issues 13, 14, 16): alarm kinds, fault alarms, outcomes, responders, levels
ALARM_COLUMNS_V2 = (
    ("kind", "TEXT NOT NULL DEFAULT 'panic'"),
    ("fault", "TEXT"),
    ("outcome", "TEXT"),
    ("note", "TEXT"),
    ("responders", "TEXT NOT NULL DEFAULT '[]'"),
    ("cleared_at", "TEXT"),
    ("closed_at", "TEXT"),
    ("count", "INTEGER NOT NULL DEFAULT 1"),
    ("escalation_level", "INTEGER NOT NULL DEFAULT 0"),
    ("ack_resends", "INTEGER NOT NULL DEFAULT 0"),
)
STEPS_V2 = (
    # the first release called a finished alarm "resolved"; the contract says "closed"
    "UPDATE alarms SET state = 'closed', closed_at = resolved_at WHERE state = 'resolved'",
    "UPDATE alarms SET kind = 'drill' WHERE test = 1 AND kind = 'panic'",
    "CREATE INDEX IF NOT EXISTS alarms_fault ON alarms(office, kind, fault, state)",
    "CREATE INDEX IF NOT EXISTS alarms_received ON alarms(received_at)",
)


# version 3 (issue 19): when any station last heard an office's state, for stations that
# share the heartbeats (`[guard] ingest_group`); `heard_at` is the database server's clock
STEPS_V3 = (
    "CREATE TABLE IF NOT EXISTS office_heard(office TEXT PRIMARY KEY, heard_at REAL NOT NULL)",
)


def _columns(db: Db, table: str) -> set[str]:
    if isinstance(db, PgDb):
        return db.columns(table)
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def current_version(db: Db) -> int:
    """The version recorded in the store (1 for a store from before versioning)."""
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    if row is None or row[0] is None:
        return 1
    return int(row[0])


def migrate(db: Db) -> int:
    """Create missing tables, bring an older store to SCHEMA_VERSION; returns that version.

    Each step is idempotent, so a migration interrupted by a crash simply runs
    again on the next start.
    """
    db.executescript(SCHEMA)
    version = current_version(db)
    if version < 2:
        have = _columns(db, "alarms")
        for name, decl in ALARM_COLUMNS_V2:
            if name not in have:
                db.execute(f"ALTER TABLE alarms ADD COLUMN {name} {decl}")
        for step in STEPS_V2:
            db.execute(step)
    if version < 3:
        for step in STEPS_V3:
            if isinstance(db, PgDb):
                db.executescript(step)  # DDL: translated, under the migration lock
            else:
                db.execute(step)
    if version < SCHEMA_VERSION:
        db.execute("DELETE FROM schema_version")
        db.execute("INSERT INTO schema_version(version) VALUES (?)", (SCHEMA_VERSION,))
    db.commit()
    return SCHEMA_VERSION
