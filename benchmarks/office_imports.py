"""VmRSS/USS of the office daemon process, import step by import step (issue #18).

Each step is imported in a fresh interpreter in the order the daemon process
loads it; a shared dependency counts for the first step that loads it. The
console prettifiers structlog would pull in are declined first, as the daemon
does for JSON logs. Prints a Markdown table.

    .venv/bin/python -m benchmarks.office_imports
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STEPS = (
    ("ssl", ("ssl",)),
    ("sqlite3", ("sqlite3",)),
    ("paho", ("paho.mqtt.client",)),
    ("pydantic (+ first model)", ("pydantic", "pydantic.main")),
    ("structlog (rich declined)", ("structlog",)),
    ("PyNaCl Ed25519", ("nacl.signing",)),
    ("gpiozero + mock", ("gpiozero", "gpiozero.pins.mock")),
    ("controller.protocol.messages", ("controller.protocol.messages",)),
    ("config models (settings, office_config)", ("controller.settings",
                                                 "controller.office.office_config")),
    ("the rest of the office", ("controller.office.compose", "controller.office.main")),
)


def memory() -> tuple[float, float]:
    """(VmRSS, USS) of this process in MiB."""
    rss = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    uss = sum(int(line.split()[1]) for line in Path("/proc/self/smaps_rollup").read_text()
              .splitlines() if line.startswith(("Private_Clean", "Private_Dirty")))
    return rss / 1024, uss / 1024


def main() -> int:
    from controller.logs import without_console_extras  # noqa: PLC0415 - after sys.path

    without_console_extras()
    rss0, uss0 = memory()
    print("| step | VmRSS | + | USS | + |\n|---|---|---|---|---|")
    print(f"| python start (and controller.logs) | {rss0:.1f} | | {uss0:.1f} | |")
    for label, modules in STEPS:
        for name in modules:
            importlib.import_module(name)
        rss, uss = memory()
        print(f"| {label} | {rss:.1f} | +{rss - rss0:.1f} | {uss:.1f} | +{uss - uss0:.1f} |")
        rss0, uss0 = rss, uss
    gone = [m for m in ("pydantic_settings", "cryptography", "rich") if m in sys.modules
            and sys.modules[m] is not None]
    print(f"\nloaded and not wanted in the daemon: {gone or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
