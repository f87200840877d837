"""`officesec selftest`: real mock pins, a real broker, the printed table and exit code."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from controller.deploy.office_selftest import check_clock, run_selftest, table
from controller.office.office_config import OfficeConfig
from controller.protocol.signing import keygen
from controller.settings import build
from tests.broker import Mosquitto, free_port

REPO = Path(__file__).resolve().parent.parent
OFFICESEC = str(REPO / ".venv" / "bin" / "officesec")


@pytest.fixture(scope="module")
def guard_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return keygen(tmp_path_factory.mktemp("keys"))[1]


def config(port: int, pin_factory: str = "mock", key: Path | None = None,
           **hardware: Any) -> OfficeConfig:
    security = {"guard_public_key": str(key)} if key else {}
    return build(OfficeConfig, {"office": {"id": "st-1", "label": "Beratung 1"},
                                "mqtt": {"port": port}, "security": security,
                                "hardware": {"pin_factory": pin_factory, **hardware}})


def results(checks: list[Any]) -> dict[str, bool | None]:
    return {c.name: c.ok for c in checks}


def relay_history(pin: Any) -> list[bool]:
    """Levels the mock pin went through (the pin object outlives the factory reset)."""
    return [bool(s.state) for s in pin.states]


def test_all_idle_and_broker_reachable_passes(broker: Mosquitto, mock_factory: Any,
                                              guard_key: Path) -> None:
    relay = mock_factory.pin(22)
    checks = run_selftest(config(broker.port, key=guard_key), pulse=False, factory=mock_factory)
    res = results(checks)
    for name in ("config", "gpio", "panic input", "release input", "rex input", "broker",
                 "subscribe", "round trip", "guard key"):
        assert res[name] is True, table(checks)
    assert res["relay"] is None  # not pulsed unless asked
    assert res["door input"] is None  # door state is information, never a failure
    assert not any(relay_history(relay)), "relay energised without --pulse-relay"
    assert "0 failure(s)" in table(checks) or res.get("clock") is False


def test_pulse_relay_energises_then_releases(broker: Mosquitto, mock_factory: Any) -> None:
    relay = mock_factory.pin(22)
    checks = run_selftest(config(broker.port), pulse=True, factory=mock_factory)
    assert results(checks)["relay"] is True, table(checks)
    history = relay_history(relay)
    assert True in history
    assert history[-1] is False  # de-energised at the end


def test_active_low_relay_board_is_pulsed_with_inverted_levels(broker: Mosquitto,
                                                                mock_factory: Any) -> None:
    relay = mock_factory.pin(22)
    checks = run_selftest(config(broker.port, relay_active_high=False), pulse=True,
                          factory=mock_factory)
    assert results(checks)["relay"] is True, table(checks)
    history = relay_history(relay)
    assert False in history  # energised = driven low on an active-low board
    assert history[-1] is True


def test_open_panic_line_and_missing_broker_fail(mock_factory: Any) -> None:
    # pins not driven to idle: pulled-up inputs read high, i.e. the nc panic loop is open
    checks = run_selftest(config(free_port(), pin_factory="lgpio"), pulse=False,
                          factory=mock_factory)
    res = results(checks)
    assert res["gpio"] is True
    assert res["panic input"] is False
    assert "nc line is cut" in table(checks)
    assert res["release input"] is True
    assert res["broker"] is False
    assert "Connection refused" in table(checks)
    assert res["guard key"] is False  # no key: every command would be rejected
    assert "will reject every command" in table(checks)


def test_cli_exit_code_is_the_number_of_failures(tmp_path: Path, broker: Mosquitto,
                                                 guard_key: Path) -> None:
    cfg = tmp_path / "office.toml"
    cfg.write_text(f'[office]\nid = "st-2"\n[mqtt]\nport = {broker.port}\n'
                   f'[hardware]\npin_factory = "mock"\n'
                   f'[security]\nguard_public_key = "{guard_key}"\n')
    res = subprocess.run([OFFICESEC, "selftest", "--config", str(cfg), "--pulse-relay"],
                         capture_output=True, text=True, timeout=60, check=False)
    clock_failed = "clock" in res.stdout and "NOT synchronised" in res.stdout
    assert res.returncode == int(clock_failed), res.stdout + res.stderr
    assert "round trip" in res.stdout and "PASS  GPIO22 energised" in res.stdout
    broker.kill()
    res = subprocess.run([OFFICESEC, "selftest", "--config", str(cfg)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 1 + int(clock_failed), res.stdout
    assert f"{res.returncode} failure(s)" in res.stdout


def test_cli_bad_config_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "office.toml"
    cfg.write_text('[office]\nid = "BAD"\n')
    res = subprocess.run([OFFICESEC, "selftest", "--config", str(cfg)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 2
    assert "office.id" in res.stderr


def test_clock_check_never_crashes() -> None:
    check = check_clock()
    assert check.name == "clock"
    assert check.ok in (True, False, None)




@pytest.mark.parametrize(("answer", "ok"), [("yes", True), ("no", False), ("maybe", None)])
def test_clock_check_reads_timedatectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       answer: str, ok: bool | None) -> None:
    fake = tmp_path / "timedatectl"  # stands in for systemd's answer about NTP sync
    fake.write_text(f"#!/bin/sh\n[ \"$*\" = 'show -p NTPSynchronized --value' ] && echo {answer}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert check_clock().ok is ok
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert check_clock().ok is None
    assert "unknown" in check_clock().detail
