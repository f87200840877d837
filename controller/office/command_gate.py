"""The office's gate for guard commands: only a fresh, signed, unseen command passes.

Checks, in order: not retained, size, JSON shape, signature (Ed25519, guard's
public key), addressed to this office, `issued_at` within the clock window,
nonce not seen within the window (remembered across restarts in the outbox
database). Whether the command fits the current state is the state machine's
call. Offices must keep time with NTP: an office whose clock is off by more
than the window rejects every command as `stale` or `future` (and says so).

The signature is checked with libsodium (PyNaCl), not `cryptography`: same
Ed25519, over the same canonical bytes the guard signs, for about 1 MiB instead
of 8 MiB in the daemon (issue #18). The key file is parsed by `cryptography`
in the `officesec run` process before the daemon starts (`handoff`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pydantic import ValidationError

from controller.office.outbox import Outbox
from controller.protocol.messages import MAX_PAYLOAD_BYTES, Command
from controller.protocol.names import ALARM_COMMANDS

REJECT_RATE_PER_S = 2.0  # command_rejected events per second, sustained, under a flood
REJECT_BURST = 20


@dataclass(frozen=True)
class Verdict:
    """Either an accepted command or the reason it was rejected."""

    command: Command | None
    reason: str | None
    nonce: str | None = None
    cmd: str | None = None


class GuardKey:
    """The guard station's Ed25519 public key, as the office verifies with it."""

    def __init__(self, raw: bytes) -> None:
        """`raw`: the 32-byte public key (RFC 8032)."""
        self.raw = bytes(raw)
        self._key = VerifyKey(self.raw)

    @classmethod
    def from_file(cls, path: Path) -> GuardKey:
        """Read the PEM file the guard's `keygen` wrote; ConfigError names the key otherwise."""
        from controller.protocol.signing import load_public_key  # noqa: PLC0415 - see above

        return cls(load_public_key(path).public_bytes_raw())

    def verify(self, command: Command) -> str | None:
        """None when the command's signature is valid, else the rejection reason."""
        parts = command.signed_parts()
        if isinstance(parts, str):
            return parts
        message, signature = parts
        try:
            self._key.verify(message, signature)
        except (BadSignatureError, ValueError, TypeError):
            return "bad_signature"
        return None


class CommandGate:
    """Verifies guard commands for one office."""

    def __init__(self, office_id: str, key: GuardKey | None, window_s: float,
                 outbox: Outbox) -> None:
        """Keep the office id, the guard's public key and the nonce memory."""
        self.office_id = office_id
        self.key = key
        self.window_s = window_s
        self.outbox = outbox

    def check(self, payload: bytes, *, retained: bool, now: datetime) -> Verdict:  # noqa: PLR0911
        """Decide on one raw command payload."""
        if retained:
            return Verdict(None, "retained")
        if len(payload) > MAX_PAYLOAD_BYTES:
            return Verdict(None, "too_large")
        try:
            command = Command.model_validate_json(payload)
        except ValidationError:
            return Verdict(None, "malformed")
        nonce, name = command.nonce, command.cmd
        if self.key is None:
            return Verdict(None, "no_guard_key_configured", nonce, name)
        reason = self.key.verify(command)
        if reason is not None:
            return Verdict(None, reason, nonce, name)
        if command.office != self.office_id:
            return Verdict(None, "wrong_office", nonce, name)
        skew = (now - command.issued_at).total_seconds()
        if skew > self.window_s:
            return Verdict(None, "stale", nonce, name)
        if skew < -self.window_s:
            return Verdict(None, "future", nonce, name)
        if self.outbox.seen_nonce(nonce):
            return Verdict(None, "replayed", nonce, name)
        if name in ALARM_COMMANDS and command.alarm_id is None:
            return Verdict(None, "alarm_id_missing", nonce, name)
        if name == "resend" and (command.from_seq is None or command.to_seq is None
                                 or command.to_seq < command.from_seq):
            return Verdict(None, "bad_range", nonce, name)
        # remembered for twice the window: a replay later than that is stale anyway
        self.outbox.remember_nonce(nonce, time.time() + 2 * self.window_s)
        return Verdict(command, None, nonce, name)


class RateLimit:
    """Token bucket for rejection reports, so a flood cannot fill the outbox."""

    def __init__(self, rate: float = REJECT_RATE_PER_S, burst: int = REJECT_BURST) -> None:
        """Start full."""
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.last = time.monotonic()
        self.suppressed = 0

    def allow(self, now: float) -> bool:
        """True when one more report may go out now."""
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.suppressed += 1
        return False
