"""Server-side console sessions in the guard's SQLite store (table `web_sessions`).

The cookie carries only a random token; the store keeps its SHA-256, the user,
a fingerprint of the user's password hash and role, and when it was created
and last used. So a session ends on logout, when its user's password or role
changes in the config (the fingerprint no longer matches), after
`[security] session_idle_s` without use and after `session_max_age_s` in any
case. Use slides the idle limit: every authenticated request does, and so
does an open SSE stream (`/api/stream`), so a console left open on the guard's
screen stays logged in while an unattended browser does not.

Also kept here: the addresses a user has logged in from (`web_login_trust`), so
that a name-wide login throttle never locks the real guard out.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from controller.guard.db import Db

SCHEMA = """
CREATE TABLE IF NOT EXISTS web_sessions(
  id TEXT PRIMARY KEY, user TEXT NOT NULL, fingerprint TEXT NOT NULL,
  created REAL NOT NULL, seen REAL NOT NULL, address TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS web_sessions_user ON web_sessions(user);
CREATE TABLE IF NOT EXISTS web_login_trust(
  user TEXT NOT NULL, address TEXT NOT NULL, until REAL NOT NULL,
  PRIMARY KEY(user, address));
"""
TOUCH_EVERY_S = 15.0  # a session's `seen` is written at most this often
TRUST_S = 90 * 86400.0
MAX_TRUSTED_PER_USER = 20


def fingerprint(password_hash: str, role: str) -> str:
    """Changes whenever the user's password or role does: such a change ends the session."""
    return hashlib.sha256(f"{password_hash}\0{role}".encode()).hexdigest()[:32]


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """One valid session: its key (never the token itself), user and age."""

    key: str
    user: str
    created: float
    seen: float


class Sessions:
    """All SQL of the sessions; one SQLite connection shared with the store (event loop only)."""

    def __init__(self, db: Db, *, idle_s: float, max_age_s: float) -> None:
        """Create the tables if missing."""
        self.db = db
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        db.executescript(SCHEMA)
        db.commit()

    def create(self, user: str, fp: str, address: str, now: float | None = None) -> str:
        """A new session; returns the token for the cookie (only its hash is stored)."""
        now = time.time() if now is None else now
        token = secrets.token_urlsafe(32)
        self.db.execute("INSERT INTO web_sessions(id, user, fingerprint, created, seen, address)"
                        " VALUES (?,?,?,?,?,?)", (_key(token), user, fp, now, now, address[:64]))
        self.db.commit()
        return token

    def lookup(self, token: str | None, fingerprints: dict[str, str],
               now: float | None = None, *, touch: bool = True) -> Session | None:
        """The valid session behind a cookie token; expired or outdated ones are deleted."""
        if not token or len(token) > 200:
            return None
        now = time.time() if now is None else now
        key = _key(token)
        row = self.db.execute("SELECT user, fingerprint, created, seen FROM web_sessions"
                              " WHERE id = ?", (key,)).fetchone()
        if row is None:
            return None
        user, fp, created, seen = row[0], row[1], float(row[2]), float(row[3])
        if fingerprints.get(user) != fp or now - created > self.max_age_s \
                or now - seen > self.idle_s:
            self.end(key)
            return None
        if touch and now - seen >= TOUCH_EVERY_S:
            self.db.execute("UPDATE web_sessions SET seen = ? WHERE id = ?", (now, key))
            self.db.commit()
            seen = now
        return Session(key, user, created, seen)

    def touch(self, key: str, fingerprints: dict[str, str], now: float | None = None) -> bool:
        """Keep a session alive while its console is connected; False when it has ended.

        Called by an open `/api/stream`. A connected console must never drop to a
        login page in the middle of a shift (issue 13), so this renews the absolute
        limit too: `session_max_age_s` counts from the last moment a console was
        connected. Logout, password and role changes still end it at once, and a
        session without an open stream still ends after the idle and absolute limits.
        """
        now = time.time() if now is None else now
        row = self.db.execute("SELECT user, fingerprint, created FROM web_sessions WHERE id = ?",
                              (key,)).fetchone()
        if row is None or fingerprints.get(row[0]) != row[1] \
                or now - float(row[2]) > self.max_age_s:
            self.end(key)
            return False
        self.db.execute("UPDATE web_sessions SET seen = ?, created = ? WHERE id = ?",
                        (now, now, key))
        self.db.commit()
        return True

    def end(self, key: str) -> None:
        """Delete one session (logout, or found expired)."""
        self.db.execute("DELETE FROM web_sessions WHERE id = ?", (key,))
        self.db.commit()

    def end_token(self, token: str | None) -> None:
        """Logout: the session behind this cookie token is gone for good."""
        if token:
            self.end(_key(token))

    def purge(self, fingerprints: dict[str, str], now: float | None = None) -> int:
        """At start: drop expired sessions and those of removed or changed users."""
        now = time.time() if now is None else now
        rows = self.db.execute("SELECT id, user, fingerprint, created, seen FROM web_sessions")
        dead = [r[0] for r in rows.fetchall()
                if fingerprints.get(r[1]) != r[2] or now - float(r[3]) > self.max_age_s
                or now - float(r[4]) > self.idle_s]
        self.db.executemany("DELETE FROM web_sessions WHERE id = ?", [(k,) for k in dead])
        self.db.execute("DELETE FROM web_login_trust WHERE until < ?", (now,))
        self.db.commit()
        return len(dead)

    def count(self, user: str | None = None) -> int:
        """How many sessions exist (for one user or all)."""
        if user is None:
            row = self.db.execute("SELECT COUNT(*) FROM web_sessions").fetchone()
        else:
            row = self.db.execute("SELECT COUNT(*) FROM web_sessions WHERE user = ?",
                                  (user,)).fetchone()
        return int(row[0])

    # ------------------------------------------------------------- login trust

    def trust(self, user: str, address: str, now: float | None = None) -> None:
        """Remember that `user` logged in from `address` (bounded per user)."""
        now = time.time() if now is None else now
        self.db.execute("INSERT OR REPLACE INTO web_login_trust(user, address, until)"
                        " VALUES (?,?,?)", (user, address[:64], now + TRUST_S))
        self.db.execute("DELETE FROM web_login_trust WHERE user = ? AND address NOT IN ("
                        "SELECT address FROM web_login_trust WHERE user = ?"
                        " ORDER BY until DESC LIMIT ?)", (user, user, MAX_TRUSTED_PER_USER))
        self.db.commit()

    def trusted(self, user: str, address: str, now: float | None = None) -> bool:
        """`user` has logged in from `address` recently."""
        now = time.time() if now is None else now
        row = self.db.execute("SELECT until FROM web_login_trust WHERE user = ? AND address = ?",
                              (user, address[:64])).fetchone()
        return row is not None and float(row[0]) >= now
