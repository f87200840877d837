"""The guard station's SQLite schema (created if missing; every statement is idempotent)."""

SCHEMA = """
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
