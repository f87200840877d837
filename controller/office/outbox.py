"""The office's durable outbox: every event survives until the broker acknowledged it.

Publishing a panic must not wait for a disk flush (an SD card can stall for
400 ms), yet the event must be on disk within milliseconds. So the logic thread
keeps the pending events in memory and publishes at once, while one writer
thread commits them to SQLite (WAL, synchronous=FULL) in small batches. Every
write goes through that one thread, in order, so an acknowledgement can never
overtake the insert it acknowledges.

Delivered events are kept for `keep_delivered_s` so the guard station can ask
for a range again (`resend`): a broker's PUBACK is not the end of the road.
If the database cannot be opened or written, the outbox keeps working from
memory and reports the fault; nothing blocks the alarm path.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Any

import structlog

from controller.protocol.names import MAX_RESEND
from controller.settings import private_sqlite

log = structlog.get_logger("outbox")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    is_alarm INTEGER NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL,
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS events_pending ON events (delivered_at) WHERE delivered_at IS NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires REAL NOT NULL);
"""
_BUMP_LAST_SEQ = (
    "INSERT INTO meta VALUES ('last_seq', ?) ON CONFLICT(key) DO UPDATE SET "
    "value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))"
)
_BATCH = 500  # ops per transaction; one fsync covers them all
_RETRY_S = 1.0  # how long the writer waits before retrying after a storage error
_PRUNE_EVERY_S = 3600.0
_NONCE_SWEEP_AT = 1024  # in-memory nonces before expired ones are swept out
SEQ_BLOCK = 256  # seq numbers reserved on disk ahead of use
SEQ_MARGIN = 128  # reserve the next block this far before the current one runs out


@dataclass(frozen=True)
class Pending:
    """An event not yet acknowledged by the broker."""

    seq: int
    id: str
    is_alarm: bool
    payload: bytes


class Outbox:
    """Pending events in memory (seq order), mirrored to SQLite by one writer thread."""

    def __init__(self, path: str, *, max_events: int, keep_delivered_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        """Only remember the settings; `open()` touches the disk."""
        self.path = path
        self.max_events = max_events
        self.keep_delivered_s = keep_delivered_s
        self.clock = clock
        self._pending: OrderedDict[str, Pending] = OrderedDict()
        self._lock = threading.Lock()
        self._ops: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        self.last_seq = 0
        self.reserved = 0  # seq numbers up to here are reserved on disk (see next_seq)
        self._reserved_committed = 0
        self.void: tuple[int, int] | None = None
        self.dropped = 0
        self.meta: dict[str, str] = {}
        self.nonces: dict[str, float] = {}
        self.fault: str | None = None
        self.last_write_ok = time.monotonic()

    # ------------------------------------------------------------- lifecycle

    def open(self) -> None:
        """Open (or create) the database and load what survived the last run."""
        db: sqlite3.Connection | None = None
        try:
            private_sqlite(self.path)  # 0600 whatever the umask
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
            self.meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            row = db.execute("SELECT MAX(seq) FROM events").fetchone()
            used = max(int(self.meta.get("last_seq", "0")), int(row[0] or 0))
            reserved = int(self.meta.get("seq_reserved", "0"))
            if self.meta.get("clean_stop", "1") != "1" and reserved > used:
                # after a crash, numbers up to `reserved` may have gone out unrecorded:
                # skip them rather than ever reuse one, and say so (controller_started)
                self.void = (used + 1, reserved)
                used = reserved
            self.last_seq = used
            self.reserved = self._reserved_committed = used
            db.execute("INSERT OR REPLACE INTO meta VALUES ('clean_stop', '0')")
            self.dropped = int(self.meta.get("dropped", "0"))
            for seq, eid, is_alarm, payload in db.execute(
                    "SELECT seq, id, is_alarm, payload FROM events WHERE delivered_at IS NULL "
                    "ORDER BY seq"):
                self._pending[eid] = Pending(seq, eid, bool(is_alarm), bytes(payload))
            now = self.clock()
            self.nonces = {n: e for n, e in db.execute("SELECT nonce, expires FROM nonces")
                           if e > now}
            self._db = db
        except (sqlite3.Error, OSError, ValueError) as exc:
            self.fault = f"storage: cannot open {self.path}: {exc}"
            log.error("storage_open_failed", path=self.path, error=str(exc))
            self._db = None
            if db is not None:
                db.close()  # a half-opened (corrupt) file must not stay locked by us
        self._thread = threading.Thread(target=self._writer, name="outbox-writer", daemon=True)
        self._thread.start()
        if self._db is not None:
            self._ops.put(("prune", None))

    def close(self, timeout: float = 2.0) -> None:
        """Flush what is queued, mark the stop clean, stop the writer, close the database."""
        self._ops.put(("meta", ("seq_reserved", str(self.last_seq))))
        self._ops.put(("meta", ("clean_stop", "1")))
        self.flush(timeout)
        self._ops.put(("stop", None))
        if self._thread is not None:
            self._thread.join(timeout)
        if self._db is not None:
            self._db.close()
            self._db = None

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until every queued write is committed (True) or the timeout passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ops.unfinished_tasks == 0:  # every op taken AND committed (task_done)
                return True
            time.sleep(0.002)
        return False

    @property
    def alive(self) -> bool:
        """The writer thread is running (for the watchdog)."""
        return self._thread is not None and self._thread.is_alive()

    # --------------------------------------------------------- logic thread

    def next_seq(self) -> int:
        """The next sequence number (logic thread only); never reused, even after a crash.

        Numbers are reserved on disk in blocks ahead of use, asynchronously, so
        an event is published before its row is committed without ever risking
        that a crash makes the next run hand out the same number again.
        """
        self.last_seq += 1
        if self.last_seq > self.reserved - SEQ_MARGIN:
            self.reserved = self.last_seq + SEQ_BLOCK
            self._ops.put(("reserve", self.reserved))
        # only in a burst of SEQ_MARGIN events within one commit; never while the disk fails
        # (then seq numbers come from memory, and an alarm must not wait on a dead disk)
        deadline = time.monotonic() + 5.0
        while (self.last_seq > self._reserved_committed and self._db is not None
               and self.fault is None and time.monotonic() < deadline):
            time.sleep(0.001)
        return self.last_seq

    def add(self, seq: int, event_id: str, etype: str, payload: bytes, *, is_alarm: bool) -> None:
        """Keep a new event pending and queue it for the disk; make room if full."""
        with self._lock:
            self._pending[event_id] = Pending(seq, event_id, is_alarm, payload)
            overflow = len(self._pending) - self.max_events
            # stop at the first victims found: a full scan per event is O(n) on the alarm path
            victims = list(islice((p for p in self._pending.values() if not p.is_alarm),
                                  max(overflow, 0)))
            for victim in victims:
                del self._pending[victim.id]
        self._ops.put(("insert", (seq, event_id, etype, int(is_alarm), payload, self.clock())))
        if victims:
            self.dropped += len(victims)
            self._ops.put(("drop", [v.id for v in victims]))
            log.warning("outbox_full_dropped", dropped=len(victims), total_dropped=self.dropped,
                        first_seq=victims[0].seq, max_events=self.max_events)

    def set_meta(self, key: str, value: str) -> None:
        """Persist a small piece of state (open alarm, lockdown)."""
        self.meta[key] = value
        self._ops.put(("meta", (key, value)))

    def remember_nonce(self, nonce: str, expires: float) -> None:
        """Remember a command nonce until `expires` (wall clock), across restarts."""
        if len(self.nonces) >= _NONCE_SWEEP_AT:  # expired ones go, or memory grows for months
            now = self.clock()
            self.nonces = {n: e for n, e in self.nonces.items() if e > now}
        self.nonces[nonce] = expires
        self._ops.put(("nonce", (nonce, expires)))

    def seen_nonce(self, nonce: str) -> bool:
        """True when this nonce was accepted before and has not expired."""
        expires = self.nonces.get(nonce)
        return expires is not None and expires > self.clock()

    # ------------------------------------------------------ any thread

    def pending(self) -> list[Pending]:
        """Every unacknowledged event, in seq order."""
        with self._lock:
            return sorted(self._pending.values(), key=lambda p: p.seq)

    @property
    def pending_count(self) -> int:
        """How many events wait for a PUBACK."""
        return len(self._pending)

    def delivered(self, event_id: str) -> None:
        """The broker acknowledged this event (paho thread)."""
        with self._lock:
            found = self._pending.pop(event_id, None)
        if found is not None:
            self._ops.put(("ack", (event_id, self.clock())))

    def stored_range(self, from_seq: int, to_seq: int) -> list[tuple[int, bytes]]:
        """Stored events with from_seq <= seq <= to_seq (at most MAX_RESEND), for `resend`."""
        to_seq = min(to_seq, from_seq + MAX_RESEND - 1)
        if self._db is None:
            with self._lock:
                return [(p.seq, p.payload) for p in sorted(self._pending.values(),
                                                           key=lambda p: p.seq)
                        if from_seq <= p.seq <= to_seq]
        reader = sqlite3.connect(self.path, timeout=5)
        try:
            rows = reader.execute("SELECT seq, payload FROM events WHERE seq BETWEEN ? AND ? "
                                  "ORDER BY seq", (from_seq, to_seq)).fetchall()
        finally:
            reader.close()
        return [(int(seq), bytes(payload)) for seq, payload in rows]

    # --------------------------------------------------------- writer thread

    def _writer(self) -> None:  # noqa: PLR0912 - one loop, every failure path explicit
        retry: list[tuple[str, Any]] = []
        last_prune = time.monotonic()
        while True:
            batch = retry or [self._ops.get()]
            retry = []
            self._idle.clear()
            while len(batch) < _BATCH:
                try:
                    batch.append(self._ops.get_nowait())
                except queue.Empty:
                    break
            stop = any(op == "stop" for op, _ in batch)
            if self._db is None:
                self._done(len(batch))
                self._idle.set()
                if stop:
                    return
                continue
            try:
                self._apply([op for op in batch if op[0] != "stop"])
                self.last_write_ok = time.monotonic()
                if self.fault is not None:
                    log.info("storage_recovered", path=self.path)
                    self.fault = None
                self._done(len(batch))  # after the fault is cleared: flush() sees it all
            except sqlite3.Error as exc:
                if self.fault is None:
                    log.error("storage_write_failed", path=self.path, error=str(exc))
                self.fault = f"storage: cannot write {self.path}: {exc}"
                retry = [op for op in batch if op[0] != "stop"][-self.max_events:]
                self._done(len(batch) - len(retry))
                if stop:
                    return
                time.sleep(_RETRY_S)
                continue
            finally:
                if not retry:
                    self._idle.set()
            if stop:
                return
            if time.monotonic() - last_prune > _PRUNE_EVERY_S:
                last_prune = time.monotonic()
                self._ops.put(("prune", None))

    def _done(self, count: int) -> None:
        """Mark ops as finished for `flush` (only after their commit, or when given up)."""
        for _ in range(count):
            self._ops.task_done()

    def _apply(self, batch: list[tuple[str, Any]]) -> None:
        db = self._db
        assert db is not None  # noqa: S101 - guarded by the caller
        db.execute("BEGIN IMMEDIATE")
        try:
            for op, arg in batch:
                if op == "insert":
                    db.execute("INSERT OR IGNORE INTO events (seq, id, type, is_alarm, payload, "
                               "created) VALUES (?, ?, ?, ?, ?, ?)", arg)
                    db.execute(_BUMP_LAST_SEQ, (str(arg[0]),))
                elif op == "ack":
                    db.execute("UPDATE events SET delivered_at = ? WHERE id = ?", (arg[1], arg[0]))
                elif op == "drop":
                    db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in arg])
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('dropped', ?)",
                               (str(self.dropped),))
                elif op == "meta":
                    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", arg)
                elif op == "reserve":
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('seq_reserved', ?)",
                               (str(arg),))
                elif op == "nonce":
                    db.execute("INSERT OR REPLACE INTO nonces VALUES (?, ?)", arg)
                elif op == "prune":
                    now = self.clock()
                    db.execute("DELETE FROM events WHERE delivered_at < ?",
                               (now - self.keep_delivered_s,))
                    db.execute("DELETE FROM nonces WHERE expires < ?", (now,))
            db.execute("COMMIT")
            for op, arg in batch:
                if op == "reserve":
                    self._reserved_committed = max(self._reserved_committed, int(arg))
        except sqlite3.Error:
            db.execute("ROLLBACK") if db.in_transaction else None
            raise
