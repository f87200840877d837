"""Ed25519 command signing: the guard station signs, offices only verify.

Offices hold only the public key, so a stolen office Pi cannot command any
office. The signature covers the canonical JSON of every field but `sig`.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from controller.errors import ConfigError
from controller.protocol.messages import Command, canonical_json

PRIVATE_NAME = "guard-signing.key"
PUBLIC_NAME = "guard-signing.pub"


def keygen(out_dir: Path) -> tuple[Path, Path]:
    """Write a new key pair (private key 0600); refuse to overwrite an existing one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out_dir / PRIVATE_NAME, out_dir / PUBLIC_NAME
    if private_path.exists() or public_path.exists():
        msg = f"{out_dir}: a key pair already exists; remove it first to replace it"
        raise ConfigError([msg])
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem)
    public_path.write_bytes(public_pem)
    public_path.chmod(0o644)
    return private_path, public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read the guard's signing key; a clear ConfigError names the file otherwise."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError([f"security.signing_key: cannot load {path}: {exc}"]) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError([f"security.signing_key: {path} is not an Ed25519 private key"])
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read the guard's public key on an office."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError([f"security.guard_public_key: cannot load {path}: {exc}"]) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError([f"security.guard_public_key: {path} is not an Ed25519 public key"])
    return key


def sign_command(command: Command, key: Ed25519PrivateKey) -> Command:
    """Return the command with `sig` set over the canonical JSON of its other fields."""
    signature = key.sign(canonical_json(command.signed_fields()))
    return command.model_copy(update={"sig": base64.b64encode(signature).decode()})


def verify_command(command: Command, key: Ed25519PublicKey) -> str | None:
    """None when the signature is valid, else the rejection reason."""
    parts = command.signed_parts()
    if isinstance(parts, str):
        return parts
    message, signature = parts
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return "bad_signature"
    return None
