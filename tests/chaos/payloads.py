"""Hostile MQTT payloads: random bytes, huge, deeply nested, wrong types, odd unicode.

`generate(count, seed)` yields a reproducible mix. Structured kinds start from
the documented example payloads (docs/mqtt-api.md) and break them: a field of
the wrong type, an unknown or a missing field, a truncation, a flipped byte.
Free-form JSON comes from a hypothesis strategy. The caller filters out the
few payloads that happen to be valid for the topic they go to: those are not
garbage, and a valid-but-forged message is the ACL's job, not the parser's.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EVENT = {"schema": 1, "id": "0b6f3f1e-2d4c-4f7a-9a51-5e3c8d2b1a90", "office": "eg-101",
         "seq": 42, "ts": "2026-11-25T09:30:01.250Z", "type": "panic", "test": False,
         "alarm_id": "3f1c2a9e-6a3b-4d1e-9f49-0c7d2b6e8a11"}
LOCATION = {"site": "Jobcenter Hattingen", "building": "Haus A", "floor": "EG", "room": "101",
            "label": "Beratung 101"}
STATE = {"schema": 1, "office": "eg-101", "ts": "2026-11-25T09:30:01.250Z", "seq": 42,
         "door": "locked", "contact": "closed", "alarm": "active",
         "alarm_id": "3f1c2a9e-6a3b-4d1e-9f49-0c7d2b6e8a11", "alarm_test": False,
         "lockdown": False, "faults": [], "version": "0.1.0", "uptime_s": 86400.125,
         "outbox_pending": 0, "outbox_dropped": 0, "heartbeat_s": 1.0, "location": LOCATION}
ALARM = {"schema": 1, "alarm_id": "3f1c2a9e-6a3b-4d1e-9f49-0c7d2b6e8a11", "office": "eg-101",
         "location": LOCATION, "state": "active", "raised_at": "2026-11-25T09:30:01.250Z",
         "presses": 1, "test": False}
COMMAND = {"schema": 1, "cmd": "release", "office": "eg-101", "by": "alice",
           "issued_at": "2026-11-25T09:30:01.250Z", "nonce": "n" * 22,
           "sig": "A" * 86 + "=="}
BASES = (EVENT, STATE, ALARM, COMMAND)

ODD_TEXT = ("\x00", "\ufeff", "\u202e", "\ud800", "\udfff", "e\u0301" * 50, "\U0001f6a8" * 20,
            "\u0000\u0001\u001f", "\uffff", "\uff21\uff22\uff23", "' OR 1=1 --", "../../etc/passwd",
            "%s%n%x", "\r\n\r\n", "a" * 5000, "", " ", "null", "-0", "1e999", "NaN")
SCALARS = ("null", "true", "false", "0", "-0", "1e999", "-1e999", "NaN", "Infinity",
           "123456789012345678901234567890", '""', "[]", "{}", '"press"', "[null]")

KINDS = ("bytes", "huge", "nested", "wrong_type", "extra_field", "missing_field",
         "truncated", "flipped", "unicode", "scalar", "hypothesis_json")


def json_values() -> st.SearchStrategy[Any]:
    """Arbitrary JSON, nested a few levels, with any unicode in strings and keys."""
    leaves = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
              | st.text(max_size=40))
    return st.recursive(leaves, lambda kids: st.lists(kids, max_size=6)
                        | st.dictionaries(st.text(max_size=12), kids, max_size=6),
                        max_leaves=30)


def hypothesis_samples(count: int, seed: int) -> list[bytes]:
    """`count` JSON documents drawn by hypothesis (derandomised: the same every run)."""
    out: list[bytes] = []

    @settings(max_examples=count, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(json_values(), st.sampled_from(BASES), st.booleans())
    def draw(value: Any, base: dict[str, Any], merge: bool) -> None:
        if merge and isinstance(value, dict):
            value = {**base, **value}  # a plausible message with foreign fields mixed in
        out.append(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))

    draw()
    rng = random.Random(seed)
    rng.shuffle(out)
    return out


def wrong(rng: random.Random) -> Any:
    """A value of a type no field expects in that place."""
    return rng.choice([None, True, -1, 2**70, 1.5e308, "x" * rng.randint(0, 300), [],
                       [1, [2, [3]]], {}, {"a": {"b": None}}, rng.choice(ODD_TEXT)])


def one(rng: random.Random, kind: str) -> bytes:
    """One payload of the given kind."""
    base = dict(rng.choice(BASES))
    if kind == "bytes":
        return rng.randbytes(rng.randint(0, 512))
    if kind == "huge":
        return rng.randbytes(rng.randint(64 * 1024 + 1, 300 * 1024))
    if kind == "nested":
        depth = rng.choice([64, 200, 1000, 5000, 20000])
        if rng.random() < 0.5:
            return b"[" * depth + b"]" * depth
        return b'{"a":' * depth + b"1" + b"}" * depth
    if kind == "wrong_type":
        base[rng.choice(list(base))] = wrong(rng)
    elif kind == "extra_field":
        base[rng.choice(["x", "__proto__", "schema2", "\u202e", "sig "])] = wrong(rng)
    elif kind == "missing_field":
        del base[rng.choice(list(base))]
    elif kind == "unicode":
        text = rng.choice(ODD_TEXT)
        if rng.random() < 0.5:
            return text.encode("utf-8", "surrogatepass")
        base[rng.choice(list(base))] = text
    elif kind == "scalar":
        return rng.choice(SCALARS).encode()
    raw = json.dumps(base, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if kind == "truncated":
        return raw[: rng.randint(0, len(raw) - 1)]
    if kind == "flipped":
        buf = bytearray(raw)
        pos = rng.randrange(len(buf))
        buf[pos] ^= 1 << rng.randrange(8)
        return bytes(buf)
    return raw


def generate(count: int, seed: int = 1) -> Iterator[tuple[str, bytes]]:
    """(kind, payload) pairs; about 1 % huge, 1 in 50 drawn by hypothesis."""
    rng = random.Random(seed)
    drawn = iter(hypothesis_samples(max(1, count // 50), seed))
    weights = {k: 10 for k in KINDS} | {"huge": 1, "hypothesis_json": 2}
    kinds, w = list(weights), list(weights.values())
    for _ in range(count):
        kind = rng.choices(kinds, w)[0]
        if kind == "hypothesis_json":
            payload = next(drawn, None)
            if payload is None:
                kind, payload = "bytes", rng.randbytes(64)
            yield kind, payload
        else:
            yield kind, one(rng, kind)
