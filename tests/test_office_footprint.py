"""The office daemon process stays lean (issue #18): checked on the real process, not by RSS.

`officesec run` validates the config (pydantic-settings, `cryptography` for the
key file) and hands a snapshot to the daemon process it `execv`s into; the
daemon re-validates it with the same schema. The process test asks the running
daemon (SIGUSR1 -> `footprint` log line) which packages it has loaded after a
press and a signed command, and reads its /proc maps.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.errors import ConfigError
from controller.office import handoff
from controller.office.office_config import load_office_config
from controller.protocol.messages import Command, Event
from controller.protocol.signing import keygen, load_private_key, sign_command
from tests.broker import Mosquitto
from tests.office_proc import OfficeProc, office_sections, write_toml
from tests.probe import Probe

P = "officesec"
NOT_IN_THE_DAEMON = ("pydantic_settings", "dotenv", "cryptography", "rich", "pygments",
                     "starlette", "uvicorn", "jinja2", "argon2", "psycopg")


def footprint(office: OfficeProc, pid: int) -> dict:
    before = office.log_text().count('"footprint"')
    os.kill(pid, signal.SIGUSR1)
    office.wait_log('"footprint"', timeout=30, count=before + 1)
    lines = [json.loads(line) for line in office.log_text().splitlines()
             if '"footprint"' in line]
    return lines[-1]


def test_the_running_daemon_has_not_loaded_the_config_or_console_stacks(
        broker: Mosquitto, tmp_path: Path) -> None:
    private, public = keygen(tmp_path / "keys")
    office = OfficeProc(tmp_path / "o", broker.port, "eg-101",
                        security={"guard_public_key": str(public)})
    probe = Probe(broker.host, broker.port, f"{P}/office/eg-101/#").start()
    office.start()
    assert office.proc is not None
    try:
        probe.wait_for(lambda m: m.topic.endswith("/availability") and m.payload == b"online",
                       timeout=30)
        probe.publish(f"{P}/office/eg-101/sim/input/panic", "press")
        [panic] = probe.wait_for(lambda m: m.topic.endswith("/event")
                                 and m.json()["type"] == "panic", timeout=30)[-1:]
        nonce = secrets.token_urlsafe(18)
        cmd = Command(cmd="ack", office="eg-101", alarm_id=panic.json()["alarm_id"],
                      by="guard-anna", issued_at=datetime.now(UTC), nonce=nonce)
        probe.publish(f"{P}/office/eg-101/cmd",
                      sign_command(cmd, load_private_key(private)).to_bytes())
        probe.wait_for(lambda m: m.topic.endswith("/event")  # verified with libsodium
                       and m.json().get("nonce") == nonce
                       and m.json()["type"] == "alarm_acknowledged", timeout=30)
        pid = office.proc.pid
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert any(b"daemon_main" in arg for arg in cmdline)  # the same PID, now the daemon
        seen = footprint(office, pid)
        maps = Path(f"/proc/{pid}/maps").read_text()
    finally:
        office.stop()
        probe.stop()
    assert Event.model_validate_json(panic.payload).type == "panic"
    assert '"event_invalid"' not in office.log_text()  # the press's bytes passed the model
    packages = set(seen["packages"])
    assert {"paho", "pydantic", "structlog", "gpiozero", "nacl", "sqlite3"} <= packages
    assert sorted(packages & set(NOT_IN_THE_DAEMON)) == []
    assert seen["vmrss_kib"] > 0
    assert seen["gc_frozen"] > 10_000  # start-up's objects stay out of later collections
    assert "_sodium" in maps
    assert "/cryptography/" not in maps and "pydantic_settings" not in maps


def test_the_daemon_runs_the_code_that_checked_the_config(broker: Mosquitto,
                                                          tmp_path: Path) -> None:
    """A `controller` package in the working directory is not what the daemon imports."""
    foreign = tmp_path / "cwd" / "controller"
    foreign.mkdir(parents=True)
    (foreign / "__init__.py").write_text('raise SystemExit("the foreign controller ran")\n')
    config = write_toml(tmp_path / "o.toml", office_sections(tmp_path, broker.port))
    probe = Probe(broker.host, broker.port, f"{P}/office/eg-101/availability").start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFICESEC_")}
    proc = subprocess.Popen([str(Path(sys.executable).with_name("officesec")), "run",
                             "--config", str(config)], cwd=foreign.parent, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        probe.wait_for(lambda m: m.payload == b"online", timeout=30)
        assert proc.poll() is None
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=10)
        probe.stop()
    assert "foreign" not in err and proc.returncode == 0, err


def test_snapshot_round_trips_the_validated_config(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _private, public = keygen(tmp_path / "keys")
    sections = office_sections(tmp_path, 1883, "eg-101",
                               mqtt={"hosts": ["a:1883", "[::1]:1884"], "keepalive_s": 7},
                               security={"guard_public_key": str(public)},
                               office={"neighbors": ["eg-102"]},
                               log={"json": True, "level": "warning"})
    path = write_toml(tmp_path / "office.toml", sections)
    monkeypatch.setenv("OFFICESEC_DOOR__RELEASE_S", "2")  # the environment layer goes along
    cfg = load_office_config(path)
    key = handoff.read_guard_key(cfg)
    again, raw = handoff.load_snapshot(handoff.snapshot(cfg, key))
    assert again.model_dump() == cfg.model_dump()
    assert again.door.release_s == 2 and again.log.json_logs is True
    assert again.mqtt.model_fields_set == cfg.mqtt.model_fields_set  # hosts, not host/port
    assert raw == key and raw is not None and len(raw) == 32


def test_the_daemon_validates_the_snapshot_again_and_names_the_key(tmp_path: Path) -> None:
    cfg = load_office_config(write_toml(tmp_path / "o.toml", office_sections(tmp_path, 1883)))
    data = json.loads(handoff.snapshot(cfg, None))
    data["config"]["mqtt"]["port"] = 70000
    data["config"]["door"]["release_z"] = 1
    with pytest.raises(ConfigError) as err:
        handoff.load_snapshot(json.dumps(data).encode())
    assert any(p.startswith("mqtt.port:") for p in err.value.problems)
    assert any(p.startswith("door.release_z: unknown key") for p in err.value.problems)
    with pytest.raises(ConfigError, match="unknown version"):
        handoff.load_snapshot(json.dumps({**data, "version": 99}).encode())


def test_a_bad_config_stops_run_before_the_daemon_starts(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-key.pub"
    bad.write_text("not a key\n")
    path = write_toml(tmp_path / "o.toml", office_sections(
        tmp_path, 1883, mqtt={"port": 70000}, security={"guard_public_key": str(bad)}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFICESEC_")}
    run = subprocess.run([sys.executable, "-m", "controller", "run", "--config", str(path)],
                         capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 2
    assert "mqtt.port:" in run.stderr
    path = write_toml(tmp_path / "o.toml", office_sections(
        tmp_path, 1883, security={"guard_public_key": str(bad)}))
    run = subprocess.run([sys.executable, "-m", "controller", "run", "--config", str(path)],
                         capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 2, run.stderr
    assert "security.guard_public_key: cannot load" in run.stderr
