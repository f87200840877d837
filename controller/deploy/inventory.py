"""The installer's inventory (CSV or TOML) and fleet settings, validated line by line.

Every problem names its line so that a spreadsheet of 50 offices is fixed in
one pass; nothing is generated from an inventory that has any problem.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, StringConstraints, ValidationError, model_validator

from controller.errors import ConfigError
from controller.guard.guard_config import GuardId
from controller.office.office_config import OfficeCfg
from controller.settings import Section, format_errors

CSV_COLUMNS = ("id", "site", "building", "floor", "room", "label", "neighbors")
# sections of an office config that [defaults] and per-office tables may set
OVERRIDE_SECTIONS = ("hardware", "door", "alarm", "security", "storage", "homeassistant", "log",
                     "mqtt")
_NEIGHBOR_SPLIT = re.compile(r"[\s;,]+")
_OFFICES_HEADER = re.compile(r"^\s*\[\[\s*offices\s*\]\]")
Host = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,253}$")]
DirPath = Annotated[str, StringConstraints(pattern=r"^(/[^\n]*)?$", max_length=200)]


class FleetCfg(Section):
    """Settings shared by the whole fleet; kept in DIR/fleet.toml between runs.

    A directory setting of "" means "the generated directory itself", which is
    what tests and a single-machine trial want.
    """

    broker_host: Host = "officesec-broker.local"
    broker_port: int = Field(8883, ge=1, le=65535)
    broker_alt_names: list[Host] = Field(default_factory=list, max_length=32)
    prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_/-]{0,63}$")] = (
        "officesec")
    guard_id: GuardId = "guard-1"
    homeassistant_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = (
        "homeassistant")
    homeassistant_user: GuardId | None = None  # a read-only broker account for Home Assistant
    office_dir: DirPath = "/etc/officesec"
    guard_dir: DirPath = "/etc/officesec"
    broker_dir: DirPath = "/etc/mosquitto/officesec"

    @model_validator(mode="after")
    def _distinct_users(self) -> FleetCfg:
        if self.homeassistant_user is not None and self.homeassistant_user == self.guard_id:
            raise ValueError("homeassistant_user: must differ from guard_id")
        return self


@dataclass(frozen=True)
class InventoryOffice:
    """One validated inventory entry; `where` names its line for later messages."""

    where: str
    office: OfficeCfg
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Inventory:
    """Every office plus the fleet settings and config defaults from the file."""

    offices: list[InventoryOffice]
    fleet: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)


def _office(where: str, data: dict[str, Any], problems: list[str]) -> OfficeCfg | None:
    try:
        return OfficeCfg(**data)
    except ValidationError as exc:
        problems.extend(f"{where}: {line}" for line in format_errors(exc))
    except TypeError:
        problems.append(f"{where}: malformed entry")
    return None


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{path}: inventory file not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read inventory: {exc.strerror}"]) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError([f"{path}: line {line}: not UTF-8 text"]) from None


def _delimiter(text: str) -> str:
    """`,` by default; `;` or tab when the header uses them (spreadsheets in many locales)."""
    header = next((line for line in text.splitlines()
                   if line.strip() and not line.lstrip().startswith("#")), "")
    return max((",", ";", "\t"), key=header.count) if header else ","


def parse_csv(text: str, name: str = "inventory") -> Inventory:
    """CSV with a header row; `neighbors` separated by spaces or semicolons.

    A header separated by `;` or tabs (German or French spreadsheet exports)
    switches the delimiter; neighbours are then separated by spaces or commas.
    """
    text = text.removeprefix("\ufeff")
    problems: list[str] = []
    offices: list[InventoryOffice] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    header: list[str] | None = None
    start = 1
    for row in reader:
        line = start
        start = reader.line_num + 1
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if header is None:
            header = [c.lower() for c in cells]
            unknown = [c for c in header if c not in CSV_COLUMNS]
            if unknown:
                problems.append(f"{name}: line {line}: unknown column(s) {', '.join(unknown)} "
                                f"(allowed: {','.join(CSV_COLUMNS)})")
            if "id" not in header:
                problems.append(f"{name}: line {line}: the header needs an 'id' column")
            if len(set(header)) != len(header):
                problems.append(f"{name}: line {line}: a column is named twice")
            if problems:
                raise ConfigError(problems)
            continue
        where = f"{name}: line {line}"
        if len(cells) != len(header):
            problems.append(f"{where}: expected {len(header)} fields, got {len(cells)}")
            continue
        data: dict[str, Any] = dict(zip(header, cells, strict=True))
        data["neighbors"] = [n for n in _NEIGHBOR_SPLIT.split(data.get("neighbors", "")) if n]
        office = _office(where, data, problems)
        if office is not None:
            offices.append(InventoryOffice(where, office))
    if header is None:
        problems.append(f"{name}: no header line ({','.join(CSV_COLUMNS)})")
    _finish(offices, problems, name)
    return Inventory(offices)


def parse_toml(text: str, name: str = "inventory") -> Inventory:
    """TOML with `[[offices]]` tables, optional `[fleet]` and `[defaults]`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{name}: invalid TOML: {exc}"]) from None
    problems: list[str] = []
    unknown = sorted(set(data) - {"offices", "fleet", "defaults"})
    if unknown:
        problems.append(f"{name}: unknown top-level key(s): {', '.join(unknown)} "
                        "(allowed: offices, fleet, defaults)")
    headers = [i + 1 for i, line in enumerate(text.splitlines()) if _OFFICES_HEADER.match(line)]
    entries = data.get("offices", [])
    if not isinstance(entries, list):
        raise ConfigError([*problems, f"{name}: offices must be an array of tables"])
    offices: list[InventoryOffice] = []
    for index, entry in enumerate(entries):
        line = headers[index] if len(headers) == len(entries) else None
        where = f"{name}: line {line}" if line else f"{name}: offices[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a table")
            continue
        overrides = {k: entry[k] for k in OVERRIDE_SECTIONS if k in entry}
        fields = {k: v for k, v in entry.items() if k not in OVERRIDE_SECTIONS}
        office = _office(where, fields, problems)
        bad = [k for k, v in overrides.items() if not isinstance(v, dict)]
        problems.extend(f"{where}: {k}: must be a table" for k in bad)
        if office is not None and not bad:
            offices.append(InventoryOffice(where, office, overrides))
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append(f"{name}: defaults must be a table")
        defaults = {}
    allowed = ", ".join(OVERRIDE_SECTIONS)
    problems.extend(f"{name}: defaults.{k}: unknown section (allowed: {allowed})"
                    for k in defaults if k not in OVERRIDE_SECTIONS)
    fleet = data.get("fleet", {})
    if not isinstance(fleet, dict):
        problems.append(f"{name}: fleet must be a table")
        fleet = {}
    _finish(offices, problems, name)
    return Inventory(offices, fleet, defaults)


def _finish(offices: list[InventoryOffice], problems: list[str], name: str) -> None:
    """Cross-entry checks: unique ids, neighbours that exist; raise on any problem."""
    first: dict[str, str] = {}
    for entry in offices:
        oid = entry.office.id
        if oid in first:
            problems.append(f"{entry.where}: id {oid} is already used ({first[oid]})")
        else:
            first[oid] = entry.where.removeprefix(f"{name}: ")
    for entry in offices:
        missing = [n for n in entry.office.neighbors if n not in first]
        if missing:
            problems.append(f"{entry.where}: neighbors: unknown office(s) {', '.join(missing)}")
    if not offices and not problems:
        problems.append(f"{name}: lists no offices")
    if problems:
        raise ConfigError(problems)


def load_inventory(path: Path) -> Inventory:
    """Parse a .toml inventory as TOML, anything else as CSV."""
    text = _read_text(path)
    if path.suffix.lower() == ".toml":
        return parse_toml(text, path.name)
    return parse_csv(text, path.name)


def fleet_settings(*layers: dict[str, Any]) -> FleetCfg:
    """Merge the setting layers (later wins) and validate them."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    try:
        return FleetCfg(**merged)
    except ValidationError as exc:
        raise ConfigError([f"fleet.{line}" for line in format_errors(exc)]) from None
