"""Shared helpers for the benchmarks: statistics, paho clients, the bare MQTT floors.

The floors are what plain paho-mqtt achieves on the same broker in the same
run, at QoS 1, with the same pacing as the measured path:

* one hop:  publisher -> broker -> subscriber;
* two hops: publisher -> broker -> relay process -> broker -> subscriber, where
  the relay republishes straight from paho's on_message (no queue, no logic).
  This is the shape of the sim path (sim input in, event out) with nothing
  in the middle, so "office - two-hop floor" is what the daemon itself costs.

Run a relay by hand with `python -m benchmarks.common relay HOST PORT`.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

ROOT = Path(__file__).resolve().parent.parent
RELAY_IN, RELAY_OUT, FLOOR_TOPIC = "bench/relay/in", "bench/relay/out", "bench/floor"
TIMEOUT_S = 10.0


# ----------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of unsorted values."""
    data = sorted(values)
    if not data:
        return math.nan
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


@dataclass(frozen=True)
class Stats:
    """Latency summary in milliseconds."""

    n: int
    p50: float
    p90: float
    p99: float
    max: float
    min: float
    mean: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Stats:
        """Summarise samples given in seconds."""
        ms = [s * 1000 for s in seconds]
        return cls(n=len(ms), p50=percentile(ms, 50), p90=percentile(ms, 90),
                   p99=percentile(ms, 99), max=max(ms), min=min(ms), mean=sum(ms) / len(ms))

    def row(self, label: str) -> str:
        """One Markdown table row."""
        return (f"| {label} | {self.n} | {self.p50:.3f} | {self.p90:.3f} | {self.p99:.3f} | "
                f"{self.max:.3f} | {self.min:.3f} | {self.mean:.3f} |")


TABLE_HEAD = ("| path | n | p50 ms | p90 ms | p99 ms | max ms | min ms | mean ms |\n"
              "|---|---|---|---|---|---|---|---|")


# -------------------------------------------------------------------- clients


def _nodelay(_client: Any, _userdata: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def connect(host: str, port: int, client_id: str = "") -> mqtt.Client:
    """A started MQTT v5 paho client with TCP_NODELAY (as the daemon's own link)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=MQTTProtocolVersion.MQTTv5)
    client.on_socket_open = _nodelay
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    client.connect(host, port, keepalive=30)
    client.loop_start()
    if not connected.wait(TIMEOUT_S):
        raise RuntimeError(f"cannot connect to {host}:{port}")
    return client


class Receiver:
    """Subscribes and timestamps every message on arrival (in paho's network thread)."""

    def __init__(self, host: str, port: int, *topics: str,
                 keep: Callable[[str, bytes], bool] = lambda _t, _p: True,
                 retained: bool = False) -> None:
        """Connect, subscribe at QoS 1 and wait for the SUBACK; retained copies only if asked."""
        self.keep = keep
        self.retained = retained
        self.cond = threading.Condition()
        self.got: list[tuple[float, str, bytes]] = []
        self.client = connect(host, port)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.subscribe([(t, 1) for t in topics])
        if not subscribed.wait(TIMEOUT_S):
            raise RuntimeError("no SUBACK")

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        if (msg.retain and not self.retained) or not self.keep(msg.topic, msg.payload):
            return
        with self.cond:
            self.got.append((now, msg.topic, bytes(msg.payload)))
            self.cond.notify_all()

    def wait_count(self, count: int, timeout: float = TIMEOUT_S) -> tuple[float, str, bytes]:
        """Block until `count` messages were kept; return the last one."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.got) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"expected message #{count}, have {len(self.got)}")
                self.cond.wait(left)
            return self.got[count - 1]

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def publish_timed(client: mqtt.Client, topic: str, payload: bytes) -> float:
    """Publish at QoS 1 and return the perf_counter taken just before."""
    start = time.perf_counter()
    client.publish(topic, payload, qos=1)
    return start


# --------------------------------------------------------------------- floors


def floor_one_hop(host: str, port: int, count: int, gap_s: float,
                  payload: bytes = b"x" * 200) -> list[float]:
    """Publish -> subscribe latency through the broker, plain paho, QoS 1."""
    rx = Receiver(host, port, FLOOR_TOPIC)
    tx = connect(host, port)
    samples: list[float] = []
    try:
        for i in range(count):
            start = publish_timed(tx, FLOOR_TOPIC, payload)
            arrived, _t, _p = rx.wait_count(i + 1)
            samples.append(arrived - start)
            time.sleep(gap_s)
    finally:
        tx.disconnect()
        tx.loop_stop()
        rx.close()
    return samples


class Relay:
    """A separate process that republishes RELAY_IN to RELAY_OUT from on_message."""

    def __init__(self, host: str, port: int) -> None:
        """Start it and wait until it is subscribed."""
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.common", "relay", host,
                                      str(port)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"relay did not start: {line!r}")

    def close(self) -> None:
        """Stop the relay process."""
        self.proc.terminate()
        self.proc.wait(5)


def floor_two_hops(host: str, port: int, count: int, gap_s: float,
                   payload: bytes = b"press") -> tuple[list[float], list[float]]:
    """Publish -> broker -> relay process -> broker -> subscribe, plain paho, QoS 1.

    Returns the end-to-end samples and the second half alone (the subscriber also
    taps RELAY_IN: from seeing the input to seeing the relayed copy).
    """
    relay = Relay(host, port)
    rx = Receiver(host, port, RELAY_IN, RELAY_OUT)
    tx = connect(host, port)
    samples: list[float] = []
    split: list[float] = []
    try:
        for i in range(count):
            start = publish_timed(tx, RELAY_IN, payload)
            arrived, topic, _p = rx.wait_count(2 * i + 2)
            tapped, tap_topic, _p = rx.got[2 * i]
            if (tap_topic, topic) != (RELAY_IN, RELAY_OUT):
                raise RuntimeError(f"unexpected order: {tap_topic}, {topic}")
            samples.append(arrived - start)
            split.append(arrived - tapped)
            time.sleep(gap_s)
    finally:
        tx.disconnect()
        tx.loop_stop()
        rx.close()
        relay.close()
    return samples, split


def _relay_main(host: str, port: int) -> int:
    client = connect(host, port)

    def forward(c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        c.publish(RELAY_OUT, msg.payload, qos=1)

    subscribed = threading.Event()
    client.on_message = forward
    client.on_subscribe = lambda *_a: subscribed.set()
    client.subscribe(RELAY_IN, qos=1)
    subscribed.wait(TIMEOUT_S)
    print("ready", flush=True)
    threading.Event().wait()  # until the benchmark terminates us (SIGTERM)
    return 0


# ----------------------------------------------------------------- processes


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS/VmHWM (/proc/PID/status) and PSS/USS (smaps_rollup) of a process, in MiB.

    RSS counts shared library code (libpython, libcrypto, ...) in full; USS is
    the memory only this process uses, PSS charges shared pages pro rata.
    """
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key.removeprefix("Vm").lower()] = int(value.split()[0]) / 1024
    rollup: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        rollup[key] = int(value.split()[0])
    out["pss"] = rollup["Pss"] / 1024
    out["uss"] = (rollup["Private_Clean"] + rollup["Private_Dirty"]) / 1024
    out["shared"] = (rollup["Shared_Clean"] + rollup["Shared_Dirty"]) / 1024
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads), from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    rest = stat[stat.rindex(")") + 2:].split()  # the command name may contain spaces
    utime, stime = int(rest[11]), int(rest[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def machine() -> str:
    """A one-line description of where the numbers were taken."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    mosquitto = subprocess.run([exe, "-h"], capture_output=True, text=True,
                               check=False).stdout.splitlines()[:1]
    return (f"{os.cpu_count()} CPUs ({model}), Python {sys.version.split()[0]}, "
            f"paho-mqtt {version('paho-mqtt')}, {mosquitto[0] if mosquitto else 'mosquitto ?'}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "relay":
        raise SystemExit(_relay_main(sys.argv[2], int(sys.argv[3])))
    print(__doc__)
    raise SystemExit(2)
