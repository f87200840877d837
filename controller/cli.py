"""The `officesec` command line: one entry point, sub-commands load lazily.

Lazy imports keep `check-config` and `keygen` fast and free of gpiozero,
paho and the web stack, and let each sub-command live in its own module.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from controller.guard.guard_config import GuardConfig

from controller.errors import EXIT_FAILURE, EXIT_OK, print_problems

# sub-command -> (module, function, help); each function takes the parsed args, returns the code
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("controller.office.main", "main", "run the office daemon (one per Raspberry Pi)"),
    "guard": ("controller.cli", "guard", "run the guard station"),
    "demo": ("controller.demo.runner", "main", "run the whole system on this machine"),
    "check-config": ("controller.cli", "check_config", "validate an office or guard config"),
    "keygen": ("controller.cli", "keygen", "create the guard station's command-signing keys"),
    "provision": ("controller.deploy.provision", "main",
                  "write configs and credentials for a fleet"),
    "selftest": ("controller.deploy.office_selftest", "main",
                 "check the wiring and the broker on a Pi"),
    "hash-password": ("controller.guard.passwords", "main", "print an argon2 hash for [[users]]"),
    "api-token": ("controller.guard.passwords", "api_token",
                  "make an API token for a script (prints the token and its config entry)"),
    "relay-off": ("controller.deploy.office_selftest", "relay_off",
                  "drive the door relay to its de-energised (locked) level, then exit"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="officesec", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_mod, _fn, helptext) in COMMANDS.items():
        p = sub.add_parser(name, help=helptext, description=helptext)
        _arguments(name, p)
    return parser


def _arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name in ("run", "guard", "relay-off"):
        p.add_argument("--config", required=True, type=Path, help="TOML config file")
    elif name == "check-config":
        p.add_argument("file", type=Path, help="office or guard TOML config")
    elif name == "keygen":
        p.add_argument("--out", required=True, type=Path, help="directory for the key pair")
    elif name == "demo":
        p.add_argument("--offices", type=int, default=6, help="number of simulated offices")
        p.add_argument("--port", type=int, default=0, help="dashboard port (0 = a free one)")
        p.add_argument("--no-mosquitto", action="store_true",
                       help="use the embedded Python broker even when mosquitto is installed")
    elif name == "provision":
        p.add_argument("inventory", type=Path, help="inventory (CSV or TOML)")
        p.add_argument("--out", required=True, type=Path, help="output directory")
        p.add_argument("--rotate", metavar="ID", action="append", default=[],
                       help="re-issue one office's credentials (repeatable)")
    elif name == "api-token":
        p.add_argument("--user", required=True, help="the [[users]] name the token acts as")
        p.add_argument("--name", required=True, help="a label for the token, e.g. monitoring")
    elif name == "selftest":
        p.add_argument("--config", required=True, type=Path, help="office TOML config")
        p.add_argument("--pulse-relay", action="store_true", help="also pulse the door relay")


def check_config(args: argparse.Namespace) -> int:
    """Validate an office or guard config; print every problem with its key path."""
    from controller.errors import ConfigError  # noqa: PLC0415
    from controller.guard.guard_config import is_guard_config, load_guard_config  # noqa: PLC0415
    from controller.office.office_config import load_office_config  # noqa: PLC0415
    from controller.settings import read_toml  # noqa: PLC0415

    path: Path = args.file
    try:
        data = read_toml(path)
        if is_guard_config(data):
            gcfg = load_guard_config(path)
            gcfg.roster()
            kind = "guard"
        else:
            load_office_config(path)
            kind = "office"
    except ConfigError as exc:
        return print_problems(exc)
    print(f"{path}: valid {kind} config")
    return EXIT_OK


def guard(args: argparse.Namespace) -> int:
    """The guard station; with `[guard] demo = true` the demo's simulator routes are mounted."""
    from controller.guard.main import main as guard_main  # noqa: PLC0415

    return guard_main(args, extra_routes=_demo_routes)


def _demo_routes(cfg: GuardConfig) -> list[BaseRoute]:
    if not cfg.guard.demo:
        return []
    from controller.demo import web  # noqa: PLC0415

    return web.routes()


def keygen(args: argparse.Namespace) -> int:
    """Create the Ed25519 command-signing key pair."""
    from controller.errors import ConfigError  # noqa: PLC0415
    from controller.protocol.signing import keygen as make_keys  # noqa: PLC0415

    try:
        private, public = make_keys(args.out)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"{args.out}: cannot write keys: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"private key (keep on the guard station, mode 0600): {private}")
    print(f"public key (copy to every office): {public}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run one sub-command; return its exit code."""
    args = _parser().parse_args(argv)
    module, func, _help = COMMANDS[args.command]
    handler: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), func)
    try:
        return handler(args)
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
