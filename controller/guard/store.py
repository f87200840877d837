"""The guard station's durable store: SQLite in WAL mode or PostgreSQL, one connection, one thread.

Events are unique by `id` (a redelivery is counted and dropped), alarms keep
their whole life, gaps in an office's `seq` are kept until filled, and every
guard action goes to the audit trail. Writes are batched by the caller: the
MQTT consumer acknowledges a message to the broker only after `commit()`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any

from controller.errors import StoreError
from controller.guard.change_feed import AlarmChanges
from controller.guard.db import Db, PgDb, is_postgres, redact_url
from controller.guard.schema import migrate
from controller.protocol.messages import Event, format_ts
from controller.settings import private_sqlite

FIRST_CONTACT_WINDOW = 1000
"""Events asked for again when an office's very first events never arrived (a lost tail)."""


@dataclass(frozen=True)
class SeqResult:
    """What one event's `seq` did to the office's sequence: new gap, filled one, or nothing."""

    new_gap: tuple[int, int] | None = None
    filled: bool = False
    reset: bool = False


class Store(AlarmChanges):
    """All SQL of the guard station; callers commit when a batch is complete."""

    def __init__(self, path: str, *, station: str = "") -> None:
        """Open (creating if needed) the store: a SQLite file in WAL mode, or a PostgreSQL URL.

        `station` (the guard id) marks this station's change notifications on
        a shared PostgreSQL store, so that it does not act on its own.
        """
        self.shared = is_postgres(path)
        self.db: Db
        try:
            if self.shared:
                pg = PgDb(path, station=station)
                self.db = pg
                with pg.exclusive():
                    self.schema_version = migrate(pg)
            else:
                self.db = self._open_sqlite(path)
                self.schema_version = migrate(self.db)
            self._max: dict[str, int] = {
                r[0]: int(r[1]) for r in self.db.execute("SELECT id, max_seq FROM offices")}
        except (sqlite3.Error, OSError) as exc:
            where = "store.url" if self.shared else "store.path"
            raise StoreError(f"{where}: cannot open {redact_url(path)}: {exc}") from exc
        self.path = path
        self._info: dict[str, tuple[str, float]] = {}  # office -> (info, now), PostgreSQL only
        self.announce_offices = False  # stations sharing heartbeats: tell the others at commit
        self._ckpt: sqlite3.Connection | None = None
        self._ckpt_lock = threading.Lock()

    @staticmethod
    def _open_sqlite(path: str) -> sqlite3.Connection:
        private_sqlite(path)  # 0600 whatever the umask (alarm history, sessions)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        # checkpoints (the only fsyncs of WAL + synchronous=NORMAL) run in a
        # background thread on their own connection: see checkpoint()
        db.execute("PRAGMA wal_autocheckpoint=0")
        return db

    def reload_seq(self) -> None:
        """Re-read every office's highest seq (a station that just became the leader).

        A follower does not keep the sequence bookkeeping; what the old leader
        recorded and what either station stored both count.
        """
        self._max = {r[0]: int(r[1]) for r in self.db.execute("SELECT id, max_seq FROM offices")}
        for row in self.db.execute("SELECT office, MAX(seq) FROM events GROUP BY office"):
            if int(row[1]) > self._max.get(row[0], 0):
                self._max[row[0]] = int(row[1])

    def close(self) -> None:
        """Commit what is pending, checkpoint, and close the connections."""
        try:
            self.commit()
            if not self.shared:
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.db.close()
            with self._ckpt_lock:
                if self._ckpt is not None:
                    self._ckpt.close()
                    self._ckpt = None

    def checkpoint(self) -> None:
        """Copy the WAL into the database (PASSIVE: never blocks the writer).

        Called from a worker thread every few seconds, so that the fsync a
        checkpoint needs (slow on SD cards) never stalls the event loop that
        delivers alarms.
        """
        if self.path == ":memory:" or self.shared:
            return
        with self._ckpt_lock:
            if self._ckpt is None:
                self._ckpt = sqlite3.connect(self.path, check_same_thread=False)
                self._ckpt.execute("PRAGMA busy_timeout=5000")
            self._ckpt.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def commit(self) -> None:
        """Make the batch durable; only after this may the broker be acknowledged."""
        if self._info:
            self._write_info()
        self.db.commit()

    def _write_info(self) -> None:
        rows = [(office, now, info) for office, (info, now) in self._info.items()]
        if self.announce_offices and isinstance(self.db, PgDb):
            for office in self._info:
                self.db.touch_office(office)
        self._info.clear()
        self.db.executemany(
            "INSERT INTO offices(id, first_seen, info) VALUES (?,?,?)"
            " ON CONFLICT(id) DO UPDATE SET info = excluded.info", rows)

    def healthy(self) -> bool:
        """A trivial read succeeds."""
        try:
            self.db.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    # ------------------------------------------------------------------ events

    def insert_event(self, event: Event, received_at: float) -> bool:
        """Store the event; False when its id is already stored (a duplicate)."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO events(id, office, seq, ts, type, test, alarm_id, received_at,"
            " payload) VALUES (?,?,?,?,?,?,?,?,?)",
            (str(event.id), event.office, event.seq, _ts(event), event.type, int(event.test),
             str(event.alarm_id) if event.alarm_id else None, received_at,
             event.to_bytes().decode()),
        )
        if cur.rowcount == 0:
            self.ensure_office(event.office, received_at)
            self.db.execute("UPDATE offices SET duplicates = duplicates + 1 WHERE id = ?",
                            (event.office,))
            return False
        return True

    def events(self, *, office: str | None = None, since: str | None = None,
               type_: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Stored events, newest first, with the given filters."""
        where: list[str] = []
        args: list[Any] = []
        if office:
            where.append("office = ?")
            args.append(office)
        if since:
            where.append("ts >= ?")
            args.append(since)
        if type_:
            where.append("type = ?")
            args.append(type_)
        sql = "SELECT payload, received_at FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts DESC, seq DESC LIMIT ?"
        args.append(limit)
        out = []
        for row in self.db.execute(sql, args):
            data = json.loads(row["payload"])
            data["received_at"] = row["received_at"]
            out.append(data)
        return out

    def event_count(self, office: str | None = None) -> int:
        """How many events are stored (for one office or all)."""
        if office:
            row = self.db.execute("SELECT COUNT(*) FROM events WHERE office = ?", (office,))
        else:
            row = self.db.execute("SELECT COUNT(*) FROM events")
        return int(row.fetchone()[0])

    # ----------------------------------------------------------------- offices

    def ensure_office(self, office: str, now: float) -> None:
        """Create the office row on first sight."""
        self.db.execute("INSERT OR IGNORE INTO offices(id, first_seen) VALUES (?, ?)",
                        (office, now))

    def office_rows(self) -> dict[str, dict[str, Any]]:
        """Every office ever seen, with its sequence and duplicate counters."""
        rows = self.db.execute("SELECT id, first_seen, max_seq, duplicates, info FROM offices")
        return {r["id"]: {"first_seen": r["first_seen"], "max_seq": r["max_seq"],
                          "duplicates": r["duplicates"], "info": json.loads(r["info"])}
                for r in rows}

    def office_infos(self, offices: list[str]) -> dict[str, dict[str, Any]]:
        """The stored last state and location of these offices (another station wrote them)."""
        if not offices:
            return {}
        marks = ",".join("?" * len(offices))
        rows = self.db.execute(f"SELECT id, info FROM offices WHERE id IN ({marks})",  # noqa: S608
                               tuple(offices))
        return {r["id"]: json.loads(r["info"]) for r in rows}

    def set_office_info(self, office: str, info: dict[str, Any], now: float) -> None:
        """Keep the last known state of an office so a restart shows it at once."""
        if self.shared:
            # PostgreSQL: one pipelined statement per batch at commit, not two round trips
            # per office (20,000 offices' first states at once would stall the loop for seconds)
            first = self._info[office][1] if office in self._info else now
            self._info[office] = (json.dumps(info), first)
            return
        self.ensure_office(office, now)
        self.db.execute("UPDATE offices SET info = ? WHERE id = ?", (json.dumps(info), office))

    def max_seq(self, office: str) -> int:
        """Highest seq stored for the office (0 when none)."""
        return self._max.get(office, 0)

    def _set_max(self, office: str, seq: int) -> None:
        self._max[office] = seq
        self.db.execute("UPDATE offices SET max_seq = ? WHERE id = ?", (seq, office))

    # -------------------------------------------------------------------- gaps

    def note_seq(self, office: str, seq: int, now: float, *, started: bool = False) -> SeqResult:
        """Advance the office's sequence; record a gap before `seq` or fill the one it is in.

        The first seq ever seen is the baseline (a new guard station does not ask
        for history; open alarms arrive as retained messages anyway). A
        `controller_started` event with seq 1 below the known maximum means the
        office lost its store: the sequence starts again and old gaps are moot.
        """
        self.ensure_office(office, now)
        top = self.max_seq(office)
        if top == 0:
            self._set_max(office, seq)
            return SeqResult()
        if started and seq == 1 and top > 1:
            self._set_max(office, 1)
            self.db.execute("DELETE FROM gaps WHERE office = ?", (office,))
            return SeqResult(reset=True)
        if seq > top:
            self._set_max(office, seq)
            if seq > top + 1:
                self.add_gap(office, top + 1, seq - 1, now)
                return SeqResult(new_gap=(top + 1, seq - 1))
            return SeqResult()
        return SeqResult(filled=self._fill(office, seq))

    def tail_gap(self, office: str, state_seq: int, now: float,
                 first_window: int = FIRST_CONTACT_WINDOW) -> tuple[int, int] | None:
        """The office says it has events up to `state_seq` that the store lacks: a gap.

        With nothing stored for the office yet (its very first events were lost, e.g.
        published before a broker had the station's subscription ready) the gap is
        the last `first_window` events, not its whole history since installation.
        """
        top = self.max_seq(office)
        if state_seq <= top:
            return None
        lo = top + 1 if top else max(1, state_seq - first_window + 1)
        self._set_max(office, state_seq)
        self.add_gap(office, lo, state_seq, now)
        return (lo, state_seq)

    def add_gap(self, office: str, from_seq: int, to_seq: int, now: float) -> None:
        """Record missing events `from_seq..to_seq` (inclusive)."""
        self.db.execute("INSERT OR REPLACE INTO gaps(office, from_seq, to_seq, found_at)"
                        " VALUES (?,?,?,?)", (office, from_seq, to_seq, now))

    def _fill(self, office: str, seq: int) -> bool:
        row = self.db.execute(
            "SELECT from_seq, to_seq, found_at, requests, last_request FROM gaps"
            " WHERE office = ? AND from_seq <= ? AND to_seq >= ?", (office, seq, seq)).fetchone()
        if row is None:
            return False
        self.db.execute("DELETE FROM gaps WHERE office = ? AND from_seq = ?",
                        (office, row["from_seq"]))
        for lo, hi in ((row["from_seq"], seq - 1), (seq + 1, row["to_seq"])):
            if lo <= hi:
                self.db.execute(
                    "INSERT INTO gaps(office, from_seq, to_seq, found_at, requests, last_request)"
                    " VALUES (?,?,?,?,?,?)",
                    (office, lo, hi, row["found_at"], row["requests"], row["last_request"]))
        return True

    def void_range(self, office: str, lo: int, hi: int) -> bool:
        """Numbers `lo..hi` were reserved but maybe never used (office crash): not a gap."""
        rows = self.db.execute(
            "SELECT from_seq, to_seq, found_at, requests, last_request FROM gaps"
            " WHERE office = ? AND from_seq <= ? AND to_seq >= ?", (office, hi, lo)).fetchall()
        for row in rows:
            self.db.execute("DELETE FROM gaps WHERE office = ? AND from_seq = ?",
                            (office, row["from_seq"]))
            for a, b in ((row["from_seq"], lo - 1), (hi + 1, row["to_seq"])):
                if a <= b:
                    self.db.execute(
                        "INSERT INTO gaps(office, from_seq, to_seq, found_at, requests,"
                        " last_request) VALUES (?,?,?,?,?,?)",
                        (office, a, b, row["found_at"], row["requests"], row["last_request"]))
        return bool(rows)

    def gaps(self, office: str | None = None) -> list[dict[str, Any]]:
        """Open gaps (events that may be missing), oldest first."""
        sql = "SELECT office, from_seq, to_seq, found_at, requests, last_request FROM gaps"
        args: tuple[str, ...] = ()
        if office:
            sql += " WHERE office = ?"
            args = (office,)
        return [dict(r) for r in self.db.execute(sql + " ORDER BY found_at, office, from_seq",
                                                 args)]

    def gap_requested(self, office: str, from_seq: int, now: float) -> None:
        """Count one resend request for the gap starting at `from_seq`."""
        self.db.execute("UPDATE gaps SET requests = requests + 1, last_request = ?"
                        " WHERE office = ? AND from_seq = ?", (now, office, from_seq))

    # ------------------------------------------------------------------- audit

    def audit(self, user: str, action: str, target: str, outcome: str, detail: str = "",
              *, now: float | None = None) -> None:
        """Record one guard action and commit at once (the trail must survive a crash)."""
        self.db.execute("INSERT INTO audit(at, user, action, target, outcome, detail)"
                        " VALUES (?,?,?,?,?,?)",
                        (now if now is not None else time.time(), user, action, target, outcome,
                         detail))
        self.db.commit()

    def audit_log(self, limit: int = 200, user: str | None = None) -> list[dict[str, Any]]:
        """Newest audit entries first."""
        sql, args = "SELECT * FROM audit", list[Any]()
        if user:
            sql += " WHERE user = ?"
            args.append(user)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(str(limit))
        return [dict(r) for r in self.db.execute(sql, args)]

    # --------------------------------------------------------------- retention

    def prune(self, older_than: float) -> int:
        """Delete events, closed alarms (and their log) and audit entries before `older_than`."""
        n = self.db.execute("DELETE FROM events WHERE received_at < ?", (older_than,)).rowcount
        self.db.execute("DELETE FROM alarm_log WHERE alarm_id IN (SELECT alarm_id FROM alarms"
                        " WHERE state = 'closed' AND received_at < ?)", (older_than,))
        self.db.execute("DELETE FROM alarms WHERE state = 'closed' AND received_at < ?",
                        (older_than,))
        self.db.execute("DELETE FROM audit WHERE at < ?", (older_than,))
        self.db.commit()
        return int(n)


def _ts(event: Event) -> str:
    return format_ts(event.ts)
