"""Issue 16 with the real daemon process and a real Mosquitto.

SIGHUP during a pulse, SIGKILL during a pulse, the neighbour LED after a
reconnect through a cuttable TCP proxy, and a press with the broker
unreachable on a stalling disk followed by a power cut.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from controller.office.machine import NEIGHBOR_RESYNC_S
from tests.broker import Mosquitto
from tests.chaos.support import TcpProxy
from tests.office_proc import OfficeProc, office_sections, write_toml
from tests.probe import Probe

P = "officesec"
REPO = Path(__file__).resolve().parent.parent


def topic(office: str, leaf: str) -> str:
    return f"{P}/office/{office}/{leaf}"


def relay_on(probe: Probe, after: float = 0.0) -> bool | None:
    outs = [m for m in probe.msgs if m.topic == topic("eg-101", "sim/output") and m.at > after]
    return outs[-1].json()["relay"] if outs else None


def start(broker_port: int, tmp_path: Path, probe_port: int | None = None,
          **overrides: dict) -> tuple[OfficeProc, Probe]:
    probe = Probe("127.0.0.1", probe_port or broker_port, f"{P}/#").start()
    office = OfficeProc(tmp_path / "office", broker_port, **overrides).start()
    probe.wait_for(lambda m: m.topic == topic("eg-101", "availability")
                   and m.payload == b"online", timeout=10)
    return office, probe


def test_sighup_during_a_pulse_is_a_clean_stop(broker: Mosquitto, tmp_path: Path) -> None:
    office, probe = start(broker.port, tmp_path, door={"release_s": 10, "held_open_s": 20})
    try:
        probe.publish(topic("eg-101", "sim/input/release"), "press")
        probe.wait_for(lambda m: m.topic.endswith("sim/output") and m.json()["relay"])
        t0 = time.monotonic()
        assert office.proc is not None
        office.proc.send_signal(1)  # SIGHUP: used to kill the daemon without cleanup
        assert office.proc.wait(5) == 0
        probe.wait_for(lambda m: m.topic.endswith("sim/output") and m.at > t0
                       and not m.json()["relay"], timeout=2)
        probe.wait_for(lambda m: m.topic.endswith("availability") and m.payload == b"offline"
                       and m.at > t0, timeout=2)
        assert "controller_stopped" in office.log_text()
    finally:
        office.kill()
        probe.stop()


def test_sigkill_during_a_pulse_then_restart_starts_locked(broker: Mosquitto,
                                                           tmp_path: Path) -> None:
    office, probe = start(broker.port, tmp_path, door={"release_s": 10, "held_open_s": 20})
    try:
        probe.publish(topic("eg-101", "sim/input/release"), "press")
        probe.wait_for(lambda m: m.topic.endswith("sim/output") and m.json()["relay"])
        office.kill()  # SIGKILL: no cleanup runs; the (simulated) pin keeps its level
        time.sleep(0.3)
        assert relay_on(probe) is True  # what the kernel keeps without strict_gpiod
        # what systemd runs next: ExecStopPost / ExecStartPre, then the daemon again
        res = subprocess.run([sys.executable, "-m", "controller", "relay-off", "--config",
                              str(office.config)], capture_output=True, text=True, timeout=30,
                             check=False)
        assert res.returncode == 0, res.stderr
        t0 = time.monotonic()
        office.start()
        probe.wait_for(lambda m: m.topic.endswith("sim/output") and m.at > t0, timeout=10)
        assert relay_on(probe, t0) is False  # the restart never resumes the pulse
        time.sleep(0.5)
        assert not any(m.json()["relay"] for m in probe.msgs
                       if m.topic.endswith("sim/output") and m.at > t0)
    finally:
        office.stop()
        probe.stop()


def test_neighbour_led_goes_off_when_the_neighbour_resolved_during_a_cut(
        broker: Mosquitto, tmp_path: Path) -> None:
    proxy = TcpProxy(broker.port)
    office, probe = start(proxy.port, tmp_path, probe_port=broker.port,
                          office={"neighbors": ["eg-102"]})
    alarm = (b'{"schema":1,"alarm_id":"0b7f6c3e-1d2a-4c5b-8e9f-a0b1c2d3e4f5",'
             b'"office":"eg-102","location":{},"state":"active",'
             b'"raised_at":"2026-12-02T09:00:00.000Z","presses":1}')
    try:
        probe.publish(topic("eg-102", "alarm"), alarm, retain=True)
        probe.wait_for(lambda m: m.topic == topic("eg-101", "sim/output")
                       and m.json()["neighbor_led"], timeout=5)
        proxy.cut(silent=False)
        probe.wait_for(lambda m: m.topic == topic("eg-101", "availability")
                       and m.payload == b"offline", timeout=10)
        probe.publish(topic("eg-102", "alarm"), b"", retain=True)  # resolved meanwhile
        time.sleep(0.2)
        t0 = time.monotonic()
        proxy.heal()
        probe.wait_for(lambda m: m.topic == topic("eg-101", "availability")
                       and m.payload == b"online" and m.at > t0, timeout=15)
        probe.wait_for(lambda m: m.topic == topic("eg-101", "sim/output") and m.at > t0
                       and not m.json()["neighbor_led"], timeout=NEIGHBOR_RESYNC_S + 3)
    finally:
        office.stop()
        probe.stop()
        proxy.close()


POWER_CUT = """
import os, sys, time
from pathlib import Path
from gpiozero.pins.mock import MockFactory
from controller.office.compose import build_daemon
from controller.office.office_config import load_office_config

cfg = load_office_config(Path(sys.argv[1]))
factory = MockFactory()
daemon = build_daemon(cfg, factory=factory)
daemon.start(thread=False)
daemon.pump()
assert daemon.outbox.flush(5.0)
daemon.outbox.before_commit = lambda: time.sleep(5.0)  # the SD card stalls from now on
factory.pin(cfg.hardware.panic_pin).drive_high()  # nc loop opens: the press
daemon.pump()
print("pressed", daemon.link.connected, flush=True)
os._exit(0)  # the power is cut: no close, no flush, no atexit
"""


def test_press_with_broker_unreachable_and_a_stalling_disk_survives_a_power_cut(
        tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mq").start()
    port = broker.port
    broker.stop()  # unreachable from the start
    cfg = write_toml(tmp_path / "eg-101.toml", office_sections(tmp_path, port))
    res = subprocess.run([sys.executable, "-c", POWER_CUT, str(cfg)], capture_output=True,
                         text=True, timeout=60, cwd=REPO, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "pressed False" in res.stdout
    db = sqlite3.connect(tmp_path / "eg-101.sqlite3")
    try:
        rows = db.execute("SELECT type FROM events WHERE type = 'panic'").fetchall()
    finally:
        db.close()
    assert rows == [("panic",)], "the press left no trace after the power cut"
