"""Whether the kernel keeps a GPIO output driven after the process that set it is gone.

On Raspberry Pi OS it does by default: libgpiod's "revert on release" is off
(`pinctrl_bcm2835.persist_gpio_outputs`), so a daemon killed (SIGKILL, OOM,
watchdog) during a door pulse leaves the relay energised - the door released -
until something drives the pin again. `dtparam=strict_gpiod` in config.txt (or
`pinctrl_bcm2835.persist_gpio_outputs=n` on the kernel command line) makes
the kernel return a released line to an input, so the relay board's pull
resistor de-energises the relay (issue 16.1, docs/install.md).

The running kernel's module parameter is the truth when it is readable; the
boot files are the fallback. Used by the daemon's start-up warning and by
`officesec selftest`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PARAM = Path("/sys/module/pinctrl_bcm2835/parameters/persist_gpio_outputs")
CONFIG_TXT = (Path("/boot/firmware/config.txt"), Path("/boot/config.txt"))
CMDLINE = Path("/proc/cmdline")
_STRICT = re.compile(r"^\s*dtparam\s*=\s*(?:[^#\s]*,)?strict_gpiod(?:\s*=\s*(on|yes|1|true))?"
                     r"(?:,[^#\s]*)?\s*(?:#.*)?$", re.IGNORECASE)
_CMD_OFF = re.compile(r"(?:^|\s)pinctrl_bcm2835\.persist_gpio_outputs=(n|0|N)(?:\s|$)")


@dataclass(frozen=True)
class Persistence:
    """`persists`: True (outputs stay driven), False (revert on release), None (unknown)."""

    persists: bool | None
    detail: str


def check(param: Path = PARAM, configs: tuple[Path, ...] = CONFIG_TXT,
          cmdline: Path = CMDLINE) -> Persistence:
    """Read the running kernel's setting, else the boot configuration."""
    try:
        value = param.read_text().strip()
    except OSError:
        value = ""
    if value:
        persists = value.upper() in ("Y", "1")
        return Persistence(persists, f"{param} = {value}")
    try:
        if _CMD_OFF.search(cmdline.read_text()):
            return Persistence(False, f"{cmdline}: pinctrl_bcm2835.persist_gpio_outputs=n")
    except OSError:
        pass
    for path in configs:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        if any(_STRICT.match(line) for line in lines):
            return Persistence(False, f"{path}: dtparam=strict_gpiod")
        return Persistence(True, f"{path}: no dtparam=strict_gpiod (Raspberry Pi OS default: "
                                 "outputs stay driven after the process exits)")
    return Persistence(None, "not a Raspberry Pi kernel (no pinctrl_bcm2835 parameter, "
                             "no config.txt)")


def persistence_warning(found: Persistence | None = None) -> str | None:
    """A warning text when a killed daemon would leave the relay driven, else None."""
    found = found if found is not None else check()
    if found.persists is True:
        return (f"{found.detail}: a killed daemon leaves the strike relay as it was; add "
                "dtparam=strict_gpiod to config.txt and reboot (docs/install.md)")
    return None
