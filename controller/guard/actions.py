"""Guard actions (ack, resolve, drill, lockdown, release): audit, sign, send, wait.

Each action is written to the audit trail with its outcome. The alarm shows
the command's progress ("sent", then "confirmed by the office" or why not),
and the HTTP answer waits for the office's confirmation, so a guard never
sees "done" for something the office did not do.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from controller.guard.commander import Commander, Outcome
from controller.guard.hub import Hub
from controller.guard.model import LiveModel
from controller.guard.store import Store
from controller.protocol.messages import format_ts, utcnow
from controller.protocol.names import CommandName

log = structlog.get_logger("officesec.guard.actions")

ResultKind = Literal["done", "unknown", "refused", "rejected", "timeout", "not_sent",
                     "partial"]


@dataclass(frozen=True)
class Result:
    """What an action did, for `web/` to map to an HTTP status (`kind`) and body."""

    kind: ResultKind
    body: dict[str, Any] = field(default_factory=dict)


KIND_OF: dict[str, ResultKind] = {"confirmed": "done", "rejected": "rejected",
                                  "timeout": "timeout", "not_sent": "not_sent"}
STATUS_TEXT = {"confirmed": "confirmed by the office", "rejected": "rejected by the office",
               "timeout": "no confirmation from the office", "not_sent": "not sent"}
NO_KEY = ("commands cannot be signed: security.signing_key is not configured; "
          "the guard's action was recorded")


class Actions:
    """What the API's POST routes do; each returns a `Result`, never an HTTP status."""

    def __init__(self, store: Store, hub: Hub, commander: Commander, model: LiveModel) -> None:
        """Takes its collaborators, not the service, so nothing here imports the service."""
        self.store = store
        self.hub = hub
        self.commander = commander
        self.model = model

    def _audit(self, user: str, action: str, target: str, outcome: str, detail: str = "") -> None:
        self.store.audit(user, action, target, outcome, detail)
        self.hub.publish("audit", {"user": user, "action": action, "target": target,
                                       "outcome": outcome, "detail": detail,
                                       "at": time.time()})

    def _push_alarm(self, alarm_id: str) -> dict[str, Any] | None:
        alarm = self.store.alarm(alarm_id)
        if alarm is not None:
            self.hub.publish("alarm", alarm)
        return alarm

    async def alarm_command(self, alarm_id: str, action: CommandName, user: str) -> Result:
        """Acknowledge or resolve an alarm through its office."""
        store = self.store
        alarm = store.alarm(alarm_id)
        if alarm is None:
            return Result("unknown", {"error": f"alarm {alarm_id} is not known"})
        if alarm["state"] == "resolved":
            self._audit(user, f"alarm_{action}", alarm_id, "refused", "already resolved")
            return Result("refused", {"error": "the alarm is already resolved", "alarm": alarm})
        now = format_ts(utcnow())
        if action == "ack" and alarm["guard_ack_by"] is None:
            store.update_alarm(alarm_id, guard_ack_by=user, guard_ack_at=now)
        if not self.commander.can_sign:
            store.update_alarm(alarm_id, command=action, command_status="not sent (no key)",
                               command_by=user, command_at=now)
            store.commit()
            self._audit(user, f"alarm_{action}", alarm_id, "recorded", "no signing key")
            return Result("not_sent", {"error": NO_KEY, "alarm": self._push_alarm(alarm_id)})
        command = self.commander.build(action, alarm["office"], user, alarm_id=alarm_id)
        store.update_alarm(alarm_id, command=action, command_status="sent", command_by=user,
                           command_at=now)
        store.commit()
        self._push_alarm(alarm_id)
        outcome = await self.commander.send_and_wait(command)
        text = STATUS_TEXT[outcome.status]
        if outcome.reason and outcome.status != "confirmed":
            text = f"{text}: {outcome.reason}"
        store.update_alarm(alarm_id, command_status=text[:200])
        store.commit()
        self._audit(user, f"alarm_{action}", alarm_id, outcome.status, outcome.reason)
        body: dict[str, Any] = {"command": outcome.to_dict(), "alarm": self._push_alarm(alarm_id)}
        if outcome.status != "confirmed":
            body["error"] = text
        return Result(KIND_OF[outcome.status], body)

    async def resolve_for(self, alarm_id: str, office: str, by: str) -> Outcome:
        """Resolve a drill on behalf of the self-test (no HTTP answer involved)."""
        command = self.commander.build("resolve", office, by, alarm_id=alarm_id)
        outcome = await self.commander.send_and_wait(command)
        if self.store.alarm(alarm_id) is not None:
            self.store.update_alarm(alarm_id, command="resolve", command_by=by,
                                        command_at=format_ts(utcnow()),
                                        command_status=STATUS_TEXT[outcome.status])
            self.store.commit()
            self._push_alarm(alarm_id)
        self._audit(by, "alarm_resolve", alarm_id, outcome.status, outcome.reason)
        return outcome

    async def office_command(self, office: str, cmd: CommandName, user: str) -> Result:
        """Drill, lockdown, lift lockdown or remote release of one office."""
        if office not in self.model.offices:
            return Result("unknown", {"error": f"office {office} is not known"})
        if not self.commander.can_sign:
            self._audit(user, cmd, office, "recorded", "no signing key")
            return Result("not_sent", {"error": NO_KEY})
        outcome = await self.commander.send_and_wait(
            self.commander.build(cmd, office, user))
        self._audit(user, cmd, office, outcome.status, outcome.reason)
        body: dict[str, Any] = {"office": office, "command": outcome.to_dict()}
        if outcome.event is not None and outcome.event.alarm_id is not None:
            body["alarm_id"] = str(outcome.event.alarm_id)
        if outcome.status != "confirmed":
            body["error"] = f"{STATUS_TEXT[outcome.status]}: {outcome.reason}".rstrip(": ")
        return Result(KIND_OF[outcome.status], body)

    async def site_lockdown(self, site: str, on: bool, user: str) -> Result:
        """Lock down (or lift) every known office of a site at once."""
        offices = sorted(v.id for v in self.model.offices.values()
                         if v.location.get("site") == site)
        cmd: CommandName = "lockdown" if on else "lift_lockdown"
        if not offices:
            self._audit(user, f"site_{cmd}", site, "refused", "no office on this site")
            return Result("unknown", {"error": f"no known office has site {site!r}"})
        if not self.commander.can_sign:
            self._audit(user, f"site_{cmd}", site, "recorded", "no signing key")
            return Result("not_sent", {"error": NO_KEY})
        answers = await asyncio.gather(*(self.office_command(o, cmd, user) for o in offices))
        results = {o: a.body["command"] for o, a in zip(offices, answers, strict=True)}
        failed = sorted(o for o, a in zip(offices, answers, strict=True) if a.kind != "done")
        self._audit(user, f"site_{cmd}", site, "confirmed" if not failed else "partial",
                    ",".join(failed)[:200])
        body: dict[str, Any] = {"site": site, "on": on, "results": results, "failed": failed}
        if failed:
            body["error"] = f"{len(failed)} of {len(offices)} offices did not confirm"
        return Result("done" if not failed else "partial", body)
