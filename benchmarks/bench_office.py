"""Office benchmark: officesec vs mqtt-io vs the bare paho relay, one broker, one run.

Three paths, each with the same two broker hops, measured in one run on one
private Mosquitto, interleaved in rounds so that noise on the shared machine
hits all three alike:

* **floor**: sim topic -> broker -> plain paho relay (republishes from
  `on_message`) -> broker -> subscriber;
* **officesec**: `P/office/ID/sim/input/panic` -> broker -> `officesec run` (mock
  pins: paho, mock pin, gpiozero callback, state machine, outbox, paho) ->
  broker -> the `panic`/`panic_repeat` event on `P/office/ID/event`;
* **mqtt-io** (pinned, in its own venv, benchmarks/peer_mqttio.py): sim topic ->
  broker -> a sim bridge in mqtt-io's process drives the mock pin of its
  `gpiozero` module -> mqtt-io's interrupt callback, event bus, asyncio loop,
  MQTT client -> broker -> `ON` on `mqttio-bench/input/panic`.

A press is `press`, then `release` 60 ms later (after officesec's 50 ms
debounce); every press must give exactly one event (officesec: `presses`
counts up by one), or the run fails. Also measured: VmRSS/USS and CPU of each
process at idle, officesec's start -> retained `online`. `--load` adds a
process burning one core during the presses (results to office-load.md).

    .venv/bin/python -m benchmarks.bench_office                 # 1000 presses each
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/bench_office.py` works too
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import peer_mqttio
from benchmarks.common import (
    RELAY_IN,
    RELAY_OUT,
    ROOT,
    Receiver,
    Relay,
    Stats,
    connect,
    cpu_seconds,
    memory_mb,
    publish_timed,
)
from benchmarks.office_report import RESULTS, RESULTS_LOAD, report, write_results
from tests.broker import Mosquitto

OFFICE = "bench-1"
PREFIX = "officesec"
KEEPALIVE_S = 5  # officesec's default `[mqtt] keepalive_s`; mqtt-io gets the same
RELEASE_AFTER_S = 0.06  # > the daemon's 50 ms debounce, so press and release are both seen
WARMUP = 5  # presses per path before the clock runs (first-use imports, caches)
PATHS = ("floor", "officesec", "mqtt-io")


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
keepalive_s = {KEEPALIVE_S}

[hardware]
pin_factory = "mock"

[storage]
path = "{workdir / 'office.sqlite3'}"

[log]
level = "warning"
""", encoding="utf-8")
    return path


class Proc:
    """A benchmarked program as systemd would run it (SIGTERM to stop), log to a file."""

    def __init__(self, argv: list[str], logfile: Path, env: dict[str, str] | None = None) -> None:
        self.log = logfile.open("ab")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
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
        self.log.close()
        return code


def office_command(config: Path) -> list[str]:
    return [str(Path(sys.executable).with_name("officesec")), "run", "--config", str(config)]


def watch(broker: Mosquitto, topic: str, payload: bytes) -> Receiver:
    """Subscribe (retained copies too) before starting a program, to time its start."""
    return Receiver(broker.host, broker.port, topic, retained=True,
                    keep=lambda _t, p: p == payload)


def started_after(rx: Receiver, proc: Proc, timeout: float = 30) -> float:
    """Seconds from Popen to the watched message (availability `online`, status `running`)."""
    try:
        arrived, _t, _p = rx.wait_count(1, timeout=timeout)
    finally:
        rx.close()
    return arrived - proc.started


def wait_online(broker: Mosquitto) -> None:
    """For bench_office_trace: until the office's retained `online` is there."""
    rx = watch(broker, f"{PREFIX}/office/{OFFICE}/availability", b"online")
    try:
        rx.wait_count(1, timeout=30)
    finally:
        rx.close()


@dataclass
class SimPath:
    """Where a path's press goes in and what its answer looks like."""

    name: str
    sim_topic: str
    out_topic: str
    is_answer: Callable[[bytes], bool]
    check: Callable[[bytes, int], None] = lambda _p, _n: None  # raises on a wrong answer


def _office_check(state: dict[str, int]) -> Callable[[bytes, int], None]:
    def check(payload: bytes, n: int) -> None:
        event = json.loads(payload)
        presses = 1 if event["type"] == "panic" else int(event["presses"])
        if presses != state.get("last", 0) + 1:  # one event per press, none lost or doubled
            raise AssertionError(f"officesec press {n}: event says presses={presses}")
        state["last"] = presses
    return check


def office_path() -> SimPath:
    return SimPath("officesec", f"{PREFIX}/office/{OFFICE}/sim/input/panic",
                   f"{PREFIX}/office/{OFFICE}/event", lambda p: b'"type":"panic' in p,
                   _office_check({}))


def mqttio_path() -> SimPath:
    return SimPath("mqtt-io", peer_mqttio.SIM_TOPIC, peer_mqttio.EVENT_TOPIC,
                   lambda p: p == b"ON")


def floor_path() -> SimPath:
    return SimPath("floor", RELAY_IN, RELAY_OUT, lambda p: p == b"press")


class Presser:
    """Presses one path's simulated button and times the matching answer."""

    def __init__(self, broker: Mosquitto, path: SimPath | None = None) -> None:
        self.path = path or office_path()
        sim, out = self.path.sim_topic, self.path.out_topic
        # one subscriber taps the sim input too: splits the path into its two hops
        self.rx = Receiver(broker.host, broker.port, out, sim,
                           keep=lambda t, p: (t == sim and p == b"press") or (
                               t == out and self.path.is_answer(p)))
        self.tx = connect(broker.host, broker.port)
        self.count = 0
        self.split: list[float] = []  # sim input seen by a subscriber -> answer seen

    def press(self, gap_s: float) -> float:
        start = publish_timed(self.tx, self.path.sim_topic, b"press")
        self.count += 2
        arrived, topic, payload = self.rx.wait_count(self.count)
        tapped, tap_topic, _ = self.rx.got[self.count - 2]
        if tap_topic != self.path.sim_topic or topic != self.path.out_topic:
            raise AssertionError(f"{self.path.name} press {self.count // 2}: "
                                 f"unexpected order {tap_topic}, {topic}")
        self.path.check(payload, self.count // 2)
        self.split.append(arrived - tapped)
        time.sleep(max(0.0, start + RELEASE_AFTER_S - time.perf_counter()))
        self.tx.publish(self.path.sim_topic, b"release", qos=1)
        time.sleep(RELEASE_AFTER_S + gap_s)
        return arrived - start

    def close(self) -> None:
        self.tx.disconnect()
        self.tx.loop_stop()
        self.rx.close()


def measure_idle(pids: dict[str, int], seconds: float) -> dict[str, dict[str, float]]:
    """CPU % over `seconds` and memory at the end, of several processes side by side."""
    cpu0, t0 = {k: cpu_seconds(p) for k, p in pids.items()}, time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = {k: cpu_seconds(p) for k, p in pids.items()}, time.monotonic()
    return {k: {"cpu_pct": 100 * (cpu1[k] - cpu0[k]) / (t1 - t0), "seconds": t1 - t0,
                **memory_mb(p)} for k, p in pids.items()}


def burner() -> subprocess.Popen[bytes]:
    """A second process that keeps one core busy (the `--load` mode)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def run(presses: int, rounds: int, gap_s: float, idle_s: float, *, load: bool = False,
        env: dict[str, str] | None = None) -> dict[str, object]:
    mqttio_python = peer_mqttio.ensure_installed()
    load_start = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="officesec-bench-"))
    broker = Mosquitto(workdir / "mq").start()
    relay = Relay(broker.host, broker.port)
    rx_office = watch(broker, f"{PREFIX}/office/{OFFICE}/availability", b"online")
    office = Proc(office_command(write_config(workdir, broker)), workdir / "office.log", env)
    started: dict[str, float] = {}
    procs: dict[str, Proc] = {"officesec": office}
    samples: dict[str, list[float]] = {p: [] for p in PATHS}
    pressers: dict[str, Presser] = {}
    burn: subprocess.Popen[bytes] | None = None
    try:
        started["officesec"] = started_after(rx_office, office)
        rx_peer = watch(broker, peer_mqttio.STATUS_TOPIC, b"running")
        peer_conf = peer_mqttio.write_config(workdir, broker.host, broker.port, KEEPALIVE_S)
        procs["mqtt-io"] = Proc(peer_mqttio.command(mqttio_python, broker.host, broker.port,
                                                    peer_conf), workdir / "mqtt-io.log")
        started["mqtt-io"] = started_after(rx_peer, procs["mqtt-io"])
        time.sleep(2)  # start-up work (outbox, first states, imports) is not idle
        pids = {"floor": relay.proc.pid, **{k: p.pid for k, p in procs.items()}}
        idle = measure_idle(pids, idle_s)
        print(f"idle: {json.dumps(idle)}", flush=True)
        pressers = {"floor": Presser(broker, floor_path()),
                    "officesec": Presser(broker, office_path()),
                    "mqtt-io": Presser(broker, mqttio_path())}
        for presser in pressers.values():
            for _ in range(WARMUP):
                presser.press(gap_s)
        if load:
            burn = burner()
            time.sleep(1)
        per_round = max(1, presses // rounds)
        for r in range(rounds):
            order = PATHS[r % 3:] + PATHS[:r % 3]  # who goes first rotates too
            for name in order:
                samples[name] += [pressers[name].press(gap_s) for _ in range(per_round)]
            print(f"round {r + 1}/{rounds}: " + ", ".join(
                f"{n} p50 {Stats.of(samples[n]).p50:.3f} ms" for n in PATHS), flush=True)
        after = {k: memory_mb(p) for k, p in pids.items()}
        load_end = os.getloadavg()
    finally:
        if burn is not None:
            burn.kill()
            burn.wait()
        for presser in pressers.values():
            presser.close()
        codes = {k: p.stop() for k, p in procs.items()}
        relay.close()
        broker.kill()
    split = {k: Stats.of(p.split[WARMUP:]) for k, p in pressers.items()}
    return {"stats": {k: Stats.of(v) for k, v in samples.items()}, "split": split,
            "idle": idle, "after": after, "started": started, "exit_codes": codes,
            "load_start": load_start, "load_end": load_end, "load": load, "env": env or {},
            "presses": {k: len(v) for k, v in samples.items()},
            "peer": peer_mqttio.installed_versions()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=1000, help="per path")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--gap-s", type=float, default=0.05, help="pause between presses")
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--load", action="store_true",
                        help="burn one core in a second process during the presses")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for officesec (e.g. MALLOC_ARENA_MAX=2)")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    res = run(args.presses, args.rounds, args.gap_s, args.idle_s, load=args.load, env=env)
    text = report(res, " ".join(argv if argv is not None else sys.argv[1:]))
    print(text)
    if not args.no_write:
        target = RESULTS_LOAD if args.load else RESULTS
        write_results(target, text)
        print(f"written: {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
