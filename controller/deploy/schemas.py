"""JSON Schemas of every payload and config, generated from the pydantic models.

`python -m controller.deploy.schemas` writes them to docs/schemas/; `--check` only
compares and exits 1 when a file is missing, stale or unknown, so a change to
protocol.py or a config model cannot ship without its published schema.
Integrators validate against these files instead of reading our Python.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from controller.guard.guard_config import GuardConfig
from controller.office.office_config import OfficeConfig
from controller.protocol.messages import (
    Alarm,
    Command,
    Escalation,
    Event,
    EventType,
    SimOutput,
    State,
    validate_event_fields,
)

DRAFT = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"
SUFFIX = ".schema.json"

MODELS: dict[str, type[BaseModel]] = {
    "event": Event,
    "state": State,
    "alarm": Alarm,
    "command": Command,
    "sim-output": SimOutput,
    "escalation": Escalation,
    "office-config": OfficeConfig,
    "guard-config": GuardConfig,
}
COMMENTS: dict[str, str] = {
    "event": "Topic P/office/ID/event, QoS 1, not retained. See docs/mqtt-api.md.",
    "state": "Topic P/office/ID/state, QoS 1, retained; every change and every heartbeat_s.",
    "alarm": "Topic P/office/ID/alarm, QoS 1, retained while open; an empty payload "
             "(not JSON) once resolved.",
    "command": "Topic P/office/ID/cmd, QoS 1, never retained; sig = base64 Ed25519 over "
               "the canonical JSON of every other field.",
    "sim-output": "Topic P/office/ID/sim/output, QoS 1, retained; mock pins only.",
    "escalation": "Topic P/guard/GID/escalation, QoS 1.",
    "office-config": "TOML file of `officesec run`; any key can be overridden by "
                     "OFFICESEC_<SECTION>__<KEY>.",
    "guard-config": "TOML file of `officesec guard`; any key can be overridden by "
                    "OFFICESEC_<SECTION>__<KEY>.",
}


def event_requirements() -> dict[str, list[str]]:
    """Type-specific required fields, found by asking protocol.validate_event_fields."""
    probe_ts = datetime(2026, 1, 1, tzinfo=UTC)
    found: dict[str, list[str]] = {}
    for kind in get_args(EventType):
        probe = Event(id=uuid.UUID(int=0), office="x", seq=1, ts=probe_ts, type=kind)
        names = [problem.split(":", 1)[0] for problem in validate_event_fields(probe)]
        if names:
            found[kind] = names
    return found


def schema_for(name: str) -> dict[str, Any]:
    """The JSON Schema document of one model, ready to be written."""
    body = MODELS[name].model_json_schema(by_alias=True, mode="validation")
    doc: dict[str, Any] = {"$schema": DRAFT, "$comment": COMMENTS[name], **body}
    if name == "event":
        doc["allOf"] = [
            {"if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
             "then": {"required": fields}}
            for kind, fields in event_requirements().items()
        ]
    return doc


def render(name: str) -> str:
    """Stable text of one schema file (2-space indent, trailing newline)."""
    return json.dumps(schema_for(name), indent=2, ensure_ascii=False) + "\n"


def expected_files() -> dict[str, str]:
    """File name -> content for every schema we publish."""
    return {name + SUFFIX: render(name) for name in MODELS}


def check(directory: Path) -> list[str]:
    """Every way the directory differs from what the models generate (empty = up to date)."""
    problems: list[str] = []
    expected = expected_files()
    for filename, text in expected.items():
        path = directory / filename
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: out of date")
    if directory.is_dir():
        problems += [f"{path}: not generated from any model (remove it)"
                     for path in sorted(directory.glob("*" + SUFFIX))
                     if path.name not in expected]
    return problems


def write(directory: Path) -> list[Path]:
    """Write every schema; return the files that changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed: list[Path] = []
    for filename, text in expected_files().items():
        path = directory / filename
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """Generate (or with --check, verify) docs/schemas/."""
    parser = argparse.ArgumentParser(prog="python -m controller.deploy.schemas",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 when the schemas are out of date")
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="schema directory")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.out)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print("run: python -m controller.deploy.schemas", file=sys.stderr)
            return 1
        print(f"{args.out}: {len(MODELS)} schemas up to date")
        return 0
    changed = write(args.out)
    print(f"{args.out}: {len(changed)} of {len(MODELS)} schemas written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
