"""Configuration: every problem is reported with its key path; nothing is ignored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controller.errors import ConfigError
from controller.office.office_config import load_office_config

ROOT = Path(__file__).resolve().parent.parent
BASE = '[office]\nid = "eg-101"\n'


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None,
             monkeypatch: pytest.MonkeyPatch | None = None) -> list[str]:
    path = tmp_path / "office.toml"
    path.write_text(text)
    if env and monkeypatch:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
    try:
        load_office_config(path)
    except ConfigError as exc:
        return exc.problems
    return []


CASES = [
    ('[office]\nid = "Room 1"\n', "office.id:"),
    (BASE + "bogus = 1\n", "office.bogus: unknown key"),
    (BASE + "[mqtt]\nprot = 1\n", "mqtt.prot: unknown key"),
    (BASE + "[nonsense]\na = 1\n", "nonsense: unknown key"),
    (BASE + "[mqtt]\nport = 70000\n", "mqtt.port:"),
    (BASE + '[mqtt]\nprotocol = "4"\n', "mqtt.protocol:"),
    (BASE + '[mqtt]\ntls_ca = "/nonexistent/ca.crt"\n', "mqtt.tls_ca: file /nonexistent"),
    (BASE + '[mqtt]\npassword_file = "/nonexistent/pw"\nusername = "u"\n', "mqtt.password_file:"),
    (BASE + '[mqtt]\ntls_ca = "{f}"\ntls_cert = "{f}"\n', "mqtt.tls_cert: tls_cert and tls_key"),
    (BASE + '[mqtt]\npassword_file = "{f}"\n', "mqtt.username: password_file is set"),
    (BASE + '[hardware]\npin_factory = "rpigpio"\n', "hardware.pin_factory:"),
    (BASE + "[hardware]\nrelay_pin = 17\n",
     "hardware.relay_pin: GPIO17 is already used by panic_pin"),
    (BASE + "[hardware]\nack_led_pin = 5\n",
     "hardware.ack_led_pin: GPIO5 is already used by rex_pin"),
    (BASE + "[hardware]\npanic_pin = 40\n", "hardware.panic_pin:"),
    (BASE + '[hardware]\npanic_contact = "nx"\n', "hardware.panic_contact:"),
    (BASE + "[door]\nrelease_s = 0\n", "door.release_s:"),
    (BASE + "[door]\nrelease_s = 31\n", "door.release_s:"),
    (BASE + "[door]\nrelease_s = 10\nheld_open_s = 10\n", "door.held_open_s: must be greater"),
    (BASE + '[door]\nrelease_s = "x"\n', "door.release_s:"),
    ('[office]\nid = "eg-101"\nneighbors = ["eg-101"]\n', "office.neighbors: must not contain"),
    ('[office]\nid = "eg-101"\nneighbors = ["A B"]\n', "office.neighbors.0:"),
    (BASE + '[security]\nguard_public_key = "/nonexistent.pub"\n', "security.guard_public_key:"),
    (BASE + "[storage]\nmax_events = 1\n", "storage.max_events:"),
    ("[mqtt]\nport = 1883\n", "office: required key is missing"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_every_problem_names_its_key(tmp_path: Path, text: str, expected: str) -> None:
    existing = tmp_path / "exists.pem"
    existing.write_text("x")
    found = problems(tmp_path, text.replace("{f}", str(existing)))
    assert any(p.startswith(expected) for p in found), found


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, BASE + "x = 1\n[mqtt]\nport = 0\n[door]\nrelease_s = 99\n")
    assert len(found) == 3


def test_environment_overrides_and_its_errors(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "o.toml"
    path.write_text(BASE + "[mqtt]\nhost = \"broker\"\n")
    monkeypatch.setenv("OFFICESEC_MQTT__PORT", "1884")
    monkeypatch.setenv("OFFICESEC_DOOR__RELEASE_S", "7")
    cfg = load_office_config(path)
    assert (cfg.mqtt.port, cfg.mqtt.host, cfg.door.release_s) == (1884, "broker", 7)
    monkeypatch.setenv("OFFICESEC_MQTT__PORTT", "1")
    with pytest.raises(ConfigError) as err:
        load_office_config(path)
    assert any(p.startswith("mqtt.portt: unknown key") for p in err.value.problems)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize(("content", "message"), [
    (None, "config file not found"),
    ("[office\nid=", "invalid TOML"),
    (b"\xff\xfe\x00", "not UTF-8"),
])
def test_check_config_unreadable_file_one_clear_line(tmp_path: Path, content: object,
                                                     message: str) -> None:
    path = tmp_path / "c.toml"
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    res = run_cli("check-config", str(path))
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_check_config_directory(tmp_path: Path) -> None:
    res = run_cli("check-config", str(tmp_path))
    assert res.returncode == 2 and "is a directory" in res.stderr


def test_check_config_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(BASE + "[hardware]\nrelay_pin = 17\n[door]\nrelease_s = 40\n")
    res = run_cli("check-config", str(path))
    assert res.returncode == 2
    assert "hardware.relay_pin:" in res.stderr and "door.release_s:" in res.stderr


def test_shipped_examples_are_valid() -> None:
    for example in sorted((ROOT / "config").glob("*.example.toml")):
        res = run_cli("check-config", str(example))
        assert res.returncode == 0, (example, res.stderr)


def test_keygen_writes_0600_private_key_and_refuses_overwrite(tmp_path: Path) -> None:
    res = run_cli("keygen", "--out", str(tmp_path / "k"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "k" / "guard-signing.key").stat().st_mode & 0o777 == 0o600
    again = run_cli("keygen", "--out", str(tmp_path / "k"))
    assert again.returncode == 1 and "already exists" in again.stderr


def test_issue16_keys_are_strict_and_named() -> None:
    """Supervised line bands, SPI pins, the fire input and the walk test (issue 16)."""
    from controller.errors import ConfigError
    from controller.office.office_config import OfficeConfig
    from controller.settings import build

    def problems(**sections: object) -> list[str]:
        try:
            build(OfficeConfig, {"office": {"id": "eg-101"}, **sections})
        except ConfigError as exc:
            return exc.problems
        return []

    assert problems(panic_line={"supervision": "eol", "idle_high": 0.6}) == [
        "panic_line.alarm_low: must be greater than idle_high (0.6)"]
    assert any("hardware.rex_pin: GPIO9 is used by the ADC's SPI bus" in p
               for p in problems(panic_line={"supervision": "eol"}, hardware={"rex_pin": 9}))
    assert problems(panic_line={"supervision": "eol", "poll_s": 0.05})  # a 20 ms tap missed
    assert problems(panic_line={"supervison": "eol"})  # a typo is an error
    assert any(p.startswith("hardware.fire_pin") for p in problems(hardware={"fire_pin": 17}))
    assert problems(fire={"release_on_fire": "yes please"})
    assert problems(alarm={"walk_test_days": -1})
    assert problems(alarm={"walk_test_days": 0}, fire={"release_on_fire": True},
                    hardware={"fire_pin": 6}) == []
