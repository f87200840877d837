"""Office benchmark: panic press -> event latency through `officesec run`, idle RSS and CPU.

A real Mosquitto on loopback, the real daemon with mock pins, and in the same
run the bare paho floors (benchmarks/common.py). A press is `press` on
`P/office/ID/sim/input/panic`; the clock stops when a subscriber on
`P/office/ID/event` receives the `panic`/`panic_repeat` event for it. So the
path is publisher -> broker -> daemon (paho thread, mock pin, gpiozero
callback, logic thread, outbox, paho) -> broker -> subscriber: two broker hops.
The samples are interleaved in rounds (floor, two-hop floor, office) so that
drift on the machine hits all three alike.

    .venv/bin/python -m benchmarks.bench_office            # 500 presses, writes results
    .venv/bin/python -m benchmarks.bench_office --presses 50 --idle-s 5 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/bench_office.py` works too
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    ROOT,
    TABLE_HEAD,
    Receiver,
    Stats,
    connect,
    cpu_seconds,
    floor_one_hop,
    floor_two_hops,
    machine,
    memory_mb,
    publish_timed,
)
from tests.broker import Mosquitto

OFFICE = "bench-1"
PREFIX = "officesec"
RESULTS = ROOT / "benchmarks" / "results" / "office.md"
ANALYSIS_MARKER = "<!-- analysis: kept when the benchmark rewrites this file -->"
RELEASE_AFTER_S = 0.06  # > the daemon's 50 ms debounce, so press and release are both seen
TARGET_P50_FACTOR, TARGET_P99_MS, TARGET_RSS_MB, TARGET_CPU_PCT = 1.5, 1.5, 40.0, 1.0


def write_config(workdir: Path, broker: Mosquitto) -> Path:
    path = workdir / "office.toml"
    path.write_text(f"""
[office]
id = "{OFFICE}"
label = "Benchmark office"

[mqtt]
host = "{broker.host}"
port = {broker.port}
prefix = "{PREFIX}"

[hardware]
pin_factory = "mock"

[storage]
path = "{workdir / 'office.sqlite3'}"

[log]
level = "warning"
""", encoding="utf-8")
    return path


class Office:
    """`officesec run` as systemd would run it (SIGTERM to stop)."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        exe = Path(sys.executable).with_name("officesec")
        self.logfile = (config.parent / "office.log").open("ab")
        self.proc = subprocess.Popen([str(exe), "run", "--config", str(config)],
                                     stdout=self.logfile, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(5)
        self.logfile.close()
        return code


def wait_online(broker: Mosquitto) -> None:
    topic = f"{PREFIX}/office/{OFFICE}/availability"
    rx = Receiver(broker.host, broker.port, topic, retained=True,
                  keep=lambda _t, p: p == b"online")
    try:
        rx.wait_count(1, timeout=30)
    finally:
        rx.close()


def measure_idle(pid: int, seconds: float) -> dict[str, float]:
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    return {"cpu_pct": 100 * (cpu1 - cpu0) / (t1 - t0), "seconds": t1 - t0, **memory_mb(pid)}


class Presser:
    """Presses the simulated panic button and times the matching event."""

    def __init__(self, broker: Mosquitto) -> None:
        self.topic = f"{PREFIX}/office/{OFFICE}/sim/input/panic"
        # one subscriber taps the sim input too: splits the path into its two hops
        self.rx = Receiver(broker.host, broker.port, f"{PREFIX}/office/{OFFICE}/event",
                           self.topic,
                           keep=lambda t, p: p == b"press" or b'"type":"panic' in p)
        self.tx = connect(broker.host, broker.port)
        self.count = 0
        self.last_presses = 0
        self.split: list[float] = []  # sim input seen by a subscriber -> event seen

    def press(self, gap_s: float) -> float:
        start = publish_timed(self.tx, self.topic, b"press")
        self.count += 2
        arrived, topic, payload = self.rx.wait_count(self.count)
        tapped, tap_topic, _ = self.rx.got[self.count - 2]
        if tap_topic != self.topic or topic == self.topic:
            raise AssertionError(f"press {self.count // 2}: unexpected order {tap_topic}, {topic}")
        self.split.append(arrived - tapped)
        event = json.loads(payload)
        # correctness: one event per press, none lost, none doubled
        presses = 1 if event["type"] == "panic" else int(event["presses"])
        if presses != self.last_presses + 1:
            raise AssertionError(f"press {self.count // 2}: event says presses={presses}")
        self.last_presses = presses
        time.sleep(max(0.0, start + RELEASE_AFTER_S - time.perf_counter()))
        self.tx.publish(self.topic, b"release", qos=1)
        time.sleep(RELEASE_AFTER_S + gap_s)
        return arrived - start

    def close(self) -> None:
        self.tx.disconnect()
        self.tx.loop_stop()
        self.rx.close()


def run(presses: int, rounds: int, gap_s: float, idle_s: float,
        env: dict[str, str] | None = None) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="officesec-bench-"))
    broker = Mosquitto(workdir / "mq").start()
    office = Office(write_config(workdir, broker), env)
    floor1: list[float] = []
    floor2: list[float] = []
    floor2_split: list[float] = []
    office_split: list[float] = []
    office_s: list[float] = []
    try:
        wait_online(broker)
        time.sleep(2)  # start-up work (outbox, first states) is not idle
        idle = measure_idle(office.pid, idle_s)
        print(f"idle: {idle}", flush=True)
        per_round = max(1, presses // rounds)
        presser = Presser(broker)
        try:
            for r in range(rounds):
                floor1 += floor_one_hop(broker.host, broker.port, per_round, gap_s + 0.06)
                two, two_split = floor_two_hops(broker.host, broker.port, per_round,
                                                gap_s + 0.06)
                floor2 += two
                floor2_split += two_split
                office_s += [presser.press(gap_s) for _ in range(per_round)]
                office_split[:] = presser.split
                print(f"round {r + 1}/{rounds}: office p50 "
                      f"{Stats.of(office_s).p50:.3f} ms", flush=True)
        finally:
            presser.close()
        after = memory_mb(office.pid)
        load = os.getloadavg()
    finally:
        code = office.stop()
        broker.kill()
    return {"floor1": Stats.of(floor1), "floor2": Stats.of(floor2), "office": Stats.of(office_s),
            "floor2_split": Stats.of(floor2_split), "office_split": Stats.of(office_split),
            "load": load, "env": env or {},
            "idle": idle, "after": after,
            "exit_code": code, "presses": len(office_s)}


def scheduling() -> str:
    """How this run was scheduled (inherited by the broker and the daemon)."""
    policy = os.sched_getscheduler(0)
    if policy == os.SCHED_FIFO:
        return f"SCHED_FIFO priority {os.sched_getparam(0).sched_priority}"
    return f"SCHED_OTHER, nice {os.nice(0)}"


def launcher() -> str:
    """The command prefix that reproduces this run's scheduling."""
    if os.sched_getscheduler(0) == os.SCHED_FIFO:
        return f"chrt -f {os.sched_getparam(0).sched_priority} "
    return f"nice -n {os.nice(0)} " if os.nice(0) else ""


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def p50_row(name: str, floor: Stats, office: Stats) -> str:
    limit = TARGET_P50_FACTOR * floor.p50
    return (f"| p50 <= {TARGET_P50_FACTOR}x {name} floor p50 ({limit:.3f} ms) | "
            f"{office.p50:.3f} ms ({office.p50 / floor.p50:.2f}x) | "
            f"{verdict(office.p50 <= limit)} |")


def report(res: dict[str, object], command: str) -> str:
    f1, f2, off = res["floor1"], res["floor2"], res["office"]
    f2s, offs = res["floor2_split"], res["office_split"]
    idle, after = res["idle"], res["after"]
    assert isinstance(after, dict)
    assert isinstance(f1, Stats) and isinstance(f2, Stats) and isinstance(off, Stats)
    assert isinstance(f2s, Stats) and isinstance(offs, Stats)
    assert isinstance(idle, dict)
    lines = [
        "# Office benchmark",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}",
        f"- command: `{command}`",
        f"- daemon environment: {res['env'] or 'unchanged'}; scheduling of the whole run "
        f"(broker, daemon, clients): {scheduling()}",
        f"- load average (1/5/15 min) at the end: {res['load']}: the machine is shared, "
        "so compare the rows of one run, not runs on different days",
        f"- {res['presses']} presses through the mock pins, one event each (checked: "
        "`presses` counts up by one, nothing lost or doubled); daemon exit code on SIGTERM: "
        f"{res['exit_code']}",
        "",
        "## Press -> event latency (loopback, Mosquitto, QoS 1)",
        "",
        TABLE_HEAD,
        f1.row("floor, 1 hop: paho pub -> broker -> paho sub"),
        f2.row("floor, 2 hops: pub -> broker -> paho relay -> broker -> sub"),
        off.row("office: sim press -> broker -> `officesec run` -> broker -> sub"),
        "",
        "The same runs split at the first hop (a subscriber also taps the input topic; "
        "from the tap seeing the input to the same client seeing the output):",
        "",
        TABLE_HEAD,
        f2s.row("relay + 1 hop (2-hop floor minus its first hop)"),
        offs.row("daemon + 1 hop (office minus the sim hop)"),
        "",
        "| target | measured | |",
        "|---|---|---|",
        p50_row("1-hop", f1, off),
        p50_row("2-hop", f2, off),
        f"| p99 <= {TARGET_P99_MS} ms | {off.p99:.3f} ms | {verdict(off.p99 <= TARGET_P99_MS)} |",
        f"| idle RSS <= {TARGET_RSS_MB:.0f} MB | VmRSS {idle['rss']:.1f} MB "
        f"(peak {idle['hwm']:.1f} MB) | {verdict(idle['rss'] <= TARGET_RSS_MB)} |",
        f"| (same, without shared library pages) | USS {idle['uss']:.1f} MB, "
        f"PSS {idle['pss']:.1f} MB; shared {idle['shared']:.1f} MB | "
        f"{verdict(idle['uss'] <= TARGET_RSS_MB)} (USS) |",
        f"| idle CPU < {TARGET_CPU_PCT:.0f} % over {idle['seconds']:.0f} s | "
        f"{idle['cpu_pct']:.2f} % | {verdict(idle['cpu_pct'] < TARGET_CPU_PCT)} |",
        "",
        f"Memory after the presses: VmRSS {after['rss']:.1f} MB (peak {after['hwm']:.1f} MB), "
        f"USS {after['uss']:.1f} MB.",
        "",
        f"What the daemon itself adds: office p50 - 2-hop floor p50 = {off.p50 - f2.p50:.3f} ms "
        f"(p99: {off.p99 - f2.p99:.3f} ms).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gap-s", type=float, default=0.05, help="pause between samples")
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the daemon (e.g. MALLOC_ARENA_MAX=2)")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    res = run(args.presses, args.rounds, args.gap_s, args.idle_s, env)
    command = f"{launcher()}.venv/bin/python -m benchmarks.bench_office " + " ".join(
        argv or sys.argv[1:])
    text = report(res, command.strip())
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
        _head, marker, analysis = old.partition(ANALYSIS_MARKER)
        RESULTS.write_text(text + "\n" + ANALYSIS_MARKER + analysis if marker else text,
                           encoding="utf-8")
        print(f"written: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
