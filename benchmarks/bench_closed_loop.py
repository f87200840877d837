"""Closed-loop benchmark: a guard's click -> the office's discreet ack LED.

A real Mosquitto on loopback, a real `officesec guard` and a real `officesec
run` (mock pins). Each cycle: panic press on the sim topic, wait until the
guard has the alarm, then the click: `POST /api/alarms/ID/ack`; the clock stops
when a subscriber on `P/office/ID/sim/output` sees `ack_led: true` (click ->
LED), and when the HTTP 200 arrives (click -> 200: the guard answers only
after the office confirmed with an event carrying the command's nonce). Then
resolve, and the LED goes off. Half the cycles click with HTTP Basic (the
guard verifies the argon2 hash, at argon2-cffi's default cost as production
hashes have, then trusts the same credentials for 60 s), half with a
logged-in session (the dashboard's way: cookie + CSRF header). The bare paho floors (1 and 2 broker
hops, QoS 1) are sampled in the same run, interleaved in rounds.

    .venv/bin/python -m benchmarks.bench_closed_loop               # 200 cycles, writes results
    .venv/bin/python -m benchmarks.bench_closed_loop --cycles 20 --no-write
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/bench_closed_loop.py` works too
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from argon2 import PasswordHasher

from benchmarks.common import (
    ROOT,
    TABLE_HEAD,
    Receiver,
    Stats,
    connect,
    floor_one_hop,
    floor_two_hops,
    machine,
)
from tests.broker import Mosquitto
from tests.guard_proc import USERS, GuardProc, password_hash
from tests.office_proc import OfficeProc

OFFICE = "loop-1"
PREFIX = "officesec"
RESULTS = ROOT / "benchmarks" / "results" / "closed_loop.md"
RELEASE_AFTER_S = 0.06  # > the daemon's 50 ms debounce
TIMEOUT_S = 10.0


def production_hashes(guard: GuardProc) -> None:
    """Give alice an argon2 hash with the library's default cost (as `officesec` makes them)."""
    text = guard.config.read_text()
    cheap = password_hash(USERS["alice"][0])
    guard.config.write_text(text.replace(cheap, PasswordHasher().hash(USERS["alice"][0])))


class Loop:
    """Drives one office through press -> ack -> resolve and times the ack."""

    def __init__(self, broker: Mosquitto, guard: GuardProc) -> None:
        self.guard = guard
        self.press_topic = f"{PREFIX}/office/{OFFICE}/sim/input/panic"
        self.leds = Receiver(broker.host, broker.port, f"{PREFIX}/office/{OFFICE}/sim/output",
                             retained=False)
        self.tx = connect(broker.host, broker.port)
        self.basic = httpx.Client(base_url=guard.url, auth=("alice", USERS["alice"][0]),
                                  timeout=TIMEOUT_S)
        self.session = httpx.Client(base_url=guard.url, timeout=TIMEOUT_S)
        page = self.session.get("/login")
        match = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert match, "no CSRF field on the login page"
        resp = self.session.post("/login", data={"username": "alice",
                                                 "password": USERS["alice"][0],
                                                 "csrf": match.group(1), "next": "/"})
        assert resp.status_code == 303, resp.text
        self.csrf = self.session.get("/api/me").json()["csrf"]
        self.seen = 0

    def warm(self) -> None:
        """Open fresh keep-alive connections before a round of clicks.

        uvicorn closes a connection after 5 idle seconds (the floors run in
        between); a request racing that close gets a reset, and a click on a
        new connection would time the TCP handshake too.
        """
        for client in (self.basic, self.session):
            for attempt in range(2):
                try:
                    client.get("/api/me").raise_for_status()
                    break
                except httpx.TransportError:
                    if attempt:
                        raise

    def _led(self, on: bool) -> float:
        """Wait for the next sim output with ack_led == on; its arrival time."""
        needle = b'"ack_led":true' if on else b'"ack_led":false'
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            self.seen += 1
            arrived, _t, payload = self.leds.wait_count(self.seen,
                                                        timeout=deadline - time.monotonic())
            if needle in payload:
                return arrived

    def _open_alarm(self) -> str:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            alarms = self.basic_get("/api/alarms?open=true")
            if alarms:
                return str(alarms[0]["alarm_id"])
            time.sleep(0.005)
        raise TimeoutError("the guard never showed the alarm")

    def basic_get(self, path: str) -> list[dict[str, str]]:
        # reads go through the session: no argon2 cost outside the measured click
        resp = self.session.get(path)
        resp.raise_for_status()
        return list(resp.json())

    def cycle(self, use_session: bool) -> tuple[float, float]:
        """One alarm: (click -> LED on, click -> HTTP 200) in seconds."""
        self.tx.publish(self.press_topic, b"press", qos=1)
        time.sleep(RELEASE_AFTER_S)
        self.tx.publish(self.press_topic, b"release", qos=1)
        alarm_id = self._open_alarm()
        client = self.session if use_session else self.basic
        headers = {"X-CSRF-Token": self.csrf} if use_session else {}
        start = time.perf_counter()
        resp = client.post(f"/api/alarms/{alarm_id}/ack", headers=headers)
        answered = time.perf_counter()
        if resp.status_code != 200:
            raise AssertionError(f"ack: {resp.status_code} {resp.text}")
        lit = self._led(True)
        resp = client.post(f"/api/alarms/{alarm_id}/resolve", headers=headers,
                           json={"outcome": "handled"})
        if resp.status_code != 200:
            raise AssertionError(f"resolve: {resp.status_code} {resp.text}")
        self._led(False)
        return lit - start, answered - start

    def close(self) -> None:
        self.tx.disconnect()
        self.tx.loop_stop()
        self.leds.close()
        self.basic.close()
        self.session.close()


def run(cycles: int, rounds: int, gap_s: float) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="officesec-bench-loop-"))
    broker = Mosquitto(workdir / "mq").start()
    guard = GuardProc(workdir / "guard", broker.port, roster=[OFFICE],
                      security={"command_timeout_s": 5}, log={"level": "warning", "json": True})
    production_hashes(guard)
    office = OfficeProc(workdir / "office", broker.port, OFFICE,
                        security={"guard_public_key": str(guard.public_key)},
                        log={"level": "warning", "json": True})
    samples: dict[str, list[float]] = {k: [] for k in (
        "floor1", "floor2", "led_basic", "http_basic", "led_session", "http_session")}
    try:
        guard.start()
        office.start()
        deadline = time.monotonic() + 30
        while not guard.office(OFFICE)["online"]:
            if time.monotonic() > deadline:
                raise RuntimeError("office never came online at the guard")
            time.sleep(0.05)
        loop = Loop(broker, guard)
        per_round = max(1, cycles // rounds)
        try:
            for r in range(rounds):
                samples["floor1"] += floor_one_hop(broker.host, broker.port, per_round, gap_s)
                samples["floor2"] += floor_two_hops(broker.host, broker.port, per_round,
                                                    gap_s)[0]
                loop.warm()
                for i in range(per_round):
                    session = i % 2 == 1
                    led, http = loop.cycle(session)
                    kind = "session" if session else "basic"
                    samples[f"led_{kind}"].append(led)
                    samples[f"http_{kind}"].append(http)
                    time.sleep(gap_s)
                print(f"round {r + 1}/{rounds}: click->LED p50 basic "
                      f"{Stats.of(samples['led_basic']).p50:.1f} ms, session "
                      f"{Stats.of(samples['led_session']).p50:.1f} ms", flush=True)
        finally:
            loop.close()
        load = os.getloadavg()
    finally:
        office.kill()
        guard.close()
        broker.kill()
    return {"stats": {k: Stats.of(v) for k, v in samples.items()}, "load": load,
            "cycles": len(samples["led_basic"]) + len(samples["led_session"])}


def report(res: dict[str, object], command: str) -> str:
    stats = res["stats"]
    assert isinstance(stats, dict)
    return "\n".join([
        "# Closed-loop benchmark: guard click -> office ack LED",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}",
        f"- command: `{command}`",
        f"- load average (1/5/15 min) at the end: {res['load']}: the machine is shared, "
        "so compare the rows of one run, not runs on different days",
        f"- {res['cycles']} alarm cycles (press, ack, resolve) against one `officesec run` "
        "and one `officesec guard`, real Mosquitto on loopback; every cycle checked: "
        "HTTP 200 for ack and resolve, LED on after the ack and off after the resolve",
        "",
        "## Latency",
        "",
        TABLE_HEAD,
        stats["floor1"].row("floor, 1 hop: paho pub -> broker -> paho sub (QoS 1)"),
        stats["floor2"].row("floor, 2 hops: pub -> broker -> paho relay -> broker -> sub"),
        stats["led_session"].row("click -> ack LED on, session cookie + CSRF (dashboard)"),
        stats["http_session"].row("click -> HTTP 200, session cookie + CSRF"),
        stats["led_basic"].row("click -> ack LED on, HTTP Basic (scripts)"),
        stats["http_basic"].row("click -> HTTP 200, HTTP Basic"),
        "",
        "Paths: click -> LED is HTTP -> guard (auth, sign the command) -> broker -> office "
        "(verify the Ed25519 signature, state machine, LED) -> broker -> subscriber, i.e. "
        "two broker hops plus the guard and the office. Click -> 200 adds the way back: "
        "the office's `alarm_acknowledged` event with the command's nonce -> broker -> "
        "guard (store, commit) -> HTTP answer. HTTP Basic: the guard verifies the argon2 "
        "hash (argon2-cffi default cost) on the first request and again every 60 s "
        "(its Basic cache), so the Basic rows' maximum and p99 carry those verifications; "
        "sessions only check an HMAC.",
        "",
        f"Session click -> LED minus the 2-hop floor, p50: "
        f"{stats['led_session'].p50 - stats['floor2'].p50:.3f} ms: what the guard and the "
        "office add to the bare MQTT round trip.",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gap-s", type=float, default=0.05, help="pause between samples")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    res = run(args.cycles, args.rounds, args.gap_s)
    command = ".venv/bin/python -m benchmarks.bench_closed_loop " + " ".join(
        argv if argv is not None else sys.argv[1:])
    text = report(res, command.strip())
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")
        print(f"written: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
