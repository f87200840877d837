"""The guard station's web side: login, sessions, CSRF, lock-out, Basic auth, headers, 4xx."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.broker import Mosquitto
from tests.guard_proc import USERS, GuardProc, wait_for
from tests.office_sim import OfficeSim


@pytest.fixture(scope="module")
def guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardProc]:
    mq = Mosquitto(tmp_path_factory.mktemp("mq")).start()
    g = GuardProc(tmp_path_factory.mktemp("guard"), mq.port, roster=["eg-101"],
                  security={"lockout_attempts": 3, "lockout_s": 60}).start()
    g.broker = mq  # type: ignore[attr-defined]
    try:
        yield g
    finally:
        g.close()
        mq.kill()


def _browser(guard: GuardProc) -> httpx.Client:
    return httpx.Client(base_url=guard.url, timeout=15, follow_redirects=False)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _login(browser: httpx.Client, user: str = "alice") -> None:
    page = browser.get("/login")
    resp = browser.post("/login", data={"username": user, "password": USERS[user][0],
                                        "csrf": _csrf(page.text), "next": "/"})
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == "/"


def test_pages_need_login_and_headers_are_set(guard: GuardProc) -> None:
    with _browser(guard) as browser:
        resp = browser.get("/")
        assert resp.status_code == 303
        assert resp.headers["location"].startswith("/login")
        page = browser.get("/login")
        assert page.status_code == 200
        headers = page.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"]
        assert browser.get("/api/offices").status_code == 401


def test_login_session_cookie_and_csrf(guard: GuardProc) -> None:
    with _browser(guard) as browser:
        page = browser.get("/login")
        resp = browser.post("/login", data={"username": "alice", "password": "alice-pw",
                                            "csrf": "forged"})
        assert resp.status_code == 403
        resp = browser.post("/login", data={"username": "alice", "password": "alice-pw",
                                            "csrf": _csrf(page.text), "next": "https://evil/"})
        assert resp.status_code == 303
        assert resp.headers["location"] == "/"
        cookie = next(h for h in resp.headers.get_list("set-cookie")
                      if h.startswith("officesec_session="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert browser.get("/").status_code == 200
        me = browser.get("/api/me").json()
        assert me["name"] == "alice" and me["role"] == "guard"
        # a session POST without the token is refused, with it accepted (404: unknown alarm)
        url = "/api/alarms/00000000-0000-4000-8000-000000000000/ack"
        resp = browser.post(url)
        assert resp.status_code == 403
        assert "CSRF" in resp.json()["error"]
        assert browser.post(url, headers={"X-CSRF-Token": "nope"}).status_code == 403
        resp = browser.post(url, headers={"X-CSRF-Token": me["csrf"]})
        assert resp.status_code == 404
        assert "error" in resp.json()
        # logout needs the token too, then the session is gone
        browser.post("/logout", data={"csrf": me["csrf"]})
        assert browser.get("/api/me").status_code == 401


def test_lockout_after_repeated_failures(guard: GuardProc) -> None:
    with _browser(guard) as browser:
        token = _csrf(browser.get("/login").text)
        for _ in range(3):
            resp = browser.post("/login", data={"username": "root", "password": "wrong",
                                                "csrf": token})
            assert resp.status_code == 401
            assert "Benutzername oder Passwort falsch." in resp.text  # German by default
        resp = browser.post("/login", data={"username": "root", "password": "root-pw",
                                            "csrf": token})
        assert resp.status_code == 429  # even the right password, while locked
        assert re.search(r"Zu viele Fehlversuche\. Bitte in \d+ Sekunden? noch einmal", resp.text)
        assert guard.admin.get("/api/offices").status_code == 429
    audit = guard.client.get("/api/audit")
    assert audit.status_code == 403  # alice is not admin


def test_basic_auth_and_json_errors(guard: GuardProc) -> None:
    assert httpx.get(guard.url + "/healthz").status_code == 200
    bad = httpx.get(guard.url + "/api/offices", auth=("alice", "nope"))
    assert bad.status_code == 401
    assert bad.json()["error"]
    offices = guard.get("/api/offices")
    assert [o["id"] for o in offices] == ["eg-101"] or "eg-101" in [o["id"] for o in offices]
    for path, params in [("/api/events", {"limit": "x"}), ("/api/events", {"limit": "0"}),
                         ("/api/events", {"since": "yesterday"}),
                         ("/api/events", {"type": "boom"}), ("/api/events", {"office": "A B"}),
                         ("/api/events", {"nope": "1"}), ("/api/alarms", {"open": "maybe"})]:
        resp = guard.client.get(path, params=params)
        assert resp.status_code == 400, (path, params, resp.text)
        assert resp.json()["error"]
    resp = guard.client.post("/api/alarms/not-a-uuid/ack")
    assert resp.status_code == 400
    assert "alarm_id" in resp.json()["error"]
    assert guard.client.get("/api/nothing").status_code == 404
    assert guard.client.get("/api/nothing").json()["error"]
    assert guard.client.put("/api/offices").status_code == 405
    spec = guard.get("/api/openapi.json")
    assert "/api/alarms/{alarm_id}/ack" in spec["paths"]


def test_events_api_filters_and_csv(guard: GuardProc) -> None:
    sim = OfficeSim(guard.broker.port, "eg-101")  # type: ignore[attr-defined]
    try:
        sim.event("controller_started")
        sim.event("door_opened")
        sim.event("command_rejected", reason="=cmd|' /C calc'!A0")
        wait_for(lambda: len(guard.get("/api/events", office="eg-101")) >= 3, what="events")
        opened = guard.get("/api/events", type="door_opened")
        assert [e["type"] for e in opened] == ["door_opened"]
        assert len(guard.get("/api/events", limit=1)) == 1
        assert guard.get("/api/events", since="2999-01-01T00:00:00Z") == []
        csv_text = guard.client.get("/api/events.csv", params={"office": "eg-101"}).text
        lines = csv_text.strip().splitlines()
        assert lines[0].startswith("ts,office,seq,type")
        assert len(lines) >= 4
        assert "'=cmd" in csv_text  # formula neutralised
    finally:
        sim.close()
