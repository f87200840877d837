"""`officesec guard --config FILE`: the guard station process.

Loads the config (problems -> stderr, exit 2), starts uvicorn with the app,
whose lifespan runs the MQTT consumer, and stops cleanly on SIGTERM/SIGINT
(availability `offline` published, store closed) within about two seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from controller import sdnotify
from controller.errors import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_OK,
    ConfigError,
    StoreError,
    print_problems,
)
from controller.logs import LEVELS, configure_logging

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from controller.guard.guard_config import GuardConfig


async def _systemd(service: Any) -> None:
    """READY=1 once serving; WATCHDOG=1 while the MQTT connection manager and this loop run."""
    sdnotify.ready("serving")
    period = sdnotify.watchdog_period()
    while period is not None:
        await asyncio.sleep(min(period, 1.0))
        if service.mqtt.alive():
            sdnotify.watchdog()


RouteHook = Callable[["GuardConfig"], Sequence["BaseRoute"]]
"""Extra routes for a loaded config: how the command line mounts the demo's simulator."""


def main(args: argparse.Namespace, extra_routes: RouteHook | None = None) -> int:
    """Run the guard station until a signal stops it; returns the exit code."""
    from controller.guard.guard_config import load_guard_config  # noqa: PLC0415

    try:
        cfg = load_guard_config(args.config)
        cfg.roster()
    except ConfigError as exc:
        return print_problems(exc)
    configure_logging(json_logs=cfg.log.json_logs, level=LEVELS[cfg.log.level])
    log = structlog.get_logger("officesec.guard")
    import uvicorn  # noqa: PLC0415

    from controller.guard.service import GuardService  # noqa: PLC0415
    from controller.guard.web.app import create_app  # noqa: PLC0415
    from controller.guard.web.server import server_options, throttle_library_logs  # noqa: PLC0415

    throttle_library_logs()

    try:
        service = GuardService(cfg)
    except (StoreError, ConfigError) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_FAILURE
    app = create_app(service, extra_routes(cfg) if extra_routes else ())
    tls = cfg.guard.tls_cert is not None
    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM after shutting down; we want a clean exit 0 instead."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            old = {sig: signal.signal(sig, self.handle_exit)
                   for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in old.items():
                    signal.signal(sig, handler)

    server = Server(uvicorn.Config(
        app, host=cfg.guard.listen_host, port=cfg.guard.listen_port, log_config=None,
        access_log=False, lifespan="on", timeout_graceful_shutdown=1,
        ssl_certfile=cfg.guard.tls_cert, ssl_keyfile=cfg.guard.tls_key,
        server_header=False, **server_options(cfg.security.http_header_timeout_s,
                                              cfg.security.http_max_connections,
                                              cfg.security.http_max_connections_per_client)))

    async def serve() -> bool:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started:
            port = cfg.guard.listen_port
            for srv in server.servers:
                for sock in srv.sockets:
                    port = sock.getsockname()[1]
            host = cfg.guard.listen_host
            shown = f"[{host}]" if ":" in host else host
            log.info("dashboard_url", url=f"{'https' if tls else 'http'}://{shown}:{port}/")
            notifier = asyncio.create_task(_systemd(service))
        await task
        if server.started:
            notifier.cancel()
            sdnotify.stopping()
        return bool(server.started)

    try:
        started = asyncio.run(serve())
    except (OSError, StoreError) as exc:
        log.error("guard_failed", error=str(exc))
        return EXIT_FAILURE
    return EXIT_OK if started else EXIT_FAILURE
