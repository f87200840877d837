"""Signed commands to offices, and the wait for the office's confirmation.

Every command is signed with the station's Ed25519 key and carries a fresh
nonce; the office answers with an event carrying the same nonce
(`alarm_acknowledged`, ..., or `command_rejected`). Only that answer counts
as done: a PUBACK from the broker says nothing about the office.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.guard.i18n import N_
from controller.protocol.messages import Command, Event, Topics, utcnow
from controller.protocol.names import CommandName
from controller.protocol.signing import sign_command

log = structlog.get_logger("officesec.guard.commands")



@dataclass(frozen=True)
class Outcome:
    """How a command ended: confirmed, rejected (with reason), timeout or not_sent."""

    status: str
    nonce: str
    event: Event | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form for API answers."""
        out: dict[str, Any] = {"status": self.status, "nonce": self.nonce}
        if self.reason:
            out["reason"] = self.reason
        if self.event is not None:
            out["event"] = {"id": str(self.event.id), "type": self.event.type,
                            "seq": self.event.seq}
        return out


class Commander:
    """Builds, signs and publishes commands; matches confirmations by nonce."""

    def __init__(self, key: Ed25519PrivateKey | None, topics: Topics,
                 publish: Callable[[str, bytes], bool], timeout_s: float) -> None:
        """`publish(topic, payload)` is the MQTT adapter's QoS-1 publish."""
        self.key = key
        self.topics = topics
        self._publish = publish
        self.timeout_s = timeout_s
        self.pending: dict[str, tuple[str, asyncio.Future[Event]]] = {}
        self.sent = 0

    @property
    def can_sign(self) -> bool:
        """A signing key is configured."""
        return self.key is not None

    def build(self, cmd: CommandName, office: str, by: str, *, alarm_id: str | None = None,
              from_seq: int | None = None, to_seq: int | None = None) -> Command:
        """A signed command with a fresh nonce (requires a key)."""
        if self.key is None:
            raise RuntimeError("no signing key configured")
        command = Command(cmd=cmd, office=office, by=by, issued_at=utcnow(),
                          nonce=secrets.token_urlsafe(18),
                          alarm_id=uuid.UUID(alarm_id) if alarm_id else None,
                          from_seq=from_seq, to_seq=to_seq)
        return sign_command(command, self.key)

    def send(self, command: Command) -> bool:
        """Publish without waiting (resend requests); False when paho refused it."""
        ok = self._publish(self.topics.cmd(command.office), command.to_bytes())
        self.sent += 1
        log.info("command_sent", cmd=command.cmd, office=command.office, by=command.by,
                 nonce=command.nonce, accepted=ok)
        return ok

    async def send_and_wait(self, command: Command, timeout_s: float | None = None) -> Outcome:
        """Publish and wait for the office's event carrying the command's nonce."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Event] = loop.create_future()
        self.pending[command.nonce] = (command.office, future)
        try:
            if not self.send(command):
                return Outcome("not_sent", command.nonce, reason=N_("the MQTT queue is full"))
            try:
                event = await asyncio.wait_for(future, timeout_s or self.timeout_s)
            except TimeoutError:
                log.warning("command_timeout", cmd=command.cmd, office=command.office,
                            nonce=command.nonce)
                return Outcome("timeout", command.nonce,
                               reason=N_("the office did not confirm in time"))
        finally:
            self.pending.pop(command.nonce, None)
        if event.type == "command_rejected":
            return Outcome("rejected", command.nonce, event, reason=event.reason or "rejected")
        return Outcome("confirmed", command.nonce, event)

    def on_event(self, event: Event) -> bool:
        """Match an office event to a waiting command; True when it confirmed one."""
        if event.nonce is None:
            return False
        entry = self.pending.get(event.nonce)
        if entry is None or entry[0] != event.office:
            return False
        if not entry[1].done():
            entry[1].set_result(event)
        return True
