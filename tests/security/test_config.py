"""#17.10, #17.6: check-config refuses weak password hashes and bad [security] keys."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from tests.security.fleet import OFFICESEC, minimum_hash

WEAK = {
    "argon2i": "$argon2i$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
    "argon2d": "$argon2d$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
    "low memory": PasswordHasher(time_cost=3, memory_cost=8192, parallelism=1).hash("x"),
    "one pass": PasswordHasher(time_cost=1, memory_cost=65536, parallelism=1).hash("x"),
    "bcrypt": "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
    "plain text": "hunter2",
}


def _check(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "guard.toml"
    config.write_text('[guard]\nid = "guard-1"\n' + body)
    return subprocess.run([OFFICESEC, "check-config", str(config)], capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.parametrize("name", sorted(WEAK))
def test_weak_hashes_are_refused(tmp_path: Path, name: str) -> None:
    res = _check(tmp_path, f'[[users]]\nname = "anna"\npassword_hash = "{WEAK[name]}"\n')
    assert res.returncode == 2, res.stdout + res.stderr
    assert "users.0" in res.stderr and "password_hash" in res.stderr, res.stderr


def test_the_minimum_and_the_default_hashes_pass(tmp_path: Path) -> None:
    res = _check(tmp_path, f'[[users]]\nname = "anna"\npassword_hash = "{minimum_hash("x")}"\n'
                           f'role = "viewer"\n[[users]]\nname = "bob"\n'
                           f'password_hash = "{PasswordHasher().hash("x")}"\n')
    assert res.returncode == 0, res.stderr


def test_security_keys_are_checked(tmp_path: Path) -> None:
    h = minimum_hash("x")
    res = _check(tmp_path, "[security]\nsession_idle_s = 7200\nsession_max_age_s = 3600\n"
                           "sse_per_session = 0\nnot_a_key = 1\n"
                           f'[[users]]\nname = "anna"\npassword_hash = "{h}"\n'
                           '[[api_tokens]]\nname = "mon"\nuser = "nobody"\nsha256 = "00"\n')
    assert res.returncode == 2
    for key in ("security.sse_per_session", "security.not_a_key", "api_tokens.0.sha256"):
        assert key in res.stderr, (key, res.stderr)


def test_api_token_command_makes_a_token_the_config_accepts(tmp_path: Path) -> None:
    out = subprocess.run([OFFICESEC, "api-token", "--user", "anna", "--name", "mon"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    entry = out[out.index("[[api_tokens]]"):]
    res = _check(tmp_path, f'[[users]]\nname = "anna"\npassword_hash = "{minimum_hash("x")}"\n'
                           + entry)
    assert res.returncode == 0, res.stderr
