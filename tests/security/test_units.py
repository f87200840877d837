"""The pure parts of #17's controls, with time passed in: fast, no broker, no processes."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from controller.guard.actions import Actions
from controller.guard.commander import Commander
from controller.guard.hub import Hub
from controller.guard.ingest import Ingest, IngestLimits
from controller.guard.model import LiveModel
from controller.guard.ratelimit import RepeatFilter, Throttle, TokenBucket
from controller.guard.store import Store
from controller.guard.web.access import dumps
from controller.guard.web.csv_export import csv_safe
from controller.guard.web.security import cross_site_reason, looks_like_browser
from controller.guard.web.sessions import Sessions, fingerprint
from controller.guard.web.throttle import LoginThrottle
from controller.office.outbox import Outbox
from controller.protocol.messages import Event, Location, State, Topics, utcnow

T = Topics("officesec")


# ------------------------------------------------------------- login throttle

def test_throttle_counts_before_verifying_and_locks_the_pair_with_backoff() -> None:
    t = LoginThrottle(attempts=3, window_s=100)
    for _ in range(3):
        assert t.blocked("anna", "10.0.0.9", 0, trusted=False) is None
        t.attempt("anna", "10.0.0.9", 0)
    assert t.blocked("anna", "10.0.0.9", 1, trusted=False) == pytest.approx(99)
    assert t.blocked("anna", "10.0.0.7", 1, trusted=False) is None  # another address
    for _ in range(3):  # the next lock is twice as long
        t.attempt("anna", "10.0.0.9", 101)
    assert t.blocked("anna", "10.0.0.9", 102, trusted=False) == pytest.approx(199)


def test_name_wide_throttle_spares_addresses_the_user_logged_in_from() -> None:
    t = LoginThrottle(attempts=2, window_s=100)
    for i in range(8):  # a distributed guesser: 8 addresses, 1 try each
        t.attempt("anna", f"10.1.0.{i}", 0)
    assert t.blocked("anna", "10.2.0.1", 1, trusted=False) is not None
    assert t.blocked("anna", "10.0.0.7", 1, trusted=True) is None
    t.succeeded("anna", "10.0.0.7", 1)


def test_password_spraying_from_one_address_is_stopped() -> None:
    t = LoginThrottle(attempts=2, window_s=100)
    for i in range(20):
        t.attempt(f"user{i}", "10.0.0.9", 0)
    assert t.blocked("user99", "10.0.0.9", 1, trusted=False) is not None


def test_throttle_bookkeeping_is_bounded() -> None:
    t = LoginThrottle(attempts=5, window_s=100)
    for i in range(25_000):
        t.attempt(f"invented-{i}", "10.0.0.9", i / 1000)
    assert len(t._pairs) <= 10_000 and len(t._names) <= 10_000


# ------------------------------------------------------------------ sessions

def _sessions(**kw: float) -> Sessions:
    return Sessions(sqlite3.connect(":memory:"), idle_s=kw.get("idle", 60),
                    max_age_s=kw.get("max_age", 600))


def test_sessions_idle_limit_slides_with_use_and_the_absolute_limit_holds() -> None:
    s = _sessions()
    fps = {"anna": fingerprint("h", "guard")}
    token = s.create("anna", fps["anna"], "10.0.0.7", now=0)
    for now in range(50, 600, 50):  # used every 50 s: the 60 s idle limit never hits
        assert s.lookup(token, fps, now=now) is not None, now
    assert s.lookup(token, fps, now=650) is None  # 10 min absolute
    token = s.create("anna", fps["anna"], "", now=0)
    assert s.lookup(token, fps, now=61) is None  # idle


def test_an_open_stream_keeps_the_session_and_sees_it_end() -> None:
    s = _sessions()
    fps = {"anna": fingerprint("h", "guard")}
    token = s.create("anna", fps["anna"], "", now=0)
    key = s.lookup(token, fps, now=0)
    assert key is not None
    for now in (40, 80, 120, 160):
        assert s.touch(key.key, fps, now=now)  # what /api/stream does while open
    assert s.lookup(token, fps, now=170) is not None
    s.end_token(token)  # logout in another tab
    assert not s.touch(key.key, fps, now=180)


def test_a_connected_console_outlives_the_absolute_limit_then_it_holds_again() -> None:
    """Issue 13: a console that stays connected is never logged out by the max age."""
    s = _sessions()  # idle 60 s, absolute 600 s
    fps = {"anna": fingerprint("h", "guard")}
    token = s.create("anna", fps["anna"], "", now=0)
    key = s.lookup(token, fps, now=0)
    assert key is not None
    for now in range(30, 1900, 30):  # an open stream touches it: three times the max age
        assert s.touch(key.key, fps, now=now), now
    assert s.lookup(token, fps, now=1900) is not None
    # the console is closed: from its last connected moment the limits apply again
    for now in range(1950, 2450, 50):
        assert s.lookup(token, fps, now=now) is not None, now
    assert s.lookup(token, fps, now=2500) is None  # 600 s after the stream's last touch


def test_password_or_role_change_ends_sessions() -> None:
    s = _sessions()
    old = {"anna": fingerprint("h1", "guard"), "bob": fingerprint("h2", "admin")}
    anna = s.create("anna", old["anna"], "", now=0)
    bob = s.create("bob", old["bob"], "", now=0)
    new = {"anna": fingerprint("h1-new", "guard"), "bob": fingerprint("h2", "guard")}
    assert s.lookup(anna, new, now=1) is None
    assert s.lookup(bob, new, now=1) is None
    assert s.count() == 0
    s.create("anna", old["anna"], "", now=0)
    assert s.purge({}, now=1) == 1  # a removed user's sessions go at start


def test_sessions_table_lives_in_the_guard_store(store_target: str) -> None:
    store = Store(store_target)
    s = Sessions(store.db, idle_s=60, max_age_s=600)
    token = s.create("anna", "fp", "", now=0)
    store.close()
    reopened = Store(store_target)
    assert Sessions(reopened.db, idle_s=60, max_age_s=600).lookup(token, {"anna": "fp"},
                                                                   now=1) is not None
    reopened.close()


# --------------------------------------------------------- budgets, logging

def test_token_bucket() -> None:
    b = TokenBucket(rate=10, burst=5)
    assert sum(b.take(0.0) for _ in range(20)) == 5
    assert sum(b.take(1.0) for _ in range(20)) == 5  # refilled to the burst, not beyond
    assert b.take(1.1)


def test_repeated_log_lines_are_throttled() -> None:
    f = RepeatFilter(every_s=60)
    rec = logging.LogRecord("asyncio", logging.ERROR, "", 0, "Too many open files", None, None)
    assert sum(f.filter(rec) for _ in range(1000)) == 1
    th = Throttle(every_s=10, max_keys=3)
    assert th.allow("a", 0) == 0 and th.allow("a", 1) is None and th.allow("a", 11) == 1
    for k in "bcdefg":
        th.allow(k, 0)
    assert len(th._last) <= 4


# ------------------------------------------------------------ HTTP helpers

@pytest.mark.parametrize(("headers", "refused"), [
    ({}, False),
    ({"host": "g:8080", "origin": "http://g:8080"}, False),
    ({"host": "g:8080", "origin": "http://g:8080", "sec-fetch-site": "same-origin"}, False),
    ({"host": "g:8080", "origin": "http://evil"}, True),
    ({"host": "g:8080", "origin": "null"}, True),
    ({"host": "g:8080", "sec-fetch-site": "cross-site"}, True),
    ({"host": "g:8080", "sec-fetch-site": "same-site"}, True),
    ({"host": "g:8080", "sec-fetch-site": "none"}, True),
])
def test_cross_site_requests(headers: dict[str, str], refused: bool) -> None:
    assert (cross_site_reason(headers) is not None) is refused


def test_browsers_are_recognised() -> None:
    assert not looks_like_browser({"accept": "*/*", "user-agent": "curl/8"})
    assert looks_like_browser({"sec-fetch-mode": "cors"})
    assert looks_like_browser({"accept": "text/html,application/xhtml+xml"})


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "\n=1"])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(value: str) -> None:
    assert csv_safe(value) == "'" + value


def test_sse_encoding_never_writes_nan() -> None:
    assert dumps({"a": float("nan"), "b": [float("inf")], "c": 1.5}) == \
        '{"a":null,"b":[null],"c":1.5}'


# ------------------------------------------------------------- wire bounds

@pytest.mark.parametrize("field", [{"uptime_s": float("inf")}, {"uptime_s": float("nan")},
                                   {"heartbeat_s": 1e300}, {"seq": 2**63},
                                   {"outbox_pending": 10**20}])
def test_state_refuses_non_finite_and_unbounded_numbers(field: dict[str, Any]) -> None:
    base: dict[str, Any] = {"office": "o-1", "ts": utcnow(), "seq": 0, "door": "locked",
                            "contact": "closed", "alarm": "none", "version": "1",
                            "uptime_s": 1, "outbox_pending": 0}
    with pytest.raises(ValidationError):
        State(**(base | field))


@pytest.mark.parametrize("field", [{"seconds": float("nan")}, {"presses": 10**9},
                                   {"seq": 2**60}, {"void_to": 2**60}])
def test_event_refuses_non_finite_and_unbounded_numbers(field: dict[str, Any]) -> None:
    base: dict[str, Any] = {"id": uuid.uuid4(), "office": "o-1", "seq": 1, "ts": utcnow(),
                            "type": "door_released"}
    with pytest.raises(ValidationError):
        Event(**(base | field))


# ---------------------------------------------------------- ingest controls

def _ingest(roster: list[dict[str, Any]], **limits: Any) -> Ingest:
    store = Store(":memory:")
    hub = Hub()
    return Ingest(T, store, LiveModel(roster), hub, Commander(None, T, lambda t, p: True, 1),
                  limits=IngestLimits(**limits))


ROSTER = [{"id": "o-01", "site": "Jobcenter", "building": "Haus A", "floor": "EG",
           "room": "101", "label": "Beratung 1"}]


def _state(office: str, **fields: Any) -> bytes:
    return State(office=office, ts=utcnow(), seq=0, door="locked", contact="closed",
                 alarm="none", version="1", uptime_s=1, outbox_pending=0,
                 **fields).to_bytes()


def test_the_roster_location_wins_and_a_mismatch_is_flagged() -> None:
    ingest = _ingest(ROSTER)
    claimed = Location(site="Rathaus", building="X", floor="9", room="1", label="fake")
    ingest.handle(T.state("o-01"), _state("o-01", location=claimed), 0.0, 0.0, [])
    assert ingest.model.offices["o-01"].location["site"] == "Jobcenter"
    assert ingest.security.counts["location_mismatch"] == 1
    actions = Actions(ingest.store, ingest.hub, ingest.commander, ingest.model)
    # site lockdown selects by the roster: the office's claim does not move it to "Rathaus"
    assert asyncio.run(actions.site_lockdown("Rathaus", True, "anna")).kind == "unknown"
    assert asyncio.run(actions.site_lockdown("Jobcenter", True, "anna")).kind == "not_sent"


def test_unknown_office_ids_do_not_create_unbounded_state() -> None:
    ingest = _ingest(ROSTER, max_unknown_offices=3)
    for i in range(50):
        ingest.handle(T.state(f"x-{i}"), _state(f"x-{i}"), 0.0, 0.0, [])
    for i in range(50):
        ingest.handle(T.availability(f"y-{i}"), b"online", 0.0, 0.0, [])
    ingest.handle(T.state("o-01"), _state("o-01"), 0.0, 0.0, [])  # the roster is never cut
    assert sorted(ingest.model.offices) == ["o-01", "x-0", "x-1", "x-2"]
    assert len(ingest._buckets) <= 8
    assert ingest.security.counts["unknown_office"] == 97


def test_the_flood_budget_is_per_office_and_alarms_have_their_own() -> None:
    ingest = _ingest([*ROSTER, {"id": "o-02"}], office_rate=1, office_burst=10,
                     alarm_rate=1, alarm_burst=5)
    for _ in range(100):
        ingest.handle(T.state("o-01"), b"{}", 0.0, 0.0, [])
    assert ingest.rate_limited == 90
    panic = Event(id=uuid.uuid4(), office="o-01", seq=1, ts=utcnow(), type="panic",
                  alarm_id=uuid.uuid4()).to_bytes()
    assert ingest.handle(T.event("o-01"), panic, 0.0, 0.0, [])  # its own bucket: stored
    assert ingest.handle(T.state("o-02"), _state("o-02"), 0.0, 0.0, [])
    assert ingest.rate_limited == 90  # o-02 is not touched by o-01's flood


# --------------------------------------------------------------- file modes

def test_stores_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = Store(str(tmp_path / "g" / "guard.sqlite3"))
        store.db.execute("CREATE TABLE t(x)")
        store.commit()
        outbox = Outbox(str(tmp_path / "o" / "office.sqlite3"), max_events=100,
                        keep_delivered_s=60)
        outbox.open()
    finally:
        os.umask(old)
    for path in [tmp_path / "g" / "guard.sqlite3", tmp_path / "g" / "guard.sqlite3-wal",
                 tmp_path / "o" / "office.sqlite3"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for directory in (tmp_path / "g", tmp_path / "o"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    store.close()
    outbox.close()
