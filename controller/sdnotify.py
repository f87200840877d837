"""systemd readiness and watchdog notifications, without a C dependency.

`Type=notify` units wait for READY=1; `WatchdogSec` restarts a daemon that
stops sending WATCHDOG=1. Outside systemd (no NOTIFY_SOCKET) every call is a
harmless no-op, so the daemons call these unconditionally.
"""

from __future__ import annotations

import os
import socket


def sd_notify(state: str) -> bool:
    """Send one state string (e.g. ``READY=1``) to systemd; False when not under systemd.

    A failing socket is reported as False rather than raised: a lost
    notification must never crash a life-safety daemon (systemd will then
    restart it on the watchdog, which is the right outcome).
    """
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr[0] == "@":  # abstract namespace
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(addr)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True


def ready(status: str = "") -> bool:
    """Tell systemd the daemon is up (only after GPIO and MQTT are set up)."""
    return sd_notify("READY=1" + (f"\nSTATUS={status}" if status else ""))


def watchdog() -> bool:
    """Pet the watchdog; call only while every worker is known to be alive."""
    return sd_notify("WATCHDOG=1")


def stopping() -> bool:
    """Tell systemd a deliberate stop has begun."""
    return sd_notify("STOPPING=1")


def status(text: str) -> bool:
    """A one-line status shown by ``systemctl status``."""
    return sd_notify(f"STATUS={text}")


def watchdog_period() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None when not enabled."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec:
        return None
    try:
        if pid and int(pid) != os.getpid():
            return None
        value = int(usec)
    except ValueError:
        return None
    if value <= 0:
        return None
    return value / 2e6
