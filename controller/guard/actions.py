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
from controller.guard.i18n import N_, _, ngettext, translator
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
# stored (in English) as the alarm's `command_status`; the console translates it, the
# HTTP answer's `error` is in the station's language
STATUS_TEXT = {"confirmed": N_("confirmed by the office"),
               "rejected": N_("rejected by the office"),
               "timeout": N_("no confirmation from the office"), "not_sent": N_("not sent")}
OUTCOMES = ("handled", "police", "medical", "false_alarm", "drill", "technical")
NO_KEY = N_("commands cannot be signed: security.signing_key is not configured; "
            "the guard's action was recorded")


def error_text(outcome: Outcome) -> str:
    """Why a command did not go through, for people (an office's reason code stays a code)."""
    text = _(STATUS_TEXT[outcome.status])
    return f"{text}: {_(outcome.reason)}" if outcome.reason else text


class Actions:
    """What the API's POST routes do; each returns a `Result`, never an HTTP status."""

    def __init__(self, store: Store, hub: Hub, commander: Commander, model: LiveModel, *,
                 language: str = "de") -> None:
        """Takes its collaborators, not the service, so nothing here imports the service.

        `language` is the station's, for what it writes without a request (the self-test's note).
        """
        self.store = store
        self.language = language
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

    def _log(self, alarm_id: str, what: str, by: str | None, detail: str = "") -> str:
        now = format_ts(utcnow())
        self.store.log_alarm(alarm_id, now, what, by, detail)
        return now

    def _open_alarm(self, alarm_id: str, user: str, action: str
                    ) -> tuple[dict[str, Any] | None, Result | None]:
        alarm = self.store.alarm(alarm_id)
        if alarm is None:
            return None, Result("unknown", {"error": _("alarm {id} is not known").format(
                id=alarm_id)})
        if alarm["state"] == "closed":
            self._audit(user, action, alarm_id, "refused", "already closed")
            return None, Result("refused", {"error": _("the alarm is already closed"),
                                            "alarm": alarm})
        return alarm, None

    async def ack(self, alarm_id: str, user: str) -> Result:
        """Acknowledge: panic/drill through the office (signed), fault on the station.

        An alarm someone already acknowledged is not an error for a second
        screen: the answer says who and when.
        """
        alarm, refused = self._open_alarm(alarm_id, user, "alarm_ack")
        if alarm is None:
            assert refused is not None  # noqa: S101 - one of the two is set
            return refused
        if alarm["acknowledged_at"] is not None:
            self._audit(user, "alarm_ack", alarm_id, "already",
                        f"by {alarm['acknowledged_by']}")
            return Result("done", {"already_acknowledged_by": alarm["acknowledged_by"],
                                   "already_acknowledged_at": alarm["acknowledged_at"],
                                   "alarm": alarm})
        if alarm["kind"] == "fault":
            return self._ack_fault(alarm, user)
        return await self._office_alarm_command(alarm, "ack", user)

    def _ack_fault(self, alarm: dict[str, Any], user: str) -> Result:
        alarm_id = alarm["alarm_id"]
        now = self._log(alarm_id, "acknowledged", user)
        fields: dict[str, Any] = {"state": "acknowledged", "acknowledged_by": user,
                                  "acknowledged_at": now, "guard_ack_by": user,
                                  "guard_ack_at": now}
        if alarm["cleared_at"] is not None:  # acknowledged and cleared: done
            fields.update(state="closed", closed_at=now)
            self._log(alarm_id, "closed", None, "acknowledged and cleared")
        self.store.update_alarm(alarm_id, **fields)
        self.store.commit()
        self._audit(user, "alarm_ack", alarm_id, "confirmed", f"fault {alarm['fault']}")
        return Result("done", {"alarm": self._push_alarm(alarm_id)})

    async def resolve(self, alarm_id: str, user: str, outcome: str, note: str) -> Result:
        """Resolve a panic or drill with its outcome (validated by the caller)."""
        alarm, refused = self._open_alarm(alarm_id, user, "alarm_resolve")
        if alarm is None:
            assert refused is not None  # noqa: S101 - one of the two is set
            return refused
        if alarm["kind"] == "fault":
            self._audit(user, "alarm_resolve", alarm_id, "refused", "fault alarm")
            return Result("refused", {"error": _("a fault alarm closes by itself once it is "
                                                 "acknowledged and its condition has cleared"),
                                      "alarm": alarm})
        self.store.update_alarm(alarm_id, outcome=outcome, note=note or None)
        self._log(alarm_id, "resolve_requested", user,
                  f"outcome: {outcome}" + (f"; note: {note}" if note else ""))
        return await self._office_alarm_command(alarm, "resolve", user)

    async def respond(self, alarm_id: str, user: str) -> Result:
        """"I am going too": add the guard to the alarm's responders (once)."""
        alarm, refused = self._open_alarm(alarm_id, user, "alarm_respond")
        if alarm is None:
            assert refused is not None  # noqa: S101 - one of the two is set
            return refused
        responders = list(alarm["responders"])
        if not any(r.get("by") == user for r in responders):
            now = self._log(alarm_id, "responding", user)
            responders.append({"by": user, "at": now})
            self.store.update_alarm(alarm_id, responders=responders)
            self.store.commit()
            self._audit(user, "alarm_respond", alarm_id, "recorded")
        return Result("done", {"alarm": self._push_alarm(alarm_id)})

    async def _office_alarm_command(self, alarm: dict[str, Any], action: CommandName,
                                    user: str) -> Result:
        """Send ack/resolve to the alarm's office and wait for its confirmation."""
        store = self.store
        alarm_id = alarm["alarm_id"]
        now = format_ts(utcnow())
        if action == "ack":
            if alarm["guard_ack_by"] is None:
                store.update_alarm(alarm_id, guard_ack_by=user, guard_ack_at=now)
            self._log(alarm_id, "ack_requested", user)
        if not self.commander.can_sign:
            store.update_alarm(alarm_id, command=action, command_status="not sent (no key)",
                               command_by=user, command_at=now)
            store.commit()
            self._audit(user, f"alarm_{action}", alarm_id, "recorded", "no signing key")
            return Result("not_sent", {"error": _(NO_KEY), "alarm": self._push_alarm(alarm_id)})
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
        if outcome.status != "confirmed":
            self._log(alarm_id, f"{action}_not_confirmed", user, text)
        store.commit()
        self._audit(user, f"alarm_{action}", alarm_id, outcome.status, outcome.reason)
        body: dict[str, Any] = {"command": outcome.to_dict(), "alarm": self._push_alarm(alarm_id)}
        if outcome.status != "confirmed":
            body["error"] = error_text(outcome)
        return Result(KIND_OF[outcome.status], body)

    async def resolve_for(self, alarm_id: str, office: str, by: str) -> Outcome:
        """Resolve a drill on behalf of the self-test (no HTTP answer involved)."""
        command = self.commander.build("resolve", office, by, alarm_id=alarm_id)
        if self.store.alarm(alarm_id) is not None:
            note = str(translator(self.language).ugettext(N_("scheduled self-test")))
            self.store.update_alarm(alarm_id, outcome="drill", note=note)
            self.store.commit()
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
            return Result("unknown", {"error": _("office {office} is not known").format(
                office=office)})
        if not self.commander.can_sign:
            self._audit(user, cmd, office, "recorded", "no signing key")
            return Result("not_sent", {"error": _(NO_KEY)})
        outcome = await self.commander.send_and_wait(
            self.commander.build(cmd, office, user))
        self._audit(user, cmd, office, outcome.status, outcome.reason)
        body: dict[str, Any] = {"office": office, "command": outcome.to_dict()}
        if outcome.event is not None and outcome.event.alarm_id is not None:
            body["alarm_id"] = str(outcome.event.alarm_id)
        if outcome.status != "confirmed":
            body["error"] = error_text(outcome)
        return Result(KIND_OF[outcome.status], body)

    async def site_lockdown(self, site: str, on: bool, user: str) -> Result:
        """Lock down (or lift) every known office of a site at once."""
        offices = sorted(v.id for v in self.model.offices.values()
                         if v.location.get("site") == site)
        cmd: CommandName = "lockdown" if on else "lift_lockdown"
        if not offices:
            self._audit(user, f"site_{cmd}", site, "refused", "no office on this site")
            return Result("unknown", {"error": _("no known office has site {site}").format(
                site=repr(site))})
        if not self.commander.can_sign:
            self._audit(user, f"site_{cmd}", site, "recorded", "no signing key")
            return Result("not_sent", {"error": _(NO_KEY)})
        answers = await asyncio.gather(*(self.office_command(o, cmd, user) for o in offices))
        results = {o: a.body["command"] for o, a in zip(offices, answers, strict=True)}
        failed = sorted(o for o, a in zip(offices, answers, strict=True) if a.kind != "done")
        self._audit(user, f"site_{cmd}", site, "confirmed" if not failed else "partial",
                    ",".join(failed)[:200])
        body: dict[str, Any] = {"site": site, "on": on, "results": results, "failed": failed}
        if failed:
            body["error"] = ngettext("{failed} of {n} office did not confirm",
                                     "{failed} of {n} offices did not confirm",
                                     len(offices)).format(failed=len(failed), n=len(offices))
        return Result("done" if not failed else "partial", body)
