"""The office's command gate: real Ed25519 keys (keygen into tmp_path), real outbox file."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.errors import ConfigError
from controller.office.command_gate import REJECT_BURST, CommandGate, GuardKey, RateLimit
from controller.office.outbox import Outbox
from controller.protocol.messages import MAX_PAYLOAD_BYTES, Command
from controller.protocol.signing import keygen, load_private_key, sign_command

OFFICE = "eg-101"
WINDOW = 120.0


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Ed25519PrivateKey, Path]:
    private, public = keygen(tmp_path / "keys")
    return load_private_key(private), public


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "office.sqlite3"


@pytest.fixture
def gate(keys: tuple[Ed25519PrivateKey, Path], db: Path) -> Iterator[CommandGate]:
    ob = Outbox(str(db), max_events=1000, keep_delivered_s=3600)
    ob.open()
    yield CommandGate(OFFICE, GuardKey.from_file(keys[1]), WINDOW, ob)
    ob.close()


def command(key: Ed25519PrivateKey | None, *, sign: bool = True, **over: Any) -> Command:
    fields: dict[str, Any] = {"cmd": "lockdown", "office": OFFICE, "by": "guard-anna",
                              "issued_at": datetime.now(UTC),
                              "nonce": uuid.uuid4().hex}
    fields.update(over)
    cmd = Command(**fields)
    return sign_command(cmd, key) if sign and key is not None else cmd


def check(gate: CommandGate, payload: bytes, retained: bool = False) -> tuple[str | None, Any]:
    verdict = gate.check(payload, retained=retained, now=datetime.now(UTC))
    return verdict.reason, verdict


def test_accepted_once_then_replayed(gate: CommandGate,
                                     keys: tuple[Ed25519PrivateKey, Path]) -> None:
    cmd = command(keys[0])
    reason, verdict = check(gate, cmd.to_bytes())
    assert reason is None
    assert verdict.command.to_bytes() == cmd.to_bytes()
    assert verdict.nonce == cmd.nonce and verdict.cmd == "lockdown"
    reason, verdict = check(gate, cmd.to_bytes())
    assert reason == "replayed" and verdict.command is None and verdict.nonce == cmd.nonce


def test_replayed_after_a_restart(keys: tuple[Ed25519PrivateKey, Path], db: Path) -> None:
    key, pub = keys
    cmd = command(key)
    ob = Outbox(str(db), max_events=1000, keep_delivered_s=3600)
    ob.open()
    gate = CommandGate(OFFICE, GuardKey.from_file(pub), WINDOW, ob)
    assert check(gate, cmd.to_bytes())[0] is None
    ob.close()
    ob = Outbox(str(db), max_events=1000, keep_delivered_s=3600)
    ob.open()
    try:
        gate = CommandGate(OFFICE, GuardKey.from_file(pub), WINDOW, ob)
        assert check(gate, cmd.to_bytes())[0] == "replayed"
    finally:
        ob.close()


def test_every_field_is_covered_by_the_signature(gate: CommandGate,
                                                 keys: tuple[Ed25519PrivateKey, Path]) -> None:
    signed = json.loads(command(keys[0], cmd="ack", alarm_id=str(uuid.uuid4())).to_bytes())
    for field, value in (("cmd", "resolve"), ("by", "mallory"), ("alarm_id", str(uuid.uuid4())),
                         ("nonce", uuid.uuid4().hex)):
        tampered = dict(signed, **{field: value})
        assert check(gate, json.dumps(tampered).encode())[0] == "bad_signature", field


def _reason_for(case: str, gate: CommandGate, key: Ed25519PrivateKey) -> str | None:
    now = datetime.now(UTC)
    if case == "unsigned":
        return check(gate, command(key, sign=False).to_bytes())[0]
    if case == "garbage_signature":
        return check(gate, command(key).model_copy(update={"sig": "%%%not base64"}).to_bytes())[0]
    if case == "short_signature":  # valid base64, not 64 bytes
        return check(gate, command(key).model_copy(update={"sig": "AAAA"}).to_bytes())[0]
    if case == "another_key":
        return check(gate, command(Ed25519PrivateKey.generate()).to_bytes())[0]
    if case == "another_office":
        return check(gate, command(key, office="eg-102").to_bytes())[0]
    if case == "stale":
        return check(gate, command(key, issued_at=now - timedelta(seconds=WINDOW + 5))
                     .to_bytes())[0]
    if case == "future":
        return check(gate, command(key, issued_at=now + timedelta(seconds=WINDOW + 5))
                     .to_bytes())[0]
    if case == "malformed_json":
        return check(gate, b'{"cmd": "ack", ')[0]
    if case == "not_a_command":
        return check(gate, b'{"cmd": "open_sesame", "office": "eg-101"}')[0]
    if case == "unknown_field":
        data = json.loads(command(key).to_bytes())
        data["extra"] = 1
        return check(gate, json.dumps(data).encode())[0]
    if case == "binary":
        return check(gate, bytes(range(256)))[0]
    if case == "retained":
        return check(gate, command(key).to_bytes(), retained=True)[0]
    if case == "too_large":
        return check(gate, b"{" + b" " * MAX_PAYLOAD_BYTES + b"}")[0]
    if case == "ack_without_alarm_id":
        return check(gate, command(key, cmd="ack").to_bytes())[0]
    if case == "resend_without_range":
        return check(gate, command(key, cmd="resend", from_seq=5).to_bytes())[0]
    if case == "resend_backwards":
        return check(gate, command(key, cmd="resend", from_seq=5, to_seq=4).to_bytes())[0]
    raise AssertionError(case)


@pytest.mark.parametrize(("case", "reason"), [
    ("unsigned", "unsigned"),
    ("garbage_signature", "bad_signature"),
    ("short_signature", "bad_signature"),
    ("another_key", "bad_signature"),
    ("another_office", "wrong_office"),
    ("stale", "stale"),
    ("future", "future"),
    ("malformed_json", "malformed"),
    ("not_a_command", "malformed"),
    ("unknown_field", "malformed"),
    ("binary", "malformed"),
    ("retained", "retained"),
    ("too_large", "too_large"),
    ("ack_without_alarm_id", "alarm_id_missing"),
    ("resend_without_range", "bad_range"),
    ("resend_backwards", "bad_range"),
])
def test_rejections(gate: CommandGate, keys: tuple[Ed25519PrivateKey, Path], case: str,
                    reason: str) -> None:
    assert _reason_for(case, gate, keys[0]) == reason
    assert gate.outbox.nonces == {}  # nothing rejected uses up a nonce


def test_guard_key_from_a_file_that_is_no_ed25519_key(tmp_path: Path) -> None:
    bad = tmp_path / "guard.pub"
    bad.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ConfigError, match=r"security\.guard_public_key: cannot load"):
        GuardKey.from_file(bad)


def test_the_raw_key_round_trips(keys: tuple[Ed25519PrivateKey, Path]) -> None:
    """The daemon process gets the key as 32 raw bytes (the snapshot) and verifies the same."""
    loaded = GuardKey.from_file(keys[1])
    raw = keys[0].public_key().public_bytes_raw()
    assert loaded.raw == raw
    assert GuardKey(raw).verify(command(keys[0])) is None
    assert GuardKey(raw).verify(command(Ed25519PrivateKey.generate())) == "bad_signature"


def test_within_the_window_both_ways(gate: CommandGate,
                                     keys: tuple[Ed25519PrivateKey, Path]) -> None:
    now = datetime.now(UTC)
    for skew in (-(WINDOW - 5), WINDOW - 5):
        cmd = command(keys[0], issued_at=now + timedelta(seconds=skew))
        assert check(gate, cmd.to_bytes())[0] is None


def test_rejected_replay_of_a_rejected_command_can_still_be_sent_fresh(
        gate: CommandGate, keys: tuple[Ed25519PrivateKey, Path]) -> None:
    stale = command(keys[0], issued_at=datetime.now(UTC) - timedelta(hours=1))
    assert check(gate, stale.to_bytes())[0] == "stale"
    fresh = command(keys[0], nonce=stale.nonce)  # same nonce, fresh and signed: it passes once
    assert check(gate, fresh.to_bytes())[0] is None
    assert check(gate, fresh.to_bytes())[0] == "replayed"


def test_no_key_configured_rejects_everything(db: Path,
                                              keys: tuple[Ed25519PrivateKey, Path]) -> None:
    ob = Outbox(str(db), max_events=1000, keep_delivered_s=3600)
    ob.open()
    try:
        gate = CommandGate(OFFICE, None, WINDOW, ob)
        assert check(gate, command(keys[0]).to_bytes())[0] == "no_guard_key_configured"
    finally:
        ob.close()


def test_accepted_commands_of_every_kind(gate: CommandGate,
                                         keys: tuple[Ed25519PrivateKey, Path]) -> None:
    for extra in ({"cmd": "ack", "alarm_id": str(uuid.uuid4())},
                  {"cmd": "resolve", "alarm_id": str(uuid.uuid4())},
                  {"cmd": "test"}, {"cmd": "lockdown"}, {"cmd": "lift_lockdown"},
                  {"cmd": "release"}, {"cmd": "resend", "from_seq": 1, "to_seq": 1}):
        reason, verdict = check(gate, command(keys[0], **extra).to_bytes())
        assert reason is None and verdict.command.cmd == extra["cmd"]


# ------------------------------------------------------------- rate limit


def test_rejection_reports_are_rate_limited() -> None:
    rl = RateLimit(rate=2.0, burst=REJECT_BURST)
    t = rl.last  # the daemon's monotonic clock; the bucket starts full at creation
    assert all(rl.allow(t) for _ in range(REJECT_BURST))
    assert not rl.allow(t) and not rl.allow(t)
    assert rl.suppressed == 2
    assert rl.allow(t + 0.5)  # one token back after 1/rate seconds
    assert not rl.allow(t + 0.5)
    assert sum(rl.allow(t + 100 + i * 0.01) for i in range(100)) == REJECT_BURST + 1
