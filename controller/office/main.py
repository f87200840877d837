"""`officesec run`: start one office daemon, supervise it, stop it cleanly.

The main thread only waits for SIGTERM/SIGINT/SIGHUP and pets the systemd
watchdog while the daemon's threads are healthy; the daemon does the work.
SIGHUP is a stop like SIGTERM (relay off, `offline`, clean exit; issue 16.2):
there is no live reload, so a closed terminal or `kill -HUP` never kills the
daemon uncleanly, and systemd's Restart=always brings it back with the new
config.
"""

from __future__ import annotations

import argparse
import signal
import threading

import structlog

from controller import sdnotify
from controller.errors import ConfigError, ControllerError, print_problems
from controller.logs import LEVELS, configure_logging
from controller.office.compose import build_daemon
from controller.office.office_config import load_office_config

log = structlog.get_logger("daemon")


def main(args: argparse.Namespace) -> int:
    """`officesec run --config FILE`: exit 0 on a clean stop, 2 on a bad config, 1 on failure."""
    try:
        cfg = load_office_config(args.config)
    except ConfigError as exc:
        return print_problems(exc)
    configure_logging(json_logs=cfg.log.json_logs, level=LEVELS[cfg.log.level])
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    daemon = build_daemon(cfg)
    try:
        daemon.start()
    except ConfigError as exc:
        daemon.board.close()
        return print_problems(exc)
    except ControllerError as exc:
        log.error("start_failed", error=str(exc))
        daemon.board.close()
        return 1
    sdnotify.ready("running")
    period = sdnotify.watchdog_period() or 1.0
    while not stop.wait(min(period, 1.0)):
        if daemon.healthy():
            sdnotify.watchdog()
        else:
            log.error("unhealthy", logic=daemon.thread is not None and daemon.thread.is_alive(),
                      outbox=daemon.outbox.alive, mqtt_loop=daemon.link.loop_alive)
    sdnotify.stopping()
    daemon.stop()
    return 0



