"""The `officesec guard` process: bad config exit 2, availability, clean SIGTERM exit."""

from __future__ import annotations

import queue
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from controller.protocol.messages import Topics
from tests.broker import Mosquitto
from tests.guard_proc import GuardProc, wait_for

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, check=False)


def test_bad_config_exits_2_naming_every_key(tmp_path: Path) -> None:
    bad = tmp_path / "guard.toml"
    bad.write_text('[guard]\nid = "Guard 1"\nlisten_port = 99999\n[store]\nnope = 1\n'
                   '[[users]]\nname = "x"\npassword_hash = "plain"\n')
    result = _run("guard", "--config", str(bad))
    assert result.returncode == 2
    for key in ("guard.id", "guard.listen_port", "store.nope", "users.0.password_hash"):
        assert key in result.stderr, result.stderr
    assert _run("guard", "--config", str(tmp_path / "missing.toml")).returncode == 2


def test_example_config_is_valid() -> None:
    result = _run("check-config", str(ROOT / "config" / "guard.example.toml"))
    assert result.returncode == 0, result.stderr


def test_hash_password_command() -> None:
    result = subprocess.run([sys.executable, "-m", "controller", "hash-password"],
                            input="s3cret-pw\n", capture_output=True, text=True, timeout=60,
                            cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    from argon2 import PasswordHasher
    assert PasswordHasher().verify(result.stdout.strip().splitlines()[-1], "s3cret-pw")


def test_availability_and_clean_sigterm(tmp_path: Path, broker: Mosquitto) -> None:
    seen: queue.Queue[tuple[bytes, bool]] = queue.Queue()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.on_message = lambda _c, _u, m: seen.put((m.payload, m.retain))
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe(Topics("officesec").guard_availability("guard-1"), qos=1)
    sub.loop_start()
    guard = GuardProc(tmp_path / "guard", broker.port).start()
    try:
        assert seen.get(timeout=10)[0] == b"online"
        wait_for(lambda: any(e.get("event") == "dashboard_url" and e["url"] == guard.url + "/"
                             for e in guard.log_events()), what="dashboard URL logged")
        started = time.monotonic()
        assert guard.stop(timeout=10) == 0
        took = time.monotonic() - started
        assert took < 5.0, took  # spec: about 2 s; generous bound on a loaded test machine
        assert seen.get(timeout=5)[0] == b"offline"
        wait_for(lambda: "guard_stopped" in guard.log_text(), what="stop logged")
    finally:
        sub.loop_stop()
        guard.close()


def test_sigkill_leaves_the_will(tmp_path: Path, broker: Mosquitto) -> None:
    guard = GuardProc(tmp_path / "guard", broker.port).start()
    seen: queue.Queue[bytes] = queue.Queue()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.on_message = lambda _c, _u, m: seen.put(m.payload)
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe(Topics("officesec").guard_availability("guard-1"), qos=1)
    sub.loop_start()
    try:
        assert seen.get(timeout=10) == b"online"
        guard.kill()
        assert seen.get(timeout=10) == b"offline"  # the broker's will after ~1.5 x keepalive
    finally:
        sub.loop_stop()
        guard.close()
