"""Press -> dashboard: how long until an SSE client of the guard station sees the alarm.

Three paths, interleaved in rounds so that machine noise hits all alike:

1. floor: bare paho QoS 1 publish -> Mosquitto -> paho subscriber (same run);
2. guard: an office's `panic` event published (QoS 1) -> Mosquitto -> `officesec guard`
   (validate, SQLite commit, PUBACK, live model) -> SSE `alarm` message in a client;
3. press: a real `officesec run` daemon (mock pins) pressed over its sim topic -> daemon
   -> Mosquitto -> guard -> SSE (two broker hops; a real button has only the second).

    .venv/bin/python -m benchmarks.bench_guard_latency            # 300 rounds
    .venv/bin/python -m benchmarks.bench_guard_latency --rounds 50 --no-write
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    FLOOR_TOPIC,
    TABLE_HEAD,
    Receiver,
    Stats,
    connect,
    machine,
    publish_timed,
)
from benchmarks.guard_common import GuardProc, SSEReader, cpu_pressure, write_section
from controller.protocol.messages import Event, Topics, utcnow
from tests.broker import Mosquitto
from tests.office_proc import OfficeProc

RELEASE_AFTER_S = 0.06  # > the daemon's debounce


def run(rounds: int, gap_s: float) -> dict[str, Stats]:
    work = Path(tempfile.mkdtemp(prefix="officesec-bench-guard-"))
    broker = Mosquitto(work / "mq").start()
    guard = GuardProc(work / "guard", broker.port, escalation={"after_s": 3600}).start()
    office = OfficeProc(work / "office", broker.port, "eg-201",
                        security={"guard_public_key": str(guard.public_key)}).start()
    topics = Topics("officesec")
    tx = connect(broker.host, broker.port)
    sse = SSEReader(guard.url)
    rx = Receiver(broker.host, broker.port, FLOOR_TOPIC)
    floor: list[float] = []
    fake: list[float] = []
    press: list[float] = []
    try:
        deadline = time.monotonic() + 20
        while not any(o["id"] == "eg-201" and o["online"] for o in guard.get("/api/offices")):
            if time.monotonic() > deadline:
                raise RuntimeError("office daemon did not come online")
            time.sleep(0.1)
        for i in range(rounds):
            # 1. the floor: bare paho through the same broker
            start = publish_timed(tx, FLOOR_TOPIC, b"x" * 200)
            arrived, _t, _p = rx.wait_count(i + 1)
            floor.append(arrived - start)
            time.sleep(gap_s)
            # 2. a fake office's panic event straight to the guard
            alarm_id = uuid.uuid4()
            ev = Event(id=uuid.uuid4(), office="eg-101", seq=i + 1, ts=utcnow(), type="panic",
                       alarm_id=alarm_id)
            sse.drain()
            start = time.perf_counter()
            tx.publish(topics.event("eg-101"), ev.to_bytes(), qos=1)
            fake.append(sse.wait(lambda k, d, a=str(alarm_id): k == "alarm"
                                 and d["alarm_id"] == a) - start)
            time.sleep(gap_s)
            # 3. a press on the real daemon: panic, then panic_repeat with presses + 1
            sse.drain()
            start = time.perf_counter()
            tx.publish(topics.sim_input("eg-201", "panic"), b"press", qos=1)
            want = i + 1
            press.append(sse.wait(lambda k, d, w=want: k == "alarm" and d["office"] == "eg-201"
                                  and d["presses"] == w) - start)
            time.sleep(RELEASE_AFTER_S)
            tx.publish(topics.sim_input("eg-201", "panic"), b"release", qos=1)
            time.sleep(gap_s)
    finally:
        sse.close()
        rx.close()
        tx.loop_stop()
        office.kill()
        guard.close()
        broker.kill()
    return {"floor": Stats.of(floor), "guard": Stats.of(fake), "press": Stats.of(press)}


def report(res: dict[str, Stats], rounds: int, command: str) -> str:
    target = "met" if res["guard"].p99 <= 20 else "NOT met"
    return "\n".join([
        "## Press -> dashboard (SSE)", "",
        f"`{command}` on {machine()}; load average at the end: "
        f"{os.getloadavg()[0]:.1f}, {cpu_pressure()} (the machine was shared with other "
        "test runs).", "",
        TABLE_HEAD,
        res["floor"].row("floor: paho QoS 1 publish -> Mosquitto -> paho subscriber"),
        res["guard"].row("guard: office panic event -> guard (commit, PUBACK) -> SSE client"),
        res["press"].row("press: sim press -> office daemon -> guard -> SSE client"),
        "",
        f"Target p99 <= 20 ms for the guard path: **{target}** "
        f"(p99 {res['guard'].p99:.1f} ms over {rounds} alarms). The guard path includes "
        "pydantic validation, the SQLite commit (WAL, synchronous=NORMAL) before the PUBACK, "
        "and the SSE write; the press path adds the daemon and a second broker hop.", ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--gap-s", type=float, default=0.03)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    res = run(args.rounds, args.gap_s)
    text = report(res, args.rounds, "python -m benchmarks.bench_guard_latency "
                  + " ".join(argv if argv is not None else sys.argv[1:]))
    print(text)
    if not args.no_write:
        write_section("latency", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
