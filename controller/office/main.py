"""`officesec run`: check the config, start one office daemon, supervise it, stop it cleanly.

`main` loads and checks the config (every problem by key, exit 2), then
becomes the daemon process through `handoff` (execv, same PID):
`daemon_main` reads the snapshot and `serve`s without pydantic-settings or
`cryptography` in memory (#18).
The main thread only waits for SIGTERM/SIGINT/SIGHUP and pets the systemd
watchdog while the daemon's threads are healthy; the daemon does the work.
SIGHUP is a stop like SIGTERM (relay off, `offline`, clean exit; issue 16.2):
there is no live reload, so a closed terminal or `kill -HUP` never kills the
daemon uncleanly, and systemd's Restart=always brings it back with the new
config. SIGUSR1 logs the process's footprint (`footprint`: memory and the
packages loaded), for checking it on a running Pi.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
from typing import TYPE_CHECKING

from controller import sdnotify
from controller.errors import ConfigError, ControllerError, print_problems
from controller.logs import LEVELS, configure_logging, json_wanted, without_console_extras
from controller.office import handoff
from controller.office.office_config import OfficeConfig, load_office_config

if TYPE_CHECKING:
    import argparse  # 0.3 MiB the daemon process does not need

    from controller.office.command_gate import GuardKey

# structlog, gpiozero, paho and the daemon are imported by `serve`, after `daemon_main` has
# decided on the console extras: nothing above imports structlog.


def main(args: argparse.Namespace) -> int:
    """`officesec run --config FILE`: exit 0 on a clean stop, 2 on a bad config, 1 on failure."""
    try:
        cfg = load_office_config(args.config)
        key = handoff.read_guard_key(cfg)
    except ConfigError as exc:
        return print_problems(exc)
    handoff.exec_daemon(cfg, key)


def footprint() -> dict[str, object]:
    """VmRSS/VmHWM (KiB), the frozen objects and the top-level packages imported."""
    status: dict[str, object] = {}
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                status[key.lower() + "_kib"] = int(value.split()[0])
    status["gc_frozen"] = gc.get_freeze_count()
    status["packages"] = sorted({name.partition(".")[0] for name, mod in sys.modules.items()
                                 if mod is not None})
    return status


def freeze_startup_objects() -> None:
    """Keep the ~40,000 objects of start-up out of every later garbage collection.

    A full collection walks them all: 12-19 ms measured on this machine, a pause
    a press could wait behind. They live as long as the process, so after one
    collection of what start-up left behind they are frozen (`gc.freeze`); later
    collections walk only what was allocated since.
    """
    gc.collect()
    gc.freeze()


def serve(cfg: OfficeConfig, guard_key: GuardKey | None) -> int:
    """Run the daemon for a validated config until a stop signal; the exit code."""
    configure_logging(json_logs=cfg.log.json_logs, level=LEVELS[cfg.log.level])
    import structlog  # noqa: PLC0415 - after `configure_logging`, see above

    from controller.office.compose import build_daemon  # noqa: PLC0415

    log = structlog.get_logger("daemon")
    stop, report = threading.Event(), threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: report.set())  # logged by the loop below
    daemon = build_daemon(cfg, guard_key=guard_key)
    try:
        daemon.start()
    except ConfigError as exc:
        daemon.board.close()
        return print_problems(exc)
    except ControllerError as exc:
        log.error("start_failed", error=str(exc))
        daemon.board.close()
        return 1
    freeze_startup_objects()
    sdnotify.ready("running")
    period = sdnotify.watchdog_period() or 1.0
    while not stop.wait(min(period, 1.0)):
        if daemon.healthy():
            sdnotify.watchdog()
        else:
            log.error("unhealthy", logic=daemon.thread is not None and daemon.thread.is_alive(),
                      outbox=daemon.outbox.alive, mqtt_loop=daemon.link.loop_alive)
        if report.is_set():
            report.clear()
            log.warning("footprint", **footprint())  # asked for: shown at any level
    sdnotify.stopping()
    daemon.stop()
    return 0


def daemon_main(argv: list[str]) -> int:
    """The daemon process: snapshot -> config, JSON logs without console extras -> serve."""
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: daemon_main FD (the daemon process that `officesec run` starts)",
              file=sys.stderr)
        return 2
    try:
        cfg, raw_key = handoff.load_snapshot(handoff.read_fd(int(argv[0])))
    except ConfigError as exc:
        return print_problems(exc)
    except OSError as exc:
        print(f"config snapshot: cannot read fd {argv[0]}: {exc.strerror}", file=sys.stderr)
        return 2
    if json_wanted(cfg.log.json_logs):
        without_console_extras()
    from controller.office.command_gate import GuardKey  # noqa: PLC0415 - imports structlog

    try:
        key = None if raw_key is None else GuardKey(raw_key)
    except ValueError:
        return print_problems(ConfigError(["security.guard_public_key: bad key in the snapshot"]))
    return serve(cfg, key)
