"""`officesec run`: start one office daemon, supervise it, stop it cleanly.

The main thread only waits for SIGTERM/SIGINT and pets the systemd watchdog
while the daemon's threads are healthy; the daemon does the work.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

import structlog

from controller import sdnotify
from controller.errors import ConfigError, ControllerError
from controller.logs import configure_logging
from controller.office.daemon import Daemon
from controller.office.office_config import load_office_config

log = structlog.get_logger("daemon")


def main(args: argparse.Namespace) -> int:
    """`officesec run --config FILE`: exit 0 on a clean stop, 2 on a bad config, 1 on failure."""
    try:
        cfg = load_office_config(args.config)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, flush=True, file=sys.stderr)
        return 2
    configure_logging(json_logs=cfg.log.json_logs, level=_level(cfg.log.level))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    daemon = Daemon(cfg)
    try:
        daemon.start()
    except ConfigError as exc:
        for line in exc.problems:
            print(line, flush=True, file=sys.stderr)
        daemon.board.close()
        return 2
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


def _level(name: str) -> int:
    return {"debug": 10, "info": 20, "warning": 30, "error": 40}[name]

