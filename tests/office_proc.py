"""Run a real office daemon (`python -m controller run`) from a generated config."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.broker import terminate


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_toml(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for name, keys in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in keys.items() if v is not None]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def office_sections(workdir: Path, port: int, office_id: str = "eg-101",
                    **overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    office = office_id
    sections: dict[str, dict[str, Any]] = {
        "office": {"id": office, "site": "Jobcenter Test", "building": "Haus A", "floor": "EG",
                   "room": office.split("-")[-1], "label": f"Beratung {office}"},
        "mqtt": {"host": "127.0.0.1", "port": port, "keepalive_s": 2},
        "hardware": {"pin_factory": "mock"},
        "door": {"release_s": 1, "held_open_s": 3},
        "storage": {"path": str(workdir / f"{office}.sqlite3")},
        "log": {"level": "info", "json": True},
    }
    for name, keys in overrides.items():
        sections.setdefault(name, {}).update(keys)
    if "hosts" in sections["mqtt"]:  # a broker list replaces host/port
        sections["mqtt"].pop("host", None)
        sections["mqtt"].pop("port", None)
    return sections


class OfficeProc:
    """One `officesec run` subprocess; its JSON log lines go to a file."""

    def __init__(self, workdir: Path, port: int, office_id: str = "eg-101",
                 **overrides: dict[str, Any]) -> None:
        office = office_id
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.office = office
        self.config = write_toml(workdir / f"{office}.toml",
                                 office_sections(workdir, port, office, **overrides))
        self.log = workdir / f"{office}.log"
        self.db = workdir / f"{office}.sqlite3"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OfficeProc:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OFFICESEC_")}
        logf = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "controller", "run", "--config",
                                      str(self.config)], stdout=logf, stderr=logf, env=env)
        return self

    def stop(self, timeout: float = 5.0) -> int:
        assert self.proc is not None
        return terminate(self.proc, timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_log(self, needle: str, timeout: float = 10.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while self.log_text().count(needle) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in log:\n{self.log_text()[-3000:]}")
            time.sleep(0.02)
