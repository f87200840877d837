"""Issue 7 §3 (HTTP): hypothesis-generated requests against the guard station's API.

The routes come from the station's own OpenAPI document (/api/openapi.json)
plus the pages, the login form and made-up paths. Every part of a request is
drawn: method, path parameters, query, credentials (none, valid guard, valid
admin, wrong, garbage header), cookies, CSRF header, content type and body.
No answer may be a server error (503/504 are the documented answers of a
command nobody confirms), the process must stay up with bounded memory, and
nothing may reach the store: there is no office, so no event or alarm.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.broker import Mosquitto
from tests.chaos.payloads import json_values
from tests.chaos.support import record, rss_kib, size
from tests.guard_proc import USERS, GuardProc

OFFICE = "fz-01"
COMMAND_ROUTE_ANSWERS = {503, 504}
EXTRA_PATHS = ["/", "/events", "/login", "/logout", "/healthz", "/static/app.css",
               "/demo/sim/outputs", "/demo/sim/{office}/{name}", "/api", "/api/",
               "/api/alarms/{alarm_id}", "/api/offices/{office_id}", "/../etc/passwd"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
pytestmark = pytest.mark.timeout(180 + size("OFFICESEC_CHAOS_HTTP_REQUESTS") // 5)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def segment() -> st.SearchStrategy[str]:
    """A path parameter: sometimes valid, mostly not."""
    return st.one_of(st.sampled_from([OFFICE, "eg-101", "", "-", "a" * 33, "%00", ".."]),
                     st.uuids().map(str), st.text(max_size=40))


@st.composite
def requests(draw: st.DrawFn, paths: list[tuple[str, str]]) -> dict[str, Any]:
    """One request; `paths` are (method, template) pairs from the OpenAPI document."""
    if draw(st.integers(0, 9)) < 7:
        method, template = draw(st.sampled_from(paths))
        if draw(st.integers(0, 9)) == 0:
            method = draw(st.sampled_from(METHODS))
    else:
        method, template = draw(st.sampled_from(METHODS)), draw(st.sampled_from(EXTRA_PATHS))
    path = template
    while "{" in path:
        name = path[path.index("{"):path.index("}") + 1]
        path = path.replace(name, quote(draw(segment()), safe=""), 1)
    keys = st.sampled_from(["office", "since", "limit", "type", "open", "x", "office[]", ""])
    values = st.one_of(st.sampled_from([OFFICE, "true", "0", "-1", "10001", "2026-11-25T09:30",
                                        "panic", "1e999"]), st.text(max_size=60))
    query = draw(st.lists(st.tuples(keys, values), max_size=4))
    auth = draw(st.sampled_from(["none", "guard", "admin", "wrong", "garbage"]))
    headers: dict[str, str] = {}
    if auth == "guard":
        headers["Authorization"] = basic("alice", USERS["alice"][0])
    elif auth == "admin":
        headers["Authorization"] = basic("root", USERS["root"][0])
    elif auth == "wrong":
        headers["Authorization"] = basic(draw(st.sampled_from(["alice", "root", "x"])),
                                         draw(st.text(max_size=20)))
    elif auth == "garbage":
        headers["Authorization"] = draw(st.text(st.characters(min_codepoint=32,
                                                              max_codepoint=126), max_size=80))
    if draw(st.booleans()):
        headers["X-CSRF-Token"] = draw(st.text(st.characters(min_codepoint=33,
                                                             max_codepoint=126), max_size=40))
    if draw(st.booleans()):
        headers["Cookie"] = "session=" + draw(st.text(st.characters(min_codepoint=33,
                                                                    max_codepoint=126,
                                                                    exclude_characters=";,"),
                                                      max_size=80))
    body_kind = draw(st.sampled_from(["none", "json", "bytes", "form", "nested"]))
    body: bytes | None = None
    if body_kind == "json":
        value = draw(st.one_of(json_values(), st.fixed_dictionaries(
            {"site": st.one_of(st.just("Jobcenter Test"), st.text(max_size=30)),
             "on": st.one_of(st.booleans(), json_values())})))
        body = json.dumps(value).encode()
        headers["Content-Type"] = "application/json"
    elif body_kind == "bytes":
        body = draw(st.binary(max_size=2000))
        headers["Content-Type"] = draw(st.sampled_from(["application/json", "text/plain",
                                                        "multipart/form-data; boundary=x",
                                                        "application/x-www-form-urlencoded"]))
    elif body_kind == "nested":
        depth = draw(st.sampled_from([100, 1000, 5000, 30000]))
        body = b"[" * depth + b"]" * depth if draw(st.booleans()) else (
            b'{"site":' * depth + b"1" + b"}" * depth)
        headers["Content-Type"] = "application/json"
    elif body_kind == "form":
        body = "&".join(f"{quote(k)}={quote(v)}" for k, v in draw(st.lists(st.tuples(
            st.sampled_from(["username", "password", "csrf", "next"]), st.text(max_size=30)),
            max_size=4))).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    return {"method": method, "path": path, "template": template, "query": query,
            "headers": headers, "body": body}


def test_hostile_http_requests(tmp_path: Path, broker: Mosquitto) -> None:
    count = size("OFFICESEC_CHAOS_HTTP_REQUESTS")
    guard = GuardProc(tmp_path / "guard", broker.port, roster=[OFFICE],
                      security={"command_timeout_s": 0.5, "lockout_attempts": 100,
                                "lockout_s": 1},
                      selftest={"answer_within_s": 0.5})
    guard.start()
    statuses: Counter[int] = Counter()
    problems: list[str] = []
    http = httpx.Client(base_url=guard.url, timeout=10)
    try:
        spec = guard.get("/api/openapi.json")
        paths = [(m.upper(), p) for p, ops in spec["paths"].items() for m in ops
                 if p != "/api/stream"]
        assert len(paths) >= 10
        assert guard.proc is not None
        warm = http.get("/healthz")
        assert warm.status_code == 200
        rss_before = rss_kib(guard.proc.pid)
        began = time.monotonic()

        @settings(max_examples=count, database=None, derandomize=True, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(requests(paths))
        def one(req: dict[str, Any]) -> None:
            try:
                resp = http.request(req["method"], req["path"], params=req["query"],
                                    headers=req["headers"], content=req["body"])
            except httpx.TimeoutException:
                problems.append(f"timeout: {req['method']} {req['path']}")
                return
            except httpx.LocalProtocolError:
                statuses[0] += 1  # not even sendable (e.g. a blank header value): client-side
                return
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # the server answered and closed without reading a big body it did not want
                statuses[-1] += 1
                assert guard.proc is not None and guard.proc.poll() is None
                return
            statuses[resp.status_code] += 1
            commandish = req["method"] == "POST" and req["template"].count("/") >= 3
            if resp.status_code >= 500 and not (commandish
                                                 and resp.status_code in COMMAND_ROUTE_ANSWERS):
                problems.append(f"{resp.status_code}: {req['method']} {req['path']}")

        # always tried, whatever hypothesis draws: every route, admin credentials (so the
        # body is read), a body nested deeper than any JSON parser's recursion limit
        admin = {"Authorization": basic("root", USERS["root"][0]),
                 "Content-Type": "application/json"}
        for method, template in [p for p in paths if p[0] == "POST"]:
            path = template.replace("{alarm_id}", "00000000-0000-4000-8000-000000000000")
            path = path.replace("{office_id}", OFFICE)
            for body in (b"[" * 30000 + b"]" * 30000, b'{"site":' * 30000 + b"1" + b"}" * 30000):
                resp = http.request(method, path, headers=admin, content=body)
                statuses[resp.status_code] += 1
                if resp.status_code >= 500 and resp.status_code not in COMMAND_ROUTE_ANSWERS:
                    problems.append(f"{resp.status_code}: {method} {path} nested body")
        one()
        # stream: refused without credentials, whatever else is sent
        for _ in range(20):
            assert http.get("/api/stream", headers={"Cookie": "session=x"}).status_code == 401
        fuzz_s = time.monotonic() - began
        assert guard.proc.poll() is None, guard.log_text()[-3000:]
        assert not problems, problems[:20]
        assert "Traceback" not in guard.log_text()
        rss_after = rss_kib(guard.proc.pid)
        assert rss_after - rss_before < 64 * 1024, (rss_before, rss_after)
        assert guard.get("/healthz")["status"] == "ok"
        db = sqlite3.connect(f"file:{guard.workdir / 'guard.sqlite3'}?mode=ro", uri=True)
        events = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        alarms = db.execute("SELECT COUNT(*) FROM alarms").fetchone()[0]
        db.close()
        assert (events, alarms) == (0, 0)
        unsendable = statuses.pop(0, 0)
        closed = statuses.pop(-1, 0)
        record("hostile_http", requests=sum(statuses.values()) + closed, unsendable=unsendable,
               closed_by_server=closed,
               statuses={str(k): v for k, v in sorted(statuses.items())},
               server_errors=sum(v for k, v in statuses.items() if k >= 500),
               routes=len(paths), rss_before_kib=rss_before, rss_after_kib=rss_after,
               fuzz_s=round(fuzz_s, 1))
    finally:
        http.close()
        guard.close()
