"""#17.4: non-finite or out-of-range numbers from an office never reach the API or SSE.

A compromised o-03 publishes states whose numbers are NaN, Infinity or too
large, both as a changed state (full validation) and as a heartbeat that
differs from the last good state only in its clock fields (the fast path).
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from controller.protocol.messages import State, utcnow
from tests.security.fleet import TOKEN, Stack, strict_json
from tests.test_deploy_support import T, wait_for

pytestmark = pytest.mark.slow
BAD = ("NaN", "Infinity", "-Infinity", "1e400", "1e300")


def _state(**fields: object) -> bytes:
    base: dict[str, object] = {"office": "o-03", "ts": utcnow(), "seq": 0, "door": "locked",
                               "contact": "closed", "alarm": "none", "version": "t",
                               "uptime_s": 12.5, "outbox_pending": 0, "heartbeat_s": 0.5}
    return State(**(base | fields)).to_bytes()  # type: ignore[arg-type]


def test_non_finite_numbers_never_reach_the_api_or_sse(stack: Stack) -> None:
    office = stack.office("o-03")
    lines: list[str] = []
    stop = threading.Event()

    def listen() -> None:
        with httpx.Client(base_url=stack.url, timeout=30,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as http, \
                http.stream("GET", "/api/stream") as res:
            for line in res.iter_lines():
                lines.append(line)
                if stop.is_set():
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    good = _state()
    assert office.publish(T.state("o-03"), good, retain=True) < 0x80
    wait_for(lambda: any(o["id"] == "o-03" and o["state"] for o in stack.get("/api/offices")),
             10, "o-03's good state")
    dropped = stack.get("/healthz")["ingest"]["dropped"]
    sent = 0
    for bad in BAD:
        # the heartbeat fast path: only the clock field differs from the last good state
        fast = good.replace(b'"uptime_s":12.5', b'"uptime_s":' + bad.encode())
        assert fast != good
        # a changed state: full validation
        full = _state(door="released").replace(b'"heartbeat_s":0.5',
                                               b'"heartbeat_s":' + bad.encode())
        event = (b'{"schema":1,"id":"7d0f1d7e-3c52-4b8e-9d2a-0a1b2c3d4e5f","office":"o-03",'
                 b'"seq":5,"ts":"2026-01-01T00:00:00.000Z","type":"door_released",'
                 b'"source":"button","seconds":' + bad.encode() + b'}')
        for topic, payload in ((T.state("o-03"), fast), (T.state("o-03"), full),
                               (T.event("o-03"), event)):
            assert office.publish(topic, payload, retain=topic.endswith("state")) < 0x80
            sent += 1
    # 1e300 is finite: only out of bounds for uptime/heartbeat/seconds, so dropped as well
    wait_for(lambda: stack.get("/healthz")["ingest"]["dropped"] >= dropped + sent, 10,
             "every bad message dropped")
    with stack.api() as http:
        res = http.get("/api/offices")
    assert res.status_code == 200, res.text
    o3 = next(o for o in strict_json(res.text) if o["id"] == "o-03")
    assert o3["heartbeat_s"] == 0.5 and o3["state"]["uptime_s"] == 12.5, o3
    assert o3["door"] == "locked"
    # a freshly loaded console's snapshot is valid JSON
    with httpx.Client(base_url=stack.url, timeout=10,
                      headers={"Authorization": f"Bearer {TOKEN}"}) as http, \
            http.stream("GET", "/api/stream") as res:
        first = next(line for line in res.iter_lines() if line.startswith("data:"))
    snapshot = strict_json(first.removeprefix("data:").strip())
    assert snapshot["kind"] == "snapshot"
    assert any(o["id"] == "o-03" for o in snapshot["data"]["offices"])
    time.sleep(0.2)
    stop.set()
    office.publish(T.state("o-03"), _state(), retain=True)  # wakes the listener to end
    listener.join(5)
    for line in lines:
        if line.startswith("data:"):
            data = line.removeprefix("data:").strip()
            strict_json(data)
            assert "NaN" not in data and "Infinity" not in data, data[:300]
    assert json.loads(good)["uptime_s"] == 12.5
