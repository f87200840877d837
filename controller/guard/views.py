"""Read-only views combining the live model and the store (for the API and the stream)."""

from __future__ import annotations

import time
from typing import Any

from controller.guard.model import LiveModel
from controller.guard.store import Store


def offices_view(model: LiveModel, store: Store) -> list[dict[str, Any]]:
    """Every known or expected office, its open panic/drill `alarm` and its open `fault_alarms`.

    `alarm` stays the panic or drill (what the office itself reports); faults
    are listed apart so that an office card never turns "alarm" for a fault.
    """
    open_by_office: dict[str, dict[str, Any]] = {}
    faults: dict[str, list[dict[str, Any]]] = {}
    for alarm in store.alarms(open_only=True, limit=100_000):
        if alarm["kind"] == "fault":
            faults.setdefault(alarm["office"], []).append(alarm)
        else:
            open_by_office.setdefault(alarm["office"], alarm)
    out = []
    for data in model.snapshot(time.monotonic()):
        data["alarm"] = open_by_office.get(data["id"])
        data["fault_alarms"] = faults.get(data["id"], [])
        out.append(data)
    return out
