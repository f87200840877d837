"""One SQL dialect for the guard store on two backends: SQLite (embedded) and PostgreSQL.

The store is written against `sqlite3.Connection`'s API (`execute` with `?`
placeholders, rows by name or index, `commit`/`rollback`). For PostgreSQL,
`PgDb` offers the same API on a psycopg 3 connection from a pool and
translates each statement once (cached):

- `?` -> `%s` (a literal `%` -> `%%`); the column `user` (a keyword in
  PostgreSQL) is quoted;
- `INSERT OR IGNORE` -> `INSERT ... ON CONFLICT DO NOTHING`,
  `INSERT OR REPLACE` -> `ON CONFLICT (primary key) DO UPDATE` (keys in `UPSERT_KEYS`);
- `PRAGMA` is a no-op.

Transactions behave like Python's sqlite3 with `isolation_level="DEFERRED"`:
reads run in autocommit, the first write opens a transaction, `commit()`
ends it. So a station never sits "idle in transaction" holding a snapshot
or row locks between batches, and two stations block each other only for
the length of one batch. Before COMMIT, the alarms a transaction touched are
announced with `pg_notify` (delivered only if the commit succeeds), so the
other stations show them (`controller/guard/cluster.py`).

A PostgreSQL error is raised as `PgError`, a `sqlite3.DatabaseError`, so
every `except sqlite3.Error` of the station handles both backends alike.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any, Protocol

import structlog

log = structlog.get_logger("officesec.guard.db")

NOTIFY_CHANNEL = "officesec_alarms"
NOTIFY_MAX_IDS = 100  # 100 uuids + envelope stay well below PostgreSQL's 8000-byte payload limit
# primary keys of the tables written with INSERT OR REPLACE (PostgreSQL needs the conflict target)
UPSERT_KEYS: dict[str, tuple[str, ...]] = {
    "gaps": ("office", "from_seq"),
    "web_login_trust": ("user", "address"),
    "web_sessions": ("id",),
    "offices": ("id",),
    "alarms": ("alarm_id",),
    "events": ("id",),
}
# the store runs on the event loop: a hung server or another station's row lock must fail a
# statement within seconds (the batch is then not acked, or retried one by one), never freeze it
SESSION: dict[str, Any] = {
    "connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
    "keepalives_count": 2, "tcp_user_timeout": 10000,
    "options": "-c statement_timeout=10000 -c lock_timeout=3000"
               " -c idle_in_transaction_session_timeout=60000",
}
MIGRATE_LOCK = 0x6F66_7365_6301  # advisory lock key for schema changes ("ofsec" + 1)
_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.I)


class Cursor(Protocol):
    """What the store reads from a cursor (sqlite3.Cursor and psycopg's Cursor both fit)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Db(Protocol):
    """The part of sqlite3.Connection the store uses."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...

    def executescript(self, sql_script: str, /) -> Any: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


class PgError(sqlite3.DatabaseError):
    """A PostgreSQL failure, catchable wherever the station catches sqlite3.Error."""


class Row(tuple[Any, ...]):
    """A result row readable by index and by column name, and `dict(row)`, like sqlite3.Row."""

    _names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        """Column names in order (what `dict(row)` uses)."""
        return list(self._names)


def _row_factory(cursor: Any) -> Any:
    desc = cursor.description
    if desc is None:
        return tuple
    names = {d.name: i for i, d in enumerate(desc)}
    cls = type("Row", (Row,), {"_names": names})

    def make(values: Sequence[Any]) -> Row:
        return cls(values)  # type: ignore[no-any-return]
    return make


_TOKENS = re.compile(r"('(?:[^']|'')*')|(\"[^\"]*\")|(\?)|(%)|\b(user)\b", re.I)


@lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """SQLite-flavoured SQL as PostgreSQL runs it (see the module docstring)."""

    def token(m: re.Match[str]) -> str:
        if m.group(1) or m.group(2):
            return m.group(0)  # string literal or quoted identifier: unchanged
        if m.group(3):
            return "%s"
        if m.group(4):
            return "%%"
        return '"user"'

    out = _TOKENS.sub(token, sql)
    head = re.match(r"\s*INSERT\s+OR\s+(IGNORE|REPLACE)\s+INTO\s+(\w+)\s*\(([^)]*)\)", out, re.I)
    if head is None:
        return out
    mode, table, cols = head.group(1).upper(), head.group(2), head.group(3)
    out = re.sub(r"INSERT\s+OR\s+(IGNORE|REPLACE)\s+INTO", "INSERT INTO", out, count=1,
                 flags=re.I)
    if mode == "IGNORE":
        return out.rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
    keys = UPSERT_KEYS.get(table)
    if keys is None:
        raise ValueError(f"INSERT OR REPLACE into {table}: add its primary key to UPSERT_KEYS")
    names = [c.strip() for c in cols.split(",")]
    quoted = [f'"{k}"' for k in keys]
    sets = ", ".join(f"{n} = EXCLUDED.{n}" for n in names if n.strip('"') not in keys)
    action = f"DO UPDATE SET {sets}" if sets else "DO NOTHING"
    return out.rstrip().rstrip(";") + f" ON CONFLICT ({', '.join(quoted)}) {action}"


def _params(values: Any) -> tuple[Any, ...]:
    """PostgreSQL text cannot hold NUL (SQLite can): one office's odd byte must not fail a batch."""
    return tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) and "\x00" in v else v
                 for v in values)


def pg_ddl(script: str) -> str:
    """SQLite DDL as PostgreSQL DDL: identity keys, 64-bit integers, double precision."""
    out = re.sub(r"INTEGER PRIMARY KEY AUTOINCREMENT",
                 "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", script)
    out = re.sub(r"\bINTEGER\b", "BIGINT", out)
    out = re.sub(r"\bREAL\b", "DOUBLE PRECISION", out)
    return translate(out)


class PgDb:
    """sqlite3.Connection's API on a pooled psycopg connection (see the module docstring)."""

    def __init__(self, url: str, *, station: str = "", pool_max: int = 4) -> None:
        """Open a small pool and take one connection; the store uses it on the event loop."""
        import psycopg  # noqa: PLC0415 - only stations with a PostgreSQL store need it
        from psycopg_pool import ConnectionPool  # noqa: PLC0415

        self._psycopg = psycopg
        self.url = url
        self.station = station
        self.pool = ConnectionPool(url, min_size=1, max_size=pool_max, open=False,
                                   kwargs={"autocommit": True, **SESSION},
                                   check=ConnectionPool.check_connection, name="officesec")
        try:
            self.pool.open(wait=True, timeout=10)
        except Exception as exc:  # PoolTimeout: the server is not there or refuses us
            self.pool.close()
            raise PgError(f"cannot connect to PostgreSQL: {exc}") from exc
        self._conn: Any = None
        self.in_transaction = False
        self.touched: set[str] = set()  # alarm ids written in the open transaction
        self.touched_offices: set[str] = set()  # offices whose state changed (shared ingest)

    def _connection(self) -> Any:
        if self._conn is None:
            try:
                self._conn = self.pool.getconn(timeout=5)
            except Exception as exc:
                raise PgError(f"no PostgreSQL connection: {exc}") from exc
        return self._conn

    def _fail(self, exc: Exception) -> PgError:
        """Give a broken connection back (the pool replaces it); the transaction is gone."""
        conn, self._conn = self._conn, None
        self.in_transaction = False
        self.touched.clear()
        self.touched_offices.clear()
        if conn is not None:
            try:
                if conn.closed or conn.broken:
                    self.pool.putconn(conn)
                else:
                    conn.rollback()
                    self.pool.putconn(conn)
            except Exception:  # noqa: BLE001 - the connection is dead either way
                log.warning("pg_connection_discarded")
        return PgError(str(exc).strip() or type(exc).__name__)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        """Run one statement; a write opens the transaction `commit()` ends."""
        conn = self._connection()
        try:
            if not self.in_transaction and _WRITE.match(sql):
                conn.execute("BEGIN")
                self.in_transaction = True
            if sql.lstrip()[:6].upper() == "PRAGMA":
                return conn.cursor(row_factory=_row_factory)
            cur = conn.cursor(row_factory=_row_factory)
            cur.execute(translate(sql), _params(parameters) if parameters else None)
            return cur
        except self._psycopg.Error as exc:
            raise self._fail(exc) from exc

    def executemany(self, sql: str, parameters: Any, /) -> Any:
        """Run one statement for each parameter tuple (inside the transaction)."""
        conn = self._connection()
        try:
            if not self.in_transaction:
                conn.execute("BEGIN")
                self.in_transaction = True
            cur = conn.cursor(row_factory=_row_factory)
            cur.executemany(translate(sql), [_params(p) for p in parameters])
            return cur
        except self._psycopg.Error as exc:
            raise self._fail(exc) from exc

    def executescript(self, sql_script: str, /) -> Any:
        """Run DDL (several statements, no parameters) in its own transaction.

        Stations starting together take turns (a transaction-level advisory
        lock): concurrent `CREATE TABLE IF NOT EXISTS` can otherwise collide.
        """
        self.commit()
        conn = self._connection()
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
                conn.execute(pg_ddl(sql_script))
        except self._psycopg.Error as exc:
            raise self._fail(exc) from exc

    def touch(self, alarm_id: str) -> None:
        """Mark the alarm as changed by the open transaction: the other stations hear at commit."""
        self.touched.add(alarm_id)

    def touch_office(self, office: str) -> None:
        """Mark an office's stored state as changed: stations sharing the heartbeats re-read it."""
        self.touched_offices.add(office)

    def commit(self) -> None:
        """Announce the touched alarms and offices, commit (NOTIFY is delivered only on COMMIT)."""
        if not self.in_transaction:
            if not self.touched and not self.touched_offices:
                return
            self._connection().execute("BEGIN")  # a touch without a write: notify anyway
            self.in_transaction = True
        conn = self._connection()
        try:
            for key, ids in (("alarms", sorted(self.touched)),
                             ("offices", sorted(self.touched_offices))):
                for start in range(0, len(ids), NOTIFY_MAX_IDS):
                    payload = json.dumps({"from": self.station,
                                          key: ids[start:start + NOTIFY_MAX_IDS]})
                    conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, payload))
            conn.execute("COMMIT")
        except self._psycopg.Error as exc:
            raise self._fail(exc) from exc
        self.in_transaction = False
        self.touched.clear()
        self.touched_offices.clear()

    def rollback(self) -> None:
        """Drop the open transaction (after a failed batch)."""
        self.touched.clear()
        self.touched_offices.clear()
        if not self.in_transaction or self._conn is None:
            self.in_transaction = False
            return
        try:
            self._conn.execute("ROLLBACK")
        except self._psycopg.Error as exc:
            raise self._fail(exc) from exc
        self.in_transaction = False

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the schema lock (a session advisory lock) for a migration of several steps."""
        self.commit()
        conn = self._connection()
        try:
            # a migration of a big store may take long, and so may waiting for another's
            conn.execute("SET statement_timeout = 0")
            conn.execute("SET lock_timeout = 0")
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK,))
        except self._psycopg.Error as exc:
            raise self._fail(exc) from exc
        try:
            yield
        finally:
            if self._conn is conn:
                with contextlib.suppress(self._psycopg.Error):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK,))
                    conn.execute("RESET statement_timeout")
                    conn.execute("RESET lock_timeout")

    def columns(self, table: str) -> set[str]:
        """Column names of a table (SQLite's PRAGMA table_info)."""
        cur = self.execute("SELECT column_name FROM information_schema.columns"
                           " WHERE table_schema = current_schema() AND table_name = ?", (table,))
        return {r[0] for r in cur}

    def close(self) -> None:
        """Return the connection and close the pool."""
        try:
            if self._conn is not None:
                if self.in_transaction:
                    self.commit()
                self.pool.putconn(self._conn)
                self._conn = None
        finally:
            self.pool.close()


def is_postgres(url: str | None) -> bool:
    """A `postgresql://` (or `postgres://`) URL."""
    return bool(url) and str(url).split(":", 1)[0] in ("postgresql", "postgres")


def redact_url(url: str) -> str:
    """The URL without its password (for logs and error messages)."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)
