"""Re-send a guard's acknowledgement until the office confirms it.

A guard's click is not an acknowledgement the caseworker can see: only the
office's `alarm_acknowledged` lights the "help is coming" LED. Until that
event arrives the alarm stays `active` (escalation goes on, the console
says "ack not delivered"), and the station sends the ack again: at once
when the office comes back online, and every `ack_resend_s` while it is
reachable. Timing is on the monotonic clock.
"""

from __future__ import annotations

import structlog

from controller.guard.commander import Commander
from controller.guard.hub import Hub
from controller.guard.model import LiveModel
from controller.guard.store import Store
from controller.protocol.messages import format_ts, utcnow

log = structlog.get_logger("officesec.guard.ack_retry")


class AckResender:
    """Called on every tick with the monotonic clock."""

    def __init__(self, store: Store, model: LiveModel, commander: Commander, hub: Hub,
                 every_s: float) -> None:
        """`every_s` is the pause between re-sends to a reachable office."""
        self.store = store
        self.model = model
        self.commander = commander
        self.hub = hub
        self.every_s = every_s
        self.resent = 0
        self._last: dict[str, float] = {}  # alarm_id -> monotonic time of the last send
        self._reachable: dict[str, bool] = {}  # office -> reachable at the last tick

    def _reachable_now(self, office: str) -> bool:
        view = self.model.offices.get(office)
        return view is not None and view.availability == "online" and not view.stale

    def tick(self, mono: float) -> int:
        """Re-send what is due; returns how many acks were sent."""
        pending = self.store.active_brief(ack_pending=True)
        # only offices with an unconfirmed ack are watched (a fleet has thousands of offices)
        offices = {a["office"]: self._reachable_now(a["office"]) for a in pending}
        came_back = {o for o, up in offices.items() if up and not self._reachable.get(o, True)}
        self._reachable = offices
        if not self.commander.can_sign:
            return 0
        sent = 0
        waiting = set()
        for alarm in pending:
            alarm_id = alarm["alarm_id"]
            waiting.add(alarm_id)
            office = alarm["office"]
            last = self._last.setdefault(alarm_id, mono)  # the guard's own send counts
            if not offices.get(office, False):
                continue
            if office not in came_back and mono - last < self.every_s:
                continue
            self._send(alarm, mono)
            sent += 1
        self._last = {k: v for k, v in self._last.items() if k in waiting}
        if sent:
            self.store.commit()
        return sent

    def _send(self, alarm: dict[str, object], mono: float) -> None:
        alarm_id = str(alarm["alarm_id"])
        by = str(alarm["guard_ack_by"])
        command = self.commander.build("ack", str(alarm["office"]), by, alarm_id=alarm_id)
        at = format_ts(utcnow())  # before sending: the office's answer comes after it
        accepted = self.commander.send(command)
        self._last[alarm_id] = mono
        self.resent += 1
        resends = int(str(alarm.get("ack_resends") or 0)) + 1
        self.store.update_alarm(alarm_id, ack_resends=resends)
        self.store.log_alarm(alarm_id, at, "ack_resent", by,
                             f"attempt: {resends + 1}")  # "key: value", the console words it
        log.warning("ack_resent", alarm_id=alarm_id, office=alarm["office"], by=by,
                    attempt=resends + 1, accepted=accepted)
        pushed = self.store.alarm(alarm_id)
        if pushed is not None:
            self.hub.publish("alarm", pushed)
