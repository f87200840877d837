"""The guard's paho client on the event loop (paho_loop.py): reconnect, fail over, alarms."""

from __future__ import annotations

import time
from pathlib import Path

from tests.broker import Mosquitto
from tests.guard_proc import GuardProc, wait_for
from tests.office_sim import OfficeSim


def _connected_to(guard: GuardProc, port: int) -> bool:
    """Connected now, and the last connection the station logged was to that broker."""
    last = [e for e in guard.log_events() if e.get("event") == "mqtt_connected"]
    return bool(guard.get("/healthz")["broker"]["connected"]) and bool(last) and \
        last[-1]["broker"] == f"127.0.0.1:{port}"


def test_station_fails_over_to_the_next_broker_and_back(tmp_path: Path) -> None:
    first = Mosquitto(tmp_path / "m1").start()
    second = Mosquitto(tmp_path / "m2").start()
    hosts = [f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"]
    guard = GuardProc(tmp_path / "g", first.port,
                      mqtt={"hosts": hosts, "reconnect_min_s": 0.2, "reconnect_max_s": 1})
    try:
        guard.start()
        wait_for(lambda: guard.get("/healthz")["broker"]["connected"], 10, "connected")
        first.kill()
        t0 = time.monotonic()
        wait_for(lambda: _connected_to(guard, second.port), 20, "on the second broker")
        moved_s = time.monotonic() - t0
        sim = OfficeSim(second.port, "eg-201", public_key=guard.public_key)
        try:
            sim.press()
            wait_for(lambda: any(a["office"] == "eg-201" for a in guard.alarms()), 10,
                     "alarm through the second broker")
        finally:
            sim.close()
        second.kill()  # and the first comes back (same port): the station goes round
        first = Mosquitto(tmp_path / "m1b", port=first.port).start()
        wait_for(lambda: _connected_to(guard, first.port), 30, "back on the first broker")
        assert moved_s < 20
        assert guard.proc is not None and guard.proc.poll() is None
        print(f"guard failover to the second broker: {moved_s:.2f} s")
    finally:
        guard.close()
        first.kill()
        second.kill()
