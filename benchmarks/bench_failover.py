"""Failover times (issue #19): the leading guard station killed, the broker killed.

Two measurements, each repeated, on real processes:

- **Leader killed**: two `officesec guard` stations on one fresh PostgreSQL
  database (one Mosquitto). An office raises a panic that nobody
  acknowledges (escalation after 1 s), the leader is SIGKILLed 0.2 s later;
  timed: kill -> the other station leads, and the alarm's escalation (on the
  new leader's escalation topic) behind its due time. The killed station is
  started again (it rejoins as follower) and the next round kills the new
  leader.
- **Broker killed**: a guard station and three real office daemons with
  `[mqtt] hosts` = two Mosquittos; the one everybody uses is SIGKILLed;
  timed: kill -> the guard connected to the other one and every office's
  state fresh again at the guard (all offices back).

    .venv/bin/python -m benchmarks.bench_failover            # 5 rounds each, writes results
    .venv/bin/python -m benchmarks.bench_failover --rounds 2 --no-write
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Stats, machine
from benchmarks.guard_common import GuardProc, cpu_pressure, write_section
from tests.broker import Mosquitto
from tests.guard_proc import wait_for
from tests.office_proc import OfficeProc
from tests.office_sim import OfficeSim
from tests.pg import create_database, drop_database
from tests.probe import Probe

P = "officesec"
ESCALATE_AFTER_S = 1.0


def _role(g: GuardProc) -> str:
    try:
        return str(g.get("/healthz")["cluster"]["role"])
    except Exception:  # a station that is starting or gone
        return "?"


def leader_rounds(rounds: int, work: Path) -> dict[str, list[float]]:
    """Kill the leader `rounds` times; seconds to takeover and escalation lateness."""
    broker = Mosquitto(work / "mq").start()
    url = create_database()
    out: dict[str, list[float]] = {"takeover": [], "escalation_late": []}
    common: dict[str, Any] = {"store": {"url": url}, "escalation": {"after_s": ESCALATE_AFTER_S}}
    a = GuardProc(work / "a", broker.port, roster=["eg-101"], guard={"id": "guard-a"}, **common)
    key = str(a.workdir / "keys" / "guard-signing.key")
    b = GuardProc(work / "b", broker.port, roster=["eg-101"], signing=False,
                  guard={"id": "guard-b"}, security={"signing_key": key}, **common)
    escalations = Probe(broker.host, broker.port, f"{P}/guard/+/escalation").start()
    sim = OfficeSim(broker.port, "eg-101", heartbeat_s=1.0).start_heartbeat()
    try:
        a.start()
        wait_for(lambda: _role(a) == "leader", 15, "A leads")
        b.start()
        wait_for(lambda: _role(b) == "follower", 15, "B follows")
        for _ in range(rounds):
            leader, other = (a, b) if _role(a) == "leader" else (b, a)
            alarm_id = uuid.uuid4()
            sim.publish(sim.make_event("panic", alarm_id=alarm_id))
            raised = time.monotonic()
            for g in (a, b):
                wait_for(lambda g=g, a=str(alarm_id): any(x["alarm_id"] == a
                                                          for x in g.alarms()),
                         10, "the alarm on both")
            time.sleep(max(0.0, raised + 0.2 - time.monotonic()))
            leader.kill()
            killed = time.monotonic()
            wait_for(lambda o=other: _role(o) == "leader", 30, "takeover", interval=0.02)
            out["takeover"].append(time.monotonic() - killed)
            seen = escalations.wait_for(lambda m, a=str(alarm_id): m.json().get("alarm_id") == a,
                                        30)
            out["escalation_late"].append(seen[0].at - (raised + ESCALATE_AFTER_S))
            leader.start()  # rejoins as follower; the next round kills the new leader
            wait_for(lambda g=leader: _role(g) == "follower", 30, "rejoined")
    finally:
        sim.close()
        escalations.stop()
        a.close()
        b.close()
        broker.kill()
        drop_database(url)
    return out


def _on_broker(guard: GuardProc, port: int) -> bool:
    broker = guard.get("/healthz")["broker"]
    return bool(broker["connected"]) and broker["port"] == port


def _heard_since(guard: GuardProc, ids: list[str], since: float) -> bool:
    """Every office online and heard after `since` (monotonic), i.e. through the other broker."""
    age = time.monotonic() - since
    views = [guard.office(o) for o in ids]
    return all(v["online"] and v["state_age_s"] is not None and v["state_age_s"] < age
               for v in views)


def broker_rounds(rounds: int, work: Path) -> dict[str, list[float]]:
    """Kill the broker in use `rounds` times (two Mosquittos, `hosts`); seconds until healed."""
    out: dict[str, list[float]] = {"guard_back": [], "offices_back": []}
    ids = ["eg-101", "eg-102", "eg-103"]
    for r in range(rounds):
        root = work / f"broker-{r}"
        first, second = Mosquitto(root / "m1").start(), Mosquitto(root / "m2").start()
        mqtt = {"hosts": [f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"],
                "reconnect_min_s": 0.2, "reconnect_max_s": 1}
        guard = GuardProc(root / "guard", 0, mqtt=dict(mqtt), roster=ids)
        offices = [OfficeProc(root / o, 0, o, mqtt=dict(mqtt), alarm={"heartbeat_s": 1},
                              security={"guard_public_key": str(guard.public_key)})
                   for o in ids]
        try:
            guard.start()
            for office in offices:
                office.start()
            wait_for(lambda g=guard: all(g.office(o)["online"] and not g.office(o)["stale"]
                                         for o in ids), 30, "offices online")
            first.kill()
            killed = time.monotonic()
            wait_for(lambda g=guard, port=second.port: _on_broker(g, port), 60,
                     "guard on the second broker", interval=0.05)
            out["guard_back"].append(time.monotonic() - killed)
            wait_for(lambda g=guard, k=killed: _heard_since(g, ids, k), 60, "every office back",
                     interval=0.05)
            out["offices_back"].append(time.monotonic() - killed)
        finally:
            for office in offices:
                office.stop()
            guard.close()
            first.kill()
            second.kill()
    return out


def report(results: dict[str, list[float]], rounds: int, command: str) -> str:
    names = {"takeover": "leader SIGKILLed -> the other station leads",
             "escalation_late": "unacknowledged alarm: escalation behind its due time "
                                f"(due {ESCALATE_AFTER_S:.0f} s after it was raised, leader "
                                "killed 0.2 s after it was raised)",
             "guard_back": "broker in use SIGKILLed -> guard connected to the other broker",
             "offices_back": "broker in use SIGKILLed -> all 3 offices heard again at the guard"}
    rows = []
    for key, label in names.items():
        s = Stats.of(results[key])
        rows.append(f"| {label} | {s.n} | {s.p50:.0f} | {s.max:.0f} | {s.min:.0f} |")
    return "\n".join([
        "## Failover", "",
        f"`{command}` on {machine()}; load average at the end: {os.getloadavg()[0]:.1f}, "
        f"{cpu_pressure()}. {rounds} rounds each; real `officesec guard` processes on one fresh "
        "PostgreSQL database (leader) and real office daemons with `[mqtt] hosts` = two "
        "Mosquittos (broker).", "",
        "| what | n | p50 ms | max ms | min ms |", "|---|---|---|---|---|", *rows, "",
        "The station campaigns for the leader lock every second (`controller/guard/cluster.py`); "
        "a killed leader's PostgreSQL session ends with its socket, so the lock is free at once. "
        "A client whose broker dies reconnects after `reconnect_min_s` (0.2 s here) to the next "
        "entry of `hosts`; offices are back with their next heartbeat (1 s). Two independent "
        "Mosquittos do not share sessions or retained messages: this times the clients' side; "
        "a clustered broker (docs/fleet.md, NATS: 12-39 s to heal, most of it JetStream's own "
        "leader election) adds its own time.", ""])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="officesec-bench-failover-"))
    results = {**leader_rounds(args.rounds, work / "leader"),
               **broker_rounds(args.rounds, work)}
    text = report(results, args.rounds, "python -m benchmarks.bench_failover " + " ".join(argv))
    print(text)
    if not args.no_write:
        write_section("failover", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
