"""The console's config keys (#15): language, time zone, floor plans, instructions, x/y."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.errors import ConfigError
from controller.guard.guard_config import GuardConfig, load_guard_config


def _load(tmp_path: Path, text: str) -> GuardConfig:
    path = tmp_path / "guard.toml"
    path.write_text(text, encoding="utf-8")
    return load_guard_config(path)


def test_defaults_german_and_the_hosts_time_zone(tmp_path: Path):
    cfg = _load(tmp_path, "")
    assert cfg.guard.language == "de" and cfg.guard.timezone is None


@pytest.mark.parametrize(("text", "expected"), [
    ('[guard]\ntimezone = "Mars/Olympus"\n', "guard.timezone: unknown IANA time zone"),
    ('[guard]\nlanguage = "fr"\n', "guard.language"),
    ('[[floors]]\nsite = "S"\nplan = "/nonexistent/plan.svg"\n', "floors.0.plan"),
    ('[[offices]]\nid = "eg-101"\nx = 1.5\n', "offices.0.x"),
    ('[[instructions]]\nsite = "S"\ntext = ""\n', "instructions.0.text"),
    ('[[instructions]]\nsite = "S"\ntext = "t"\ncolour = "red"\n', "instructions.0.colour"),
])
def test_a_bad_console_key_names_itself(tmp_path: Path, text: str, expected: str):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert expected in str(err.value)


def test_a_plan_must_be_svg_or_png(tmp_path: Path):
    plan = tmp_path / "plan.pdf"
    plan.write_bytes(b"%PDF")
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, f'[[floors]]\nsite = "S"\nplan = "{plan}"\n')
    assert "plan:" in str(err.value) and ".svg or .png" in str(err.value)


def test_floors_instructions_and_places(tmp_path: Path):
    plan = tmp_path / "eg.svg"
    plan.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>", encoding="utf-8")
    cfg = _load(tmp_path, f'''
[guard]
language = "en"
timezone = "Europe/Berlin"
[[offices]]
id = "eg-101"
x = 0.25
y = 0.5
[[floors]]
site = "S"
floor = "EG"
plan = "{plan}"
[[instructions]]
site = "S"
office = "eg-101"
text = "Erste Hilfe: Flur"
''')
    assert cfg.guard.timezone == "Europe/Berlin"
    assert (cfg.offices[0].x, cfg.offices[0].y) == (0.25, 0.5)
    assert cfg.floors[0].plan == str(plan)
    assert cfg.instructions[0].office == "eg-101"
