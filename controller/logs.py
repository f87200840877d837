"""structlog set-up: JSON lines under systemd, readable console on a terminal.

Configured once at start-up (cached loggers ignore later configure calls).
Tracebacks never carry frame locals, so secrets cannot leak through them.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer

_SECRET_KEYS = frozenset({"password", "passwd", "secret", "token", "private_key", "sig", "key"})


def _redact(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Blank out any field whose name says it is a secret (defence in depth)."""
    for key in list(event_dict):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = "***"
    return event_dict


LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}
"""The `[log] level` names of both configs, as stdlib levels."""


def configure_logging(*, json_logs: bool | None = None, level: int = logging.INFO) -> None:
    """Route structlog and stdlib logging (paho, uvicorn) to stdout in one format."""
    if json_logs is None:
        json_logs = not sys.stdout.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any
    if json_logs:
        tail: list[Any] = [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            structlog.processors.JSONRenderer(),
        ]
        renderer = structlog.processors.JSONRenderer()
    else:
        tail = [structlog.dev.ConsoleRenderer()]
        renderer = structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[structlog.processors.add_log_level,
                               structlog.processors.TimeStamper(fmt="iso", utc=True)],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
