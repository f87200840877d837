"""uvicorn, hardened against slow and numerous clients (slowloris).

uvicorn's h11 protocol has no header or request-body timeout: a client that
sends half a request holds its connection (and a file descriptor) forever, and
enough of them starve `/healthz` and `/login`. This protocol subclass gives
every request `[security] http_header_timeout_s` from its first byte until it
has been received completely (headers and body), closes connections beyond
`http_max_connections` (or beyond `http_max_connections_per_client` from one
address, so that one slow attacker cannot lock the guards out) at once, and
keeps uvicorn's keep-alive timeout for idle connections. Repeated log lines
from uvicorn and asyncio ("Too many open files", "Invalid HTTP request") are
throttled to one per message and 10 s.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

from controller.guard.ratelimit import RepeatFilter

log = structlog.get_logger("officesec.guard.web.server")
MAX_INCOMPLETE_EVENT = 16 * 1024  # request line + headers; h11's default, made explicit
KEEP_ALIVE_S = 5
_LOGGERS = ("asyncio", "uvicorn", "uvicorn.error", "uvicorn.access", "sse_starlette")


def guarded_protocol(header_timeout_s: float, max_connections: int,
                     per_client: int) -> type[H11Protocol]:
    """An H11Protocol class with a per-request receive deadline and connection caps."""
    per_host: dict[str, int] = {}

    class GuardedH11Protocol(H11Protocol):
        """Closes a connection whose request does not arrive in time, or one too many."""

        _deadline: asyncio.TimerHandle | None = None
        _host: str | None = None
        refused = 0  # class-wide counters, read by tests and the health view
        timed_out = 0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            host = self.client[0] if self.client else ""
            if len(self.connections) > max_connections or per_host.get(host, 0) >= per_client:
                type(self).refused += 1
                log_once("http_connection_refused", open=len(self.connections),
                         limit=max_connections, client=host[:60],
                         client_open=per_host.get(host, 0), client_limit=per_client)
                transport.abort()
                return
            self._host = host
            per_host[host] = per_host.get(host, 0) + 1
            self._arm()

        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(header_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def data_received(self, data: bytes) -> None:
            if self.cycle is None or self.cycle.response_complete:
                self._arm()  # the first bytes of a (next) request start its clock
            super().data_received(data)
            if self.cycle is not None and not self.cycle.more_body:
                self._disarm()  # received completely: the app has it now

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._host is not None:
                left = per_host.get(self._host, 1) - 1
                if left > 0:
                    per_host[self._host] = left
                else:
                    per_host.pop(self._host, None)
                self._host = None
            super().connection_lost(exc)

        def _too_slow(self) -> None:
            self._deadline = None
            if self.cycle is not None and not self.cycle.more_body:
                return
            type(self).timed_out += 1
            log_once("http_request_too_slow", client=str(self.client)[:60],
                     timeout_s=header_timeout_s)
            if not self.transport.is_closing():
                self.transport.abort()

    return GuardedH11Protocol


_THROTTLE = RepeatFilter(10.0)


def log_once(event: str, **fields: Any) -> None:
    """A warning at most once per event name and 10 s (an attack must not flood the log)."""
    record = logging.LogRecord("officesec", logging.WARNING, __file__, 0, event, None, None)
    if _THROTTLE.filter(record):
        log.warning(event, **fields)


def throttle_library_logs() -> None:
    """One line per repeated message from uvicorn and asyncio (call after logging is set up)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter(10.0))


def server_options(header_timeout_s: float, max_connections: int,
                   per_client: int) -> dict[str, Any]:
    """The uvicorn.Config keyword arguments that bound slow and numerous clients."""
    return {"http": guarded_protocol(header_timeout_s, max_connections, per_client),
            "timeout_keep_alive": KEEP_ALIVE_S,
            "limit_concurrency": max_connections + 16,
            "h11_max_incomplete_event_size": MAX_INCOMPLETE_EVENT,
            "backlog": 256}
