"""Exception tree: every library error is translated once, at its adapter.

ControllerError
├── ConfigError      bad or unreadable configuration (exit code 2)
├── HardwareError    gpiozero could not claim or drive a pin
├── TransportError   paho / the broker failed in a way the caller must see
└── StoreError       SQLite could not be opened or written

The exit codes of every sub-command live here too (contract §1), with the one
"print every problem, exit 2" path that all of them share.
"""

import sys

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


class ControllerError(Exception):
    """Base of every error officesec raises on purpose."""


class ConfigError(ControllerError):
    """The configuration cannot be used; the message names the key or the file."""

    def __init__(self, problems: list[str]) -> None:
        """Keep every problem, one per line, so the installer sees all at once."""
        self.problems = problems
        super().__init__("\n".join(problems))


class HardwareError(ControllerError):
    """A GPIO pin could not be claimed or driven."""


class TransportError(ControllerError):
    """The MQTT transport failed in a way that the caller must handle."""


class StoreError(ControllerError):
    """The SQLite store could not be opened, read or written."""


def print_problems(exc: ConfigError, *, tail: str | None = None) -> int:
    """Print every config problem on its own stderr line (plus `tail`); return EXIT_CONFIG."""
    for line in exc.problems:
        print(line, flush=True, file=sys.stderr)
    if tail:
        print(tail, flush=True, file=sys.stderr)
    return EXIT_CONFIG
