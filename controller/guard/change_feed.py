"""Which alarms a transaction changed, so a shared store can tell the other stations.

Mixed into `Store` between it and `AlarmTables`: every write to an alarm
marks its id on the connection (`PgDb.touch`); at commit the ids go out
with `pg_notify` and every other station re-reads and shows those alarms
(`controller/guard/cluster.py`). On SQLite (one station) it costs nothing.
"""

from __future__ import annotations

from typing import Any

from controller.guard.alarm_store import AlarmTables


class AlarmChanges(AlarmTables):
    """AlarmTables whose writes mark the alarm as changed."""

    def _touch(self, alarm_id: str) -> None:
        touch = getattr(self.db, "touch", None)
        if touch is not None:
            touch(alarm_id)

    def update_alarm(self, alarm_id: str, **fields: Any) -> None:
        """See AlarmTables.update_alarm; marks the alarm."""
        super().update_alarm(alarm_id, **fields)
        self._touch(alarm_id)

    def upsert_alarm(self, alarm_id: str, office: str, **kwargs: Any
                     ) -> tuple[dict[str, Any], bool]:
        """See AlarmTables.upsert_alarm; marks the alarm when it changed."""
        row, changed = super().upsert_alarm(alarm_id, office, **kwargs)
        if changed:
            self._touch(alarm_id)
        return row, changed

    def insert_fault(self, alarm_id: str, office: str, fault: str, **kwargs: Any
                     ) -> dict[str, Any]:
        """See AlarmTables.insert_fault; marks the alarm."""
        row = super().insert_fault(alarm_id, office, fault, **kwargs)
        self._touch(alarm_id)
        return row

    def log_alarm(self, alarm_id: str, ts: str, what: str, by: str | None = None,
                  detail: str = "") -> None:
        """See AlarmTables.log_alarm (its timeline changed); marks the alarm."""
        super().log_alarm(alarm_id, ts, what, by, detail)
        self._touch(alarm_id)
