"""docs/mqtt-api.md stays true: its examples validate, its signing recipe works."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import get_args

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jsonschema import Draft202012Validator, FormatChecker

from controller.deploy.schemas import MODELS
from controller.protocol.messages import (
    Alarm,
    Command,
    Escalation,
    Event,
    EventType,
    SimOutput,
    State,
    validate_event_fields,
)
from controller.protocol.signing import verify_command

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "mqtt-api.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"<!-- (schema|example|output): ([a-z-]+) -->\n```[a-z]*\n(.*?)\n```", re.S)
BLOCKS = [(m[1], m[2], m[3]) for m in BLOCK.finditer(DOC)]
PARSERS = {"event": Event, "state": State, "alarm": Alarm, "command": Command,
           "sim-output": SimOutput, "escalation": Escalation}


def test_doc_has_examples_for_every_payload() -> None:
    documented = {name for kind, name, _ in BLOCKS if kind == "schema"}
    assert documented == set(PARSERS)
    assert set(PARSERS) <= set(MODELS)


@pytest.mark.parametrize(("name", "text"),
                         [(n, t) for k, n, t in BLOCKS if k == "schema"])
def test_doc_example_is_valid(name: str, text: str) -> None:
    doc = json.loads((ROOT / "docs" / "schemas" / f"{name}.schema.json").read_text())
    Draft202012Validator(doc, format_checker=FormatChecker()).validate(json.loads(text))
    parsed = PARSERS[name].model_validate_json(text)  # what a real receiver does
    if isinstance(parsed, Event):
        assert validate_event_fields(parsed) == []
    # and the models publish exactly the bytes shown
    assert parsed.to_bytes().decode() == text


def test_signing_recipe_prints_what_the_doc_says_and_the_office_accepts_it() -> None:
    code = next(t for k, n, t in BLOCKS if (k, n) == ("example", "signing"))
    expected = next(t for k, n, t in BLOCKS if (k, n) == ("output", "signing"))
    published = next(t for k, n, t in BLOCKS if (k, n) == ("schema", "command"))
    scope: dict[str, object] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "mqtt-api.md", "exec"), scope)  # noqa: S102 - our own doc's example
    assert out.getvalue().strip() == expected
    assert scope["payload"] == published.encode()
    key = scope["key"]
    assert isinstance(key, Ed25519PrivateKey)
    command = Command.model_validate_json(published)
    assert verify_command(command, key.public_key()) is None
    tampered = command.model_copy(update={"cmd": "resolve"})
    assert verify_command(tampered, key.public_key()) == "bad_signature"


def test_doc_lists_every_event_type() -> None:
    missing = [t for t in get_args(EventType) if f"`{t}`" not in DOC]
    assert missing == [], f"docs/mqtt-api.md does not describe: {missing}"
