"""Where the time of a panic press goes inside `officesec run` (a diagnosis, not a benchmark).

Runs the real daemon in a child process whose key methods are wrapped to take a
`time.perf_counter()` mark (CLOCK_MONOTONIC, so it compares across processes)
without changing what they do. The parent presses the simulated button like
bench_office.py and prints the median and p90 of every step:

    publish -> paho thread has the sim input -> gpiozero callback queued the edge
    -> logic thread took it -> event built -> outbox.add -> publish_event
    -> paho wrote the PUBLISH to the socket -> subscriber has the event

    .venv/bin/python -m benchmarks.bench_office_trace --presses 200
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import percentile

MARKS: list[tuple[str, float, str]] = []
STEPS = ["sim_in", "edge_queued", "logic_took", "emit", "outbox_added", "publish_call",
         "socket_write"]


# ------------------------------------------------------------ child process


def _wrap(owner: Any, name: str, mark: str, when: Callable[..., bool],
          after: str | None = None) -> None:
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        hit = when(*args, **kwargs)
        if hit:
            MARKS.append((mark, time.perf_counter(), threading.current_thread().name))
        result = original(*args, **kwargs)
        if hit and after:
            MARKS.append((after, time.perf_counter(), threading.current_thread().name))
        return result

    setattr(owner, name, wrapper)


def _child(config: str, marks_file: str) -> int:
    import paho.mqtt.client as paho  # noqa: PLC0415

    from controller.office import daemon, handoff, outbox  # noqa: PLC0415
    from controller.office import link as mqtt  # noqa: PLC0415
    from controller.office import main as office_main  # noqa: PLC0415
    from controller.office.command_gate import GuardKey  # noqa: PLC0415
    from controller.office.office_config import load_office_config  # noqa: PLC0415

    _wrap(mqtt.MqttLink, "_on_message", "sim_in",
          lambda _s, _c, _u, msg: msg.topic.endswith("/sim/input/panic")
          and msg.payload == b"press")
    _wrap(daemon.Daemon, "_on_edge", "edge_queued",
          lambda _s, name, active, _at: name == "panic" and active, after=None)
    _wrap(daemon.Daemon, "_dispatch", "logic_took",
          lambda _s, item: item[0] == "edge" and item[1].name == "panic" and item[1].active)
    _wrap(daemon.Daemon, "_emit", "emit", lambda _s, fx: fx.type.startswith("panic"))
    _wrap(outbox.Outbox, "add", "outbox_add_start", lambda *_a, **_k: True,
          after="outbox_added")
    _wrap(mqtt.MqttLink, "publish_event", "publish_call",
          lambda _s, _id, topic, _p: topic.endswith("/event"))
    _wrap(paho.Client, "_sock_send", "socket_write",
          lambda _s, buf: b"/event" in bytes(buf[:80]))

    # experiments (parent's --switch-interval / --yield), to test a remedy before proposing it
    if os.environ.get("TRACE_SWITCH"):
        sys.setswitchinterval(float(os.environ["TRACE_SWITCH"]))
    if os.environ.get("TRACE_YIELD"):
        publish_event = mqtt.MqttLink.publish_event

        def publish_then_yield(self: Any, *args: Any) -> None:
            publish_event(self, *args)
            time.sleep(0)  # let paho's thread take the GIL and write now

        mqtt.MqttLink.publish_event = publish_then_yield  # type: ignore[method-assign]

    def dump() -> None:
        Path(marks_file).write_text(json.dumps(MARKS), encoding="utf-8")

    atexit.register(dump)
    # the daemon in this process: `officesec run` would exec a fresh one without the wrappers
    cfg = load_office_config(Path(config))
    key = handoff.read_guard_key(cfg)
    return office_main.serve(cfg, None if key is None else GuardKey(key))


# ----------------------------------------------------------- parent process


def _run(presses: int, env: dict[str, str], profile: Path | None) -> None:
    from benchmarks.bench_office import Presser, wait_online, write_config  # noqa: PLC0415
    from tests.broker import Mosquitto  # noqa: PLC0415

    workdir = Path(tempfile.mkdtemp(prefix="officesec-trace-"))
    broker = Mosquitto(workdir / "mq").start()
    config = write_config(workdir, broker)
    marks_file = workdir / "marks.json"

    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_office_trace", "child",
                             str(config), str(marks_file)],
                            cwd=Path(__file__).resolve().parent.parent,
                            env={**os.environ, **env})
    starts: list[float] = []
    spy: subprocess.Popen[bytes] | None = None
    try:
        wait_online(broker)
        time.sleep(1)
        if profile is not None:
            # --nonblocking: never pause the daemon, so the latencies stay what they are
            spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record",
                                    "--pid", str(proc.pid), "--rate", "1000", "--threads", "--gil",
                                    "--nonblocking", "--format", "raw", "--output",
                                    str(profile)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            time.sleep(1)
        presser = Presser(broker)
        try:
            for _ in range(presses):
                starts.append(time.perf_counter())
                presser.press(0.05)
            got = list(presser.rx.got)
        finally:
            presser.close()
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        broker.kill()
    marks = json.loads(marks_file.read_text())
    received = [t for t, topic, _p in got if topic.endswith("/event")]
    table: dict[str, list[float]] = {s: [] for s in [*STEPS, "received"]}
    threads: dict[str, str] = {}
    for start, recv in zip(starts, received, strict=True):
        window = [(n, t, th) for n, t, th in marks if start <= t <= recv]
        prev = start
        for step in STEPS:
            hit = next(((t, th) for n, t, th in window if n == step and t >= prev), None)
            if hit is None:
                break
            table[step].append(hit[0] - prev)
            threads[step] = hit[1]
            prev = hit[0]
        else:
            table["received"].append(recv - prev)
    print(f"{len(received)} presses; per step, time since the previous step (ms):")
    print(f"{'step':14s} {'thread':28s} {'n':>4s} {'p50':>8s} {'p90':>8s} {'p99':>8s}")
    for step, values in table.items():
        ms = [v * 1000 for v in values]
        if ms:
            print(f"{step:14s} {threads.get(step, 'subscriber'):28s} {len(ms):4d} "
                  f"{percentile(ms, 50):8.3f} {percentile(ms, 90):8.3f} "
                  f"{percentile(ms, 99):8.3f}")
    total = [(r - s) * 1000 for s, r in zip(starts, received, strict=True)]
    print(f"{'total':14s} {'':28s} {len(total):4d} {percentile(total, 50):8.3f} "
          f"{percentile(total, 90):8.3f} {percentile(total, 99):8.3f}")
    print(f"load average: {os.getloadavg()}")
    if profile is not None and profile.exists():
        summarise_profile(profile)


def summarise_profile(path: Path, top: int = 12) -> None:
    """Top functions of a py-spy raw file (recorded with --gil): own samples and inclusive."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith("thread (")]
        if not frames:
            continue
        total += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            incl[frame] = incl.get(frame, 0) + count
    print(f"py-spy --gil: {total} samples of the thread holding the GIL (Python CPU time)")
    for title, table in (("own", own), ("inclusive", incl)):
        print(f"-- top {top} by {title} samples")
        for frame, count in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            print(f"{100 * count / max(total, 1):5.1f}%  {frame[:110]}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 3 and args[0] == "child":
        return _child(args[1], args[2])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--switch-interval", type=float, help="experiment: sys.setswitchinterval")
    parser.add_argument("--yield", dest="yield_", action="store_true",
                        help="experiment: time.sleep(0) right after publish_event")
    parser.add_argument("--py-spy", type=Path, metavar="FILE",
                        help="also sample the daemon with py-spy (raw stacks to FILE)")
    ns = parser.parse_args(args)
    env = {}
    if ns.switch_interval:
        env["TRACE_SWITCH"] = str(ns.switch_interval)
    if ns.yield_:
        env["TRACE_YIELD"] = "1"
    print(f"experiments: {env or 'none'}")
    _run(ns.presses, env, ns.py_spy)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
