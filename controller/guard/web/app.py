"""The guard station's Starlette app: login, API, SSE, the dashboard pages, static files.

`create_app(service)` wires the routes to one GuardService; the service is
started and stopped by the app's lifespan, so uvicorn owns the whole process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from controller.guard.i18n import N_, _
from controller.guard.web import alarm_api, api, login
from controller.guard.web.auth import Auth, session_secret
from controller.guard.web.i18n import LanguageMiddleware
from controller.guard.web.pages import routes as page_routes
from controller.guard.web.security import SecurityMiddleware
from controller.guard.web.sessions import Sessions

if TYPE_CHECKING:
    from controller.guard.service import GuardService

log = structlog.get_logger("officesec.guard.web")
STATIC_DIR = Path(__file__).parent / "static"
HTTP_PHRASES = (N_("Not Found"), N_("Method Not Allowed"))


def _secret_path(store_path: str) -> str | None:
    if store_path == ":memory:":
        return None
    return str(Path(store_path).parent / "session.key")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException only
    text = _(str(exc.detail))  # Starlette's own details are the HTTP phrases marked below
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": text}, status_code=exc.status_code, headers=exc.headers)
    return PlainTextResponse(text, status_code=exc.status_code, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("request_failed", path=request.url.path[:200], error=repr(exc)[:300])
    return JSONResponse({"error": _("internal error")}, status_code=500)


def create_app(service: GuardService, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The ASGI app for one guard station; `extra_routes` are the demo's, mounted by the CLI."""
    cfg = service.cfg
    secure = cfg.guard.tls_cert is not None

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    routes = [*api.routes, *alarm_api.routes, *login.routes, *page_routes,
              Mount("/static", app=StaticFiles(directory=str(STATIC_DIR)), name="static"),
              *extra_routes]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: _http_error, Exception: _server_error})
    app.state.service = service
    app.state.demo = cfg.guard.demo
    sec = cfg.security
    sessions = Sessions(service.store.db, idle_s=sec.session_idle_s,
                        max_age_s=sec.session_max_age_s)
    app.state.auth = Auth(
        cfg.users, session_secret(_secret_path(cfg.store.path)), sessions=sessions,
        secure=secure, lockout_attempts=sec.lockout_attempts, lockout_s=sec.lockout_s,
        audit=lambda user, action, outcome, detail: service.store.audit(
            user, action, "web", outcome, detail), tokens=cfg.api_tokens)
    app.state.sse_streams = {}
    app.state.trust_forwarded_for = sec.trust_forwarded_for
    app.add_middleware(SecurityMiddleware, secure=secure)
    app.add_middleware(LanguageMiddleware, language=cfg.guard.language)  # outermost
    return app
