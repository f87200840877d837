"""#17.2, .3, .6, .9, .10, .11: the console and the API cannot be ridden, guessed or kept.

All against the provisioned fleet's guard station (see fleet.py).
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import httpx
import pytest

from tests.security.fleet import LOCKOUT_ATTEMPTS, PASSWORDS, Stack

pytestmark = pytest.mark.slow


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _browser(stack: Stack, address: str = "127.0.0.1") -> httpx.Client:
    """A client from its own loopback address (the throttle keys on name and address)."""
    return httpx.Client(base_url=stack.url, timeout=15, follow_redirects=False,
                        transport=httpx.HTTPTransport(local_address=address))


def _login(browser: httpx.Client, user: str) -> httpx.Response:
    page = browser.get("/login")
    return browser.post("/login", data={"username": user, "password": PASSWORDS[user][0],
                                        "csrf": _csrf(page.text), "next": "/"})


def _verified(stack: Stack) -> int:
    return int(stack.get("/healthz")["logins_verified"])


def test_parallel_burst_of_wrong_passwords_verifies_at_most_the_limit(stack: Stack) -> None:
    with _browser(stack, "127.0.0.7") as guard_pc:  # the real guard's workstation
        assert _login(guard_pc, "anna").status_code == 303
    before = _verified(stack)

    async def burst() -> list[int]:
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.9", limits=httpx.Limits(
            max_connections=60))
        async with httpx.AsyncClient(base_url=stack.url, timeout=30,
                                     transport=transport) as http:
            answers = await asyncio.gather(*[http.get("/api/me", auth=("anna", f"guess-{i}"))
                                             for i in range(60)])
        return [r.status_code for r in answers]

    codes = asyncio.run(burst())
    verified = _verified(stack) - before
    assert verified <= LOCKOUT_ATTEMPTS, f"{verified} passwords verified for a burst of 60"
    assert codes.count(401) == verified and codes.count(429) == 60 - verified, codes
    # the attacker is locked out even with the right password ...
    with _browser(stack, "127.0.0.9") as attacker:
        res = attacker.get("/api/me", auth=("anna", PASSWORDS["anna"][0]))
    assert res.status_code == 429
    # ... but the real guard is not: by name alone nobody can lock a guard out
    with _browser(stack, "127.0.0.7") as guard_pc:
        assert _login(guard_pc, "anna").status_code == 303


def test_cross_site_post_with_basic_credentials_is_refused(stack: Stack) -> None:
    admin = ("root", PASSWORDS["root"][0])
    with httpx.Client(base_url=stack.url, timeout=15, auth=admin) as http:
        for headers in ({"Origin": "http://evil.example", "Content-Type": "text/plain"},
                        {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
                        {"Sec-Fetch-Site": "same-site"},
                        {"Origin": "null"}):
            res = http.post("/api/offices/o-02/release", headers=headers, content=b"x")
            assert res.status_code == 403, (headers, res.text)
            assert "fremden Seite" in res.json()["error"]  # the station speaks German
        # the same request from a script (no Origin, no Sec-Fetch-*) reaches the station
        res = http.post("/api/offices/nope-9/test")
        assert res.status_code == 404, res.text
        # and from the console itself (same origin)
        res = http.post("/api/offices/nope-9/test",
                        headers={"Origin": stack.url, "Sec-Fetch-Site": "same-origin"})
        assert res.status_code == 404, res.text
    audit = [a for a in stack.get_admin("/api/audit") if a["action"] == "release"]
    assert not audit, audit


def test_no_browser_is_ever_sent_a_basic_challenge(stack: Stack) -> None:
    script = httpx.get(stack.url + "/api/offices")
    assert script.status_code == 401
    assert script.headers.get("www-authenticate", "").startswith("Basic")
    for headers in ({"Sec-Fetch-Mode": "cors"}, {"Accept": "text/html,*/*"},
                    {"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}):
        res = httpx.get(stack.url + "/api/offices", headers=headers)
        assert res.status_code == 401
        assert "www-authenticate" not in res.headers, headers
        res = httpx.get(stack.url + "/api/offices", headers=headers, auth=("anna", "wrong-pw"))
        assert "www-authenticate" not in res.headers, headers


def test_logout_kills_the_session_everywhere(stack: Stack) -> None:
    with _browser(stack, "127.0.0.11") as browser:
        assert _login(browser, "eve").status_code == 303
        cookie = browser.cookies["officesec_session"]
        me = browser.get("/api/me").json()
        assert me["name"] == "eve"
        stolen = httpx.Client(base_url=stack.url, cookies={"officesec_session": cookie})
        assert stolen.get("/api/me").status_code == 200
        browser.post("/logout", data={"csrf": me["csrf"]})
        assert browser.get("/api/me").status_code == 401
        # a copy of the cookie is worthless now: the server forgot the session
        assert stolen.get("/api/me").status_code == 401
        assert stolen.get("/").status_code == 303


def test_viewer_reads_but_cannot_act(stack: Stack) -> None:
    with _browser(stack, "127.0.0.12") as browser:
        assert _login(browser, "eve").status_code == 303
        me = browser.get("/api/me").json()
        assert me["role"] == "viewer"
        assert browser.get("/api/offices").status_code == 200
        res = browser.post("/api/offices/o-02/test", headers={"X-CSRF-Token": me["csrf"]})
        assert res.status_code == 403 and "viewer" in res.json()["error"]
        res = browser.post("/api/alarms/00000000-0000-4000-8000-000000000000/ack",
                           headers={"X-CSRF-Token": me["csrf"]})
        assert res.status_code == 403


def test_api_token_authenticates_and_a_wrong_one_does_not(stack: Stack) -> None:
    assert stack.get("/api/me")["name"] == "anna"
    res = httpx.get(stack.url + "/api/me", headers={"Authorization": "Bearer osk_wrong"})
    assert res.status_code == 401


def test_sse_streams_per_session_are_capped(stack: Stack) -> None:
    with _browser(stack, "127.0.0.13") as browser:
        assert _login(browser, "anna").status_code == 303
        cookies = {"officesec_session": browser.cookies["officesec_session"]}
        opened: list[Any] = []
        stop = threading.Event()
        ready = threading.Barrier(3)

        def hold() -> None:
            with httpx.Client(base_url=stack.url, cookies=cookies, timeout=30) as c, \
                    c.stream("GET", "/api/stream") as res:
                opened.append(res.status_code)
                lines = res.iter_lines()  # kept: a dropped iterator closes the stream
                next(lines)  # the snapshot
                ready.wait(10)
                stop.wait(10)

        threads = [threading.Thread(target=hold) for _ in range(2)]
        for t in threads:
            t.start()
        ready.wait(10)
        try:
            with httpx.Client(base_url=stack.url, cookies=cookies, timeout=5) as c, \
                    c.stream("GET", "/api/stream") as third:
                assert third.status_code == 429, third.headers
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        assert opened == [200, 200]


def test_healthz_without_login_says_only_up_or_down(stack: Stack) -> None:
    anonymous = httpx.get(stack.url + "/healthz").json()
    assert anonymous == {"status": "ok"}
    detailed = stack.get("/healthz")
    assert detailed["broker"]["connected"] and "ingest" in detailed
