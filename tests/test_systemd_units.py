"""The shipped systemd units: verified and rated by systemd-analyze, and honoured by the daemon."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from controller.deploy.inventory import FleetCfg
from tests.broker import Mosquitto

REPO = Path(__file__).resolve().parent.parent
UNITS = ("officesec-office.service", "officesec-guard.service")
VENV_BIN = REPO / ".venv" / "bin"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")


def unit(name: str) -> dict[str, list[str]]:
    """Section.Key -> every value (systemd keys may repeat)."""
    values: dict[str, list[str]] = {}
    section = ""
    for raw in (REPO / "systemd" / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values.setdefault(f"{section}.{key}", []).append(value)
    return values


def localised(tmp_path: Path, name: str) -> Path:
    """A copy whose binaries exist on this machine (verify checks ExecStart is executable)."""
    text = (REPO / "systemd" / name).read_text()
    text = text.replace("/opt/officesec/venv/bin/", f"{VENV_BIN}/")
    path = tmp_path / name
    path.write_text(text)
    return path


@needs_analyze
@pytest.mark.parametrize("name", UNITS)
def test_systemd_analyze_verify_passes(tmp_path: Path, name: str) -> None:
    assert ANALYZE is not None
    res = subprocess.run([ANALYZE, "verify", str(localised(tmp_path, name))],
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    # unknown keys or bad values are only warnings: there must be none
    assert res.stderr.strip() == "", res.stderr


@needs_analyze
@pytest.mark.parametrize("name", UNITS)
def test_security_exposure_is_at_most_2(tmp_path: Path, name: str) -> None:
    assert ANALYZE is not None
    res = subprocess.run([ANALYZE, "security", "--offline=true", "--no-pager",
                          str(localised(tmp_path, name))],
                         capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", res.stdout)
    assert match, res.stdout + res.stderr
    assert float(match.group(1)) <= 2.0, res.stdout


@pytest.mark.parametrize("name", UNITS)
def test_unit_restarts_a_hung_daemon_within_10_s(name: str) -> None:
    u = unit(name)
    assert u["Service.Type"] == ["notify"]
    assert u["Service.Restart"] == ["always"]
    assert "Unit.StartLimitBurst" in u and "Unit.StartLimitIntervalSec" in u
    watchdog = float(u["Service.WatchdogSec"][0])
    abort = float(u["Service.TimeoutAbortSec"][0])
    restart = float(u["Service.RestartSec"][0])
    assert watchdog <= 5
    assert watchdog + abort + restart <= 10
    assert u["Service.User"] == ["officesec"]
    assert u["Service.CapabilityBoundingSet"] == [""]
    assert u["Service.NoNewPrivileges"] == ["yes"]


def test_office_unit_can_reach_gpio_and_makes_the_relay_safe_after_every_stop() -> None:
    u = unit("officesec-office.service")
    assert u["Service.SupplementaryGroups"] == ["gpio"]
    assert "Service.PrivateDevices" not in u  # would hide /dev/gpiochip*
    assert "Service.ProcSubset" not in u  # gpiozero reads the board revision from /proc
    assert u["Service.DeviceAllow"] == ["char-gpiochip rw", "char-spidev rw"]
    runtime = "/run/" + u["Service.RuntimeDirectory"][0]
    assert u["Service.WorkingDirectory"] == [runtime]
    assert f"LG_WD={runtime}" in u["Service.Environment"]
    assert "GPIOZERO_PIN_FACTORY=lgpio" in u["Service.Environment"]
    start, post = u["Service.ExecStart"][0].split(), u["Service.ExecStopPost"][0].split()
    assert start[1:3] == ["run", "--config"]
    assert post[1:] == ["relay-off", "--config", start[3]]
    # issue 16.1: a pulse left driven by a killed daemon is also cut before every (re)start
    pre = u["Service.ExecStartPre"][0].split()
    assert pre == post


def test_units_parse_as_ini() -> None:
    for name in UNITS:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(REPO / "systemd" / name)
        assert {"Unit", "Service", "Install"} <= set(parser.sections())


@pytest.mark.parametrize("command", ["run", "guard", "relay-off"])
def test_unit_commands_exist(command: str) -> None:
    res = subprocess.run([str(VENV_BIN / "officesec"), command, "--help"], capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert "--config" in res.stdout


def test_relay_off_drives_the_relay_low_even_with_a_broken_config(tmp_path: Path) -> None:
    cfg = tmp_path / "office.toml"
    cfg.write_text('[office]\nid = "x-1"\nbogus = 1\n[hardware]\npin_factory = "mock"\n'
                   "relay_pin = 6\n")
    res = subprocess.run([str(VENV_BIN / "officesec"), "relay-off", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert "relay GPIO6 de-energised" in res.stdout
    cfg.write_text('[office]\nid = "x-1"\n[hardware]\npin_factory = "mock"\nrelay_pin = 99\n')
    res = subprocess.run([str(VENV_BIN / "officesec"), "relay-off", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2
    assert "hardware.relay_pin" in res.stderr


def _notifications(tmp_path: Path, args: list[str]) -> tuple[list[str], list[str]]:
    """Run an officesec process under a stand-in for systemd; (messages while up, after TERM)."""
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.5)
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "1000000"}
    log = (tmp_path / "process.log").open("wb")
    proc = subprocess.Popen([str(VENV_BIN / "officesec"), *args], env=env, stdout=log,
                            stderr=log)
    seen: list[str] = []
    rest: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and seen.count("WATCHDOG=1") < 2:
            try:
                seen.append(sock.recv(4096).decode())
            except TimeoutError:
                assert proc.poll() is None, (tmp_path / "process.log").read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, (tmp_path / "process.log").read_text()
        while True:
            try:
                rest.append(sock.recv(4096).decode())
            except TimeoutError:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        sock.close()
        log.close()
    return seen, rest


def _ready_then_watchdog(seen: list[str]) -> None:
    assert any(m.startswith("READY=1") for m in seen), seen
    ready_at = next(i for i, m in enumerate(seen) if m.startswith("READY=1"))
    assert "WATCHDOG=1" in seen[ready_at:], seen
    assert "WATCHDOG=1" not in seen[:ready_at], seen


def test_daemon_notifies_ready_and_pets_the_watchdog(tmp_path: Path, broker: Mosquitto) -> None:
    """`officesec run` as systemd sees it: READY=1, then WATCHDOG=1, STOPPING=1 on TERM."""
    cfg = tmp_path / "office.toml"
    cfg.write_text(f'[office]\nid = "wd-1"\n[mqtt]\nport = {broker.port}\n'
                   f'[hardware]\npin_factory = "mock"\n[storage]\npath = "{tmp_path}/o.db"\n')
    seen, rest = _notifications(tmp_path, ["run", "--config", str(cfg)])
    _ready_then_watchdog(seen)
    assert "STOPPING=1" in rest, rest


def test_guard_notifies_ready_and_pets_the_watchdog(tmp_path: Path, broker: Mosquitto) -> None:
    """`officesec guard` as systemd sees it (Type=notify would time out without READY=1)."""
    cfg = tmp_path / "guard.toml"
    cfg.write_text(f'[guard]\nlisten_port = 0\n[mqtt]\nport = {broker.port}\n'
                   f'[store]\npath = "{tmp_path}/guard.db"\n')
    seen, rest = _notifications(tmp_path, ["guard", "--config", str(cfg)])
    _ready_then_watchdog(seen)
    assert "STOPPING=1" in rest, rest


def test_relay_off_reports_a_missing_pin_library(tmp_path: Path) -> None:
    """Where lgpio cannot load (this test machine, or a broken venv) the failure is loud."""
    try:
        import lgpio  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("lgpio is installed here")
    cfg = tmp_path / "office.toml"
    cfg.write_text('[office]\nid = "x-1"\n')  # pin_factory defaults to lgpio
    res = subprocess.run([str(VENV_BIN / "officesec"), "relay-off", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 1
    assert "cannot load 'lgpio'" in res.stderr


def test_units_look_where_provision_and_the_docs_put_things() -> None:
    fleet = FleetCfg()
    docs = (REPO / "docs" / "install.md").read_text()
    assert "python3 -m venv --system-site-packages /opt/officesec/venv" in docs
    for name, directory, conf in (("officesec-office.service", fleet.office_dir, "office.toml"),
                                  ("officesec-guard.service", fleet.guard_dir, "guard.toml")):
        exe, *args = unit(name)["Service.ExecStart"][0].split()
        assert exe == "/opt/officesec/venv/bin/officesec"
        assert args[-1] == f"{directory}/{conf}"
        assert f"systemd/{name}" in docs
