"""Generated configs for the demo: a corridor of simulated offices and one guard station.

Everything is written into the demo's temporary directory and validated with
the same loaders production uses, so the demo runs the production code path:
only `pin_factory = "mock"` and `[guard] demo = true` differ.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from argon2 import PasswordHasher

from controller.demo.plan import corridor_plan
from controller.guard.guard_config import load_guard_config
from controller.office.office_config import load_office_config
from controller.protocol.signing import keygen

MAX_OFFICES = 40  # a corridor bigger than this is no longer a demo, just load on a laptop
SITE = "Jobcenter Demo"
BUILDING = "Haus A"
ESCALATE_AFTER_S = 30  # short enough to be seen during a tour
TIMEZONE = "Europe/Berlin"  # the users' clocks, also on a UTC host (CI, a cloud VM)
INSTRUCTIONS = ("Polizei 110 · Rettungsdienst 112 · Sammelplatz: Parkplatz Nord",
                "Erste-Hilfe-Kasten im Flur neben dem Treppenhaus")  # what a site would write

TomlValue = str | int | float | bool | list[str]


@dataclass(frozen=True)
class DemoUser:
    """A dashboard login printed on screen (the password exists only in memory)."""

    name: str
    password: str
    role: Literal["guard", "admin"]


@dataclass(frozen=True)
class DemoOffice:
    """One simulated office of the corridor."""

    id: str
    room: str
    label: str
    floor: str
    neighbors: tuple[str, ...]
    config: Path


@dataclass
class DemoLayout:
    """Every generated file and the values the demo prints."""

    root: Path
    guard_config: Path
    guard_port: int
    users: list[DemoUser]
    offices: list[DemoOffice] = field(default_factory=list)


def _toml_value(value: TomlValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # JSON string escapes are valid TOML basic-string escapes
    return json.dumps(value, ensure_ascii=False)


def _table(header: str, values: Mapping[str, TomlValue | None]) -> str:
    lines = [header]
    lines += [f"{key} = {_toml_value(val)}" for key, val in values.items() if val is not None]
    return "\n".join(lines) + "\n"


def _mqtt(host: str, port: int, protocol: str, username: str) -> dict[str, TomlValue | None]:
    # a username for every client: amqtt accepts it without a password (libraries.md §3.2)
    return {"host": host, "port": port, "prefix": "officesec", "protocol": protocol,
            "keepalive_s": 5, "username": username, "reconnect_min_s": 0.2,
            "reconnect_max_s": 2.0}


def corridor(count: int) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(id, room, floor, neighbours) for `count` offices side by side on one floor."""
    rooms = [str(101 + k) for k in range(count)]
    ids = [f"eg-{room}" for room in rooms]
    return [
        (ids[k], rooms[k], "EG", tuple(ids[j] for j in (k - 1, k + 1) if 0 <= j < count))
        for k in range(count)
    ]


def _office_toml(office: DemoOffice, mqtt: Mapping[str, TomlValue | None],
                 public_key: Path, storage: Path) -> str:
    return "".join([
        _table("[office]", {"id": office.id, "site": SITE, "building": BUILDING,
                            "floor": office.floor, "room": office.room, "label": office.label,
                            "neighbors": list(office.neighbors)}),
        _table("\n[mqtt]", mqtt),
        _table("\n[hardware]", {"pin_factory": "mock"}),
        _table("\n[door]", {"release_s": 5, "held_open_s": 30}),
        _table("\n[alarm]", {"heartbeat_s": 1}),
        _table("\n[security]", {"guard_public_key": str(public_key),
                                "allow_remote_release": True}),
        _table("\n[storage]", {"path": str(storage)}),
    ])


def _guard_toml(layout: DemoLayout, mqtt: Mapping[str, TomlValue | None],
                signing_key: Path, hashes: Sequence[str], escalate_after_s: float, *,
                language: str, furnished: bool) -> str:
    parts = [
        _table("[guard]", {"id": "demo-guard", "listen_host": "127.0.0.1",
                           "listen_port": layout.guard_port, "demo": True,
                           "language": language, "timezone": TIMEZONE}),
        _table("\n[mqtt]", mqtt),
        _table("\n[store]", {"path": str(layout.root / "guard.sqlite3")}),
        _table("\n[security]", {"signing_key": str(signing_key)}),
        _table("\n[escalation]", {"after_s": escalate_after_s}),
    ]
    for user, pw_hash in zip(layout.users, hashes, strict=True):
        parts.append(_table("\n[[users]]", {"name": user.name, "password_hash": pw_hash,
                                            "role": user.role}))
    places: list[tuple[float, float] | None] = [None] * len(layout.offices)
    if furnished:
        svg, found = corridor_plan([o.room for o in layout.offices])
        plan = layout.root / "plan-haus-a-eg.svg"
        plan.write_text(svg, encoding="utf-8")
        parts.append(_table("\n[[floors]]", {"site": SITE, "building": BUILDING, "floor": "EG",
                                             "plan": str(plan)}))
        parts += [_table("\n[[instructions]]", {"site": SITE, "text": text})
                  for text in INSTRUCTIONS]
        places = list(found)
    for office, place in zip(layout.offices, places, strict=True):
        parts.append(_table("\n[[offices]]", {
            "id": office.id, "site": SITE, "building": BUILDING, "floor": office.floor,
            "room": office.room, "label": office.label, "neighbors": list(office.neighbors),
            "x": place[0] if place else None, "y": place[1] if place else None}))
    return "".join(parts)


def _password() -> str:
    # short enough to type from the screen, random so a forgotten demo is not an open door
    return "-".join(secrets.token_hex(2) for _ in range(3))


def write_demo_configs(root: Path, *, offices: int, guard_port: int, mqtt_host: str,
                       mqtt_port: int, protocol: str,
                       escalate_after_s: float = ESCALATE_AFTER_S,
                       language: str = "de", furnished: bool = False) -> DemoLayout:
    """Keys, users, one guard config and `offices` office configs under `root`.

    `furnished` adds what a real site has configured: the corridor's floor plan with the
    offices' places, and site instructions (the tour and the docs' screenshots show them;
    tests that bring their own leave it off).

    Raises ConfigError (from the production loaders) if a generated file is invalid.
    """
    if not 1 <= offices <= MAX_OFFICES:
        msg = f"--offices: must be between 1 and {MAX_OFFICES} (got {offices})"
        raise ValueError(msg)
    private_key, public_key = keygen(root / "keys")
    users = [DemoUser("admin", _password(), "admin"), DemoUser("guard", _password(), "guard")]
    layout = DemoLayout(root=root, guard_config=root / "guard.toml", guard_port=guard_port,
                        users=users)
    for office_id, room, floor, neighbors in corridor(offices):
        office = DemoOffice(id=office_id, room=room, label=f"Beratung {room}", floor=floor,
                            neighbors=neighbors, config=root / f"office-{office_id}.toml")
        layout.offices.append(office)
        text = _office_toml(office, _mqtt(mqtt_host, mqtt_port, protocol, office_id),
                            public_key, root / f"office-{office_id}.sqlite3")
        office.config.write_text(text, encoding="utf-8")
        load_office_config(office.config)
    hasher = PasswordHasher()
    hashes = [hasher.hash(user.password) for user in users]
    layout.guard_config.write_text(
        _guard_toml(layout, _mqtt(mqtt_host, mqtt_port, protocol, "guard"), private_key, hashes,
                    escalate_after_s, language=language, furnished=furnished),
        encoding="utf-8")
    load_guard_config(layout.guard_config).roster()
    return layout
