"""The API's front door: who is asking, what they may do, and answers that cannot break.

`api(handler, write=..., admin=...)` wraps every `/api/*` route: API token,
HTTP Basic or session; the CSRF token on session writes; the `viewer` role
reads only; a `BadRequestError` becomes a 400. Cross-site writes never get
here (SecurityMiddleware refuses them first, whatever the authentication).
The JSON helpers turn a non-finite number into null, so one bad value can
never make an answer fail for every console.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from controller.guard.i18n import _
from controller.guard.web.auth import (
    Auth,
    LockedOut,
    User,
    basic_credentials,
    bearer_token,
    check_csrf,
    client_address,
    current_user,
)
from controller.guard.web.security import looks_like_browser

Handler = Callable[[Request, User], Awaitable[Response]]


class BadRequestError(Exception):
    """Client error; the message (already in the station's language) goes back in the body."""


class UnprocessableError(BadRequestError):
    """A well-formed request with an invalid field: 422, naming the field."""

    def __init__(self, field: str, message: str) -> None:
        """`field` is the name the client must fix (never translated), `message` is for people."""
        super().__init__(f"{field}: {message}")
        self.field = field


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    """A JSON error answer."""
    return JSONResponse({"error": message, **extra}, status_code=status)


def _challenge(request: Request) -> dict[str, str]:
    """The Basic challenge, for scripts only: a browser would remember the credentials."""
    if looks_like_browser({k.lower(): v for k, v in request.headers.items()}):
        return {}
    return {"WWW-Authenticate": 'Basic realm="officesec"'}


async def authenticate(request: Request) -> User | Response:  # noqa: PLR0911
    """The caller (API token, HTTP Basic or session), or the 401/429 answer."""
    auth: Auth = request.app.state.auth
    token = bearer_token(request)
    if token is not None:
        user = auth.token_user(token)
        if user is None:
            return JSONResponse({"error": _("unknown API token")}, status_code=401)
        request.state.user = user
        return user
    basic = basic_credentials(request)
    if basic is not None:
        try:
            user = await auth.verify(basic[0], basic[1], "basic", client_address(request))
        except LockedOut as exc:
            return error(429, _("too many failed logins; try again later"),
                         retry_after_s=round(exc.retry_after))
        if user is None:
            return JSONResponse({"error": _("wrong user name or password")}, status_code=401,
                                headers=_challenge(request))
        request.state.user = user
        return user
    user = current_user(request)
    if user is None:
        return JSONResponse({"error": _("not logged in")}, status_code=401,
                            headers=_challenge(request))
    return user


def api(handler: Handler, *, write: bool = False, admin: bool = False
        ) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate, check CSRF on session writes, roles (viewer reads only), and 400s.

    Cross-site writes are refused before this, whatever the authentication
    (SecurityMiddleware); Basic and token writes carry no ambient credential.
    """

    async def endpoint(request: Request) -> Response:  # noqa: PLR0911 - one answer per refusal
        user = await authenticate(request)
        if isinstance(user, Response):
            return user
        if write and user.via == "session" and not await check_csrf(request):
            return error(403, _("CSRF token missing or invalid (send X-CSRF-Token)"))
        if write and not user.can_write:
            return error(403, _("the viewer role can only look, not act"))
        if admin and user.role != "admin":
            return error(403, _("this action needs the admin role"))
        try:
            return await handler(request, user)
        except UnprocessableError as exc:
            return error(422, str(exc), field=exc.field)
        except BadRequestError as exc:
            return error(400, str(exc))

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def safe_json(data: Any, status: int = 200) -> JSONResponse:
    """A JSON answer that survives one bad value: a non-finite number becomes null.

    The wire models refuse NaN and Infinity, so this is defence in depth: one
    office must never make /api/offices answer 500 for every console.
    """
    try:
        return JSONResponse(data, status_code=status)
    except ValueError:
        return JSONResponse(_finite(data), status_code=status)


def dumps(data: Any) -> str:
    """Compact JSON for SSE, with non-finite numbers as null (never `NaN` in a stream)."""
    try:
        return json.dumps(data, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(data), separators=(",", ":"), default=str)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
