"""structlog set-up: JSON lines under systemd, readable console on a terminal.

Configured once at start-up (cached loggers ignore later configure calls).
Tracebacks never carry frame locals, so secrets cannot leak through them.
structlog is imported on configuration, so that a process writing JSON can
first decline the console prettifiers structlog would load (`without_console_extras`).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

CONSOLE_EXTRAS = ("rich", "better_exceptions", "colorama")
"""Optional packages only structlog's console renderer uses; JSON logs never do."""

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


def json_wanted(json_logs: bool | None) -> bool:
    """`[log] json` as given, else JSON whenever stdout is not a terminal (systemd)."""
    return not sys.stdout.isatty() if json_logs is None else json_logs


def without_console_extras() -> bool:
    """Keep structlog from importing rich & co. (4 MiB in the office daemon, issue #18).

    structlog imports them at its own import when they are installed, whatever the
    renderer. Call before anything imports structlog, and only where logs are JSON;
    False (and nothing changed) when structlog is already loaded.
    """
    if "structlog" in sys.modules:
        return False
    for name in CONSOLE_EXTRAS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # import raises ImportError
    return True


def configure_logging(*, json_logs: bool | None = None, level: int = logging.INFO) -> None:
    """Route structlog and stdlib logging (paho, uvicorn) to stdout in one format."""
    import structlog  # noqa: PLC0415 - see the module docstring
    from structlog.tracebacks import ExceptionDictTransformer  # noqa: PLC0415

    json_logs = json_wanted(json_logs)
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
