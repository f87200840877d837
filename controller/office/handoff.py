"""`officesec run` hands over to a lean daemon process: one validated config snapshot.

The `run` process loads the config the full way (TOML, environment overrides
through pydantic-settings, the guard's key file through `cryptography`) and
prints every problem by key. Then it `execv`s this interpreter on
`daemon_main` (controller.office.main): same PID (systemd's notify and watchdog see
one process), none of those libraries in memory (issue #18). The snapshot holds
the keys as validated and only those that were set (so cross-field rules see
the same input), validated again here with the one schema, `OfficeConfig`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from controller.errors import ConfigError
from controller.office.office_config import OfficeConfig
from controller.settings import format_errors

SNAPSHOT_VERSION = 1
ENTRY = ("import sys; sys.path.insert(0, {root!r}); from controller.office.main import daemon_main;"
         " raise SystemExit(daemon_main(sys.argv[1:]))")
"""The daemon process's program: `daemon_main` from the very package tree that checked the config
(`-P`: never a `controller` that happens to lie in the working directory)."""


def read_guard_key(cfg: OfficeConfig) -> bytes | None:
    """`security.guard_public_key` as 32 raw bytes, parsed and checked by `cryptography`."""
    if not cfg.security.guard_public_key:
        return None
    from controller.protocol.signing import load_public_key  # noqa: PLC0415 - `run` process only

    return load_public_key(Path(cfg.security.guard_public_key)).public_bytes_raw()


def snapshot(cfg: OfficeConfig, guard_key: bytes | None) -> bytes:
    """The config as validated (environment applied), and the guard's raw public key."""
    return json.dumps({
        "version": SNAPSHOT_VERSION,
        "config": cfg.model_dump(mode="json", by_alias=True, exclude_unset=True),
        "guard_key": None if guard_key is None else guard_key.hex(),
    }).encode()


def load_snapshot(data: bytes) -> tuple[OfficeConfig, bytes | None]:
    """Validate a snapshot again with the schema; problems by key, as from the file."""
    try:
        envelope: dict[str, Any] = json.loads(data)
    except (ValueError, TypeError) as exc:
        raise ConfigError([f"config snapshot: not JSON ({exc})"]) from None
    if not isinstance(envelope, dict) or envelope.get("version") != SNAPSHOT_VERSION:
        raise ConfigError(["config snapshot: unknown version (run `officesec run` again)"])
    try:
        cfg = OfficeConfig.model_validate(envelope.get("config"))
    except ValidationError as exc:
        raise ConfigError(format_errors(exc)) from None
    key = envelope.get("guard_key")
    if key is None:
        return cfg, None
    try:
        raw = bytes.fromhex(key)
    except (ValueError, TypeError):
        raise ConfigError(["security.guard_public_key: bad key in the snapshot"]) from None
    return cfg, raw


def interpreter_args() -> list[str]:
    """The command-line options of this interpreter (`-X importtime`, `-W`, `-I`, ...)."""
    args = [f"-X{k}" if v is True else f"-X{k}={v}" for k, v in sys._xoptions.items()]
    args += [f"-W{w}" for w in sys.warnoptions]
    flags = sys.flags
    for on, opt in ((flags.isolated, "-I"), (flags.ignore_environment and not flags.isolated,
                                               "-E"),
                    (flags.no_user_site and not flags.isolated, "-s"),
                    (flags.dont_write_bytecode, "-B")):
        if on:
            args.append(opt)
    args += ["-O"] * flags.optimize
    return args


def exec_daemon(cfg: OfficeConfig, guard_key: bytes | None) -> NoReturn:
    """Replace this process by the daemon process, which gets the snapshot on an fd."""
    fd = os.memfd_create("officesec-config", 0)  # not inheritable until handed over
    os.write(fd, snapshot(cfg, guard_key))
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    sys.stdout.flush()
    sys.stderr.flush()
    root = str(Path(__file__).resolve().parents[2])
    argv = [sys.executable, *interpreter_args(), "-P", "-c", ENTRY.format(root=root), str(fd)]
    os.execv(sys.executable, argv)  # noqa: S606 - our own interpreter, a fixed argv


def read_fd(fd: int) -> bytes:
    """The snapshot from the fd `exec_daemon` handed over (closed after reading)."""
    chunks = []
    with os.fdopen(fd, "rb", closefd=True) as fh:
        while chunk := fh.read(65536):
            chunks.append(chunk)
    return b"".join(chunks)
