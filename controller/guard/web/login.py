"""The login and logout pages (plain forms; the dashboard engineer styles them).

Logout ends the server-side session, not only the cookie: a copied cookie is
worthless afterwards.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from controller.guard.i18n import ngettext
from controller.guard.web.auth import (
    SESSION_COOKIE,
    Auth,
    LockedOut,
    check_csrf,
    client_address,
    csrf_token,
)
from controller.guard.web.templating import templates

MAX_FIELD = 200


def _safe_next(value: str | None) -> str:
    """Only local paths: never redirect a guard to another site after login."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//") \
            or "\\" in value:
        return "/"
    return value


def _page(request: Request, status: int = 200, error: str = "") -> Response:
    return templates.TemplateResponse(
        request, "login.html",
        {"csrf": csrf_token(request), "error": error,
         "next": _safe_next(request.query_params.get("next")),
         "demo": bool(getattr(request.app.state, "demo", False))},
        status_code=status)


async def login_form(request: Request) -> Response:
    """The login page."""
    return _page(request)


async def login(request: Request) -> Response:
    """Check the form; on success set the session cookie and go on."""
    if not await check_csrf(request):
        return _page(request, 403, "The form expired. Please try again.")
    form = await request.form()
    name, password, nxt = form.get("username"), form.get("password"), form.get("next")
    if not isinstance(name, str) or not isinstance(password, str) or not name \
            or len(name) > MAX_FIELD or len(password) > 1024:
        return _page(request, 400, "Enter user name and password.")
    auth: Auth = request.app.state.auth
    try:
        user = await auth.verify(name, password, "form", client_address(request))
    except LockedOut as exc:
        seconds = max(1, round(exc.retry_after))
        return _page(request, 429, ngettext(
            "Too many failed attempts. Try again in {n} second.",
            "Too many failed attempts. Try again in {n} seconds.", seconds).format(n=seconds))
    if user is None:
        return _page(request, 401, "Wrong user name or password.")
    response = RedirectResponse(_safe_next(nxt if isinstance(nxt, str) else None),
                                status_code=303)
    # a session cookie the browser had before login is ended too (no session fixation)
    auth.sessions.end_token(request.cookies.get(SESSION_COOKIE))
    auth.set_session(response, user, client_address(request))
    return response


async def logout(request: Request) -> Response:
    """End the session (POST with CSRF, so no link can log a guard out)."""
    if not await check_csrf(request):
        return RedirectResponse("/", status_code=303)
    response = RedirectResponse("/login", status_code=303)
    auth: Auth = request.app.state.auth
    auth.clear_session(response, request.cookies.get(SESSION_COOKIE))
    return response


routes = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
