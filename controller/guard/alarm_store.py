"""The alarm tables of the guard store: alarms (panic, drill, fault) and their log.

Mixed into `Store` (same connection, same commit discipline). An alarm's
state only moves forward: `active` -> `acknowledged` -> `closed`; a late
or redelivered message never reopens it. Every step of an alarm's life
that the station itself takes (ack requested, responders, escalation
levels, notifications, outcome) goes to `alarm_log`; together with the
office's events it is the incident's timeline.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from controller.errors import StoreError
from controller.guard.db import Db

ALARM_RANK = {"active": 0, "acknowledged": 1, "closed": 2}
KIND_RANK_SQL = "CASE kind WHEN 'panic' THEN 0 WHEN 'fault' THEN 1 ELSE 2 END"
ALARM_COLUMNS = (
    "alarm_id", "office", "test", "state", "raised_at", "received_at", "presses", "location",
    "acknowledged_by", "acknowledged_at", "resolved_by", "resolved_at", "escalated_at",
    "escalation_status", "command", "command_status", "command_by", "command_at",
    "guard_ack_by", "guard_ack_at", "kind", "fault", "outcome", "note", "responders",
    "cleared_at", "closed_at", "count", "escalation_level", "ack_resends",
)
KINDS = ("panic", "drill", "fault")


def _identity(alarm: dict[str, Any]) -> dict[str, Any]:
    return alarm


class AlarmTables:
    """Alarm SQL; `alarm_view` adds the live fields (escalation countdown) to every row."""

    db: Db
    alarm_view: Callable[[dict[str, Any]], dict[str, Any]] = staticmethod(_identity)

    def alarm(self, alarm_id: str) -> dict[str, Any] | None:
        """One alarm with its whole life, or None."""
        row = self.db.execute("SELECT * FROM alarms WHERE alarm_id = ?", (alarm_id,)).fetchone()
        return self.alarm_view(_alarm_dict(row)) if row else None

    def alarms(self, *, open_only: bool = False, limit: int = 200) -> list[dict[str, Any]]:
        """Open alarms, most urgent first (panic, fault, drill; oldest first), or all (newest)."""
        if open_only:
            sql = (f"SELECT * FROM alarms WHERE state != 'closed' ORDER BY {KIND_RANK_SQL},"  # noqa: S608
                   " received_at ASC LIMIT ?")
        else:
            sql = "SELECT * FROM alarms ORDER BY received_at DESC LIMIT ?"
        return [self.alarm_view(_alarm_dict(r)) for r in self.db.execute(sql, (limit,))]

    def alarm_history(self, *, since: float | None = None, until: float | None = None,
                      office: str | None = None, kind: str | None = None,
                      limit: int = 1000) -> list[dict[str, Any]]:
        """Closed alarms, newest first, filtered by time received, office and kind."""
        where, args = ["state = 'closed'"], list[Any]()
        for clause, value in (("received_at >= ?", since), ("received_at < ?", until),
                              ("office = ?", office), ("kind = ?", kind)):
            if value is not None:
                where.append(clause)
                args.append(value)
        args.append(limit)
        sql = ("SELECT * FROM alarms WHERE " + " AND ".join(where)  # noqa: S608
               + " ORDER BY received_at DESC LIMIT ?")
        return [self.alarm_view(_alarm_dict(r)) for r in self.db.execute(sql, args)]

    def open_alarm_counts(self) -> dict[str, int]:
        """How many alarms are open, by kind."""
        return {row[0]: int(row[1]) for row in self.db.execute(
            "SELECT kind, COUNT(*) FROM alarms WHERE state != 'closed' GROUP BY kind")}

    def active_brief(self, *, ack_pending: bool = False) -> list[dict[str, Any]]:
        """Unacknowledged alarms, only the columns the timers need (asked on every tick).

        `ack_pending`: only panics/drills a guard acknowledged that the office has
        not confirmed yet.
        """
        sql = ("SELECT alarm_id, office, kind, state, received_at, escalation_level,"
               " guard_ack_by, ack_resends FROM alarms WHERE state = 'active'")
        if ack_pending:
            sql += " AND kind != 'fault' AND guard_ack_by IS NOT NULL"
        return [dict(r) for r in self.db.execute(sql + " ORDER BY received_at")]

    def open_faults(self) -> list[dict[str, Any]]:
        """Every fault alarm that is not closed (one per office and condition), briefly.

        Only the columns the fault tracker needs: it asks on every tick.
        """
        return [dict(r) for r in self.db.execute(
            "SELECT alarm_id, office, fault, state, cleared_at, count FROM alarms"
            " WHERE kind = 'fault' AND state != 'closed'")]

    def upsert_alarm(self, alarm_id: str, office: str, *, state: str, at: str, now: float,
                     test: bool = False, presses: int | None = None,
                     location: dict[str, Any] | None = None, by: str | None = None,
                     ) -> tuple[dict[str, Any], bool]:
        """Create or advance a panic/drill alarm from the office; returns (alarm, changed)."""
        state = "closed" if state == "resolved" else state
        current = self.alarm(alarm_id)
        if current is None:
            self.db.execute(
                # OR IGNORE: another station on a shared store may insert it first
                "INSERT OR IGNORE INTO alarms(alarm_id, office, test, state, raised_at,"
                " received_at, presses, location, kind) VALUES (?,?,?,?,?,?,?,?,?)",
                (alarm_id, office, int(test), "active", at, now, presses or 1,
                 json.dumps(location or {}), "drill" if test else "panic"))
            current = self.alarm(alarm_id)
            assert current is not None  # noqa: S101 - just inserted
            changed = True
        else:
            changed = False
        updates: dict[str, Any] = {}
        if presses is not None and presses > current["presses"]:
            updates["presses"] = presses
        if location and not current["location"]:
            updates["location"] = json.dumps(location)
        if test and not current["test"]:
            updates["test"], updates["kind"] = 1, "drill"
        if ALARM_RANK[state] > ALARM_RANK[current["state"]]:
            updates["state"] = state
        if state in ("acknowledged", "closed") and current["acknowledged_at"] is None:
            updates["acknowledged_by"], updates["acknowledged_at"] = by, at
        if state == "closed" and current["resolved_at"] is None:
            updates["resolved_by"], updates["resolved_at"], updates["closed_at"] = by, at, at
        if updates:
            self.update_alarm(alarm_id, **updates)
            changed = True
        result = self.alarm(alarm_id)
        assert result is not None  # noqa: S101 - exists
        return result, changed

    def insert_fault(self, alarm_id: str, office: str, fault: str, *, at: str, now: float,
                     location: dict[str, Any]) -> dict[str, Any]:
        """A new fault alarm (raised by the station itself)."""
        self.db.execute(
            "INSERT INTO alarms(alarm_id, office, test, state, raised_at, received_at, presses,"
            " location, kind, fault) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (alarm_id, office, 0, "active", at, now, 1, json.dumps(location), "fault", fault))
        row = self.alarm(alarm_id)
        assert row is not None  # noqa: S101 - just inserted
        return row

    def update_alarm(self, alarm_id: str, **fields: Any) -> None:
        """Set columns of one alarm (names are checked against the schema)."""
        bad = set(fields) - set(ALARM_COLUMNS)
        if bad:
            raise StoreError(f"unknown alarm columns: {sorted(bad)}")
        if "responders" in fields and not isinstance(fields["responders"], str):
            fields["responders"] = json.dumps(fields["responders"])
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self.db.execute(f"UPDATE alarms SET {assignments} WHERE alarm_id = ?",  # noqa: S608
                        (*fields.values(), alarm_id))

    # ----------------------------------------------------------------- timeline

    def log_alarm(self, alarm_id: str, ts: str, what: str, by: str | None = None,
                  detail: str = "") -> None:
        """One step of an alarm's life taken by the station (the caller commits)."""
        self.db.execute("INSERT INTO alarm_log(alarm_id, ts, what, by, detail)"
                        " VALUES (?,?,?,?,?)", (alarm_id, ts, what, by, detail[:500]))

    def alarm_log(self, alarm_id: str) -> list[dict[str, Any]]:
        """The station's own log of one alarm, in the order it was written."""
        return [dict(r) for r in self.db.execute(
            "SELECT ts, what, by, detail FROM alarm_log WHERE alarm_id = ? ORDER BY id",
            (alarm_id,))]

    def alarm_events(self, alarm_id: str) -> list[dict[str, Any]]:
        """The office's events that carry this alarm's id, oldest first."""
        out = []
        for row in self.db.execute(
                "SELECT payload FROM events WHERE alarm_id = ? ORDER BY seq", (alarm_id,)):
            out.append(json.loads(row[0]))
        return out


def _alarm_dict(row: sqlite3.Row) -> dict[str, Any]:
    data = {name: row[name] for name in ALARM_COLUMNS}
    data["test"] = bool(data["test"])
    data["location"] = json.loads(data["location"] or "{}")
    data["responders"] = json.loads(data["responders"] or "[]")
    return data
