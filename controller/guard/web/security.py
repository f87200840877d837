"""ASGI middleware: security headers, the per-browser CSRF cookie, and no cross-site writes.

Every state-changing request (POST, PUT, PATCH, DELETE), whatever its
authentication (session, HTTP Basic, token), is refused when the browser says
it comes from another site: `Sec-Fetch-Site` other than `same-origin`, or an
`Origin` whose host differs from `Host`. Scripts send neither header and pass.
So a web page cannot ride a guard's browser, not even with Basic credentials
the browser has remembered.

A plain ASGI middleware (not BaseHTTPMiddleware) so that SSE streams pass
through untouched and unbuffered.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.guard.i18n import _
from controller.guard.web.auth import CSRF_COOKIE

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def cross_site_reason(headers: dict[str, str]) -> str | None:
    """Why a state-changing request must be refused as cross-site (None: same origin or a script).

    `headers` has lower-case names.
    """
    site = headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return f"Sec-Fetch-Site is {site[:40]!r}, not same-origin"
    origin = headers.get("origin")
    if origin is not None:
        try:
            netloc = urlsplit(origin).netloc.lower()
        except ValueError:
            netloc = ""
        if not netloc or netloc != headers.get("host", "").lower():
            return f"Origin {origin[:80]!r} is not this site"
    return None


def looks_like_browser(headers: dict[str, str]) -> bool:
    """A browser (never to be sent a Basic challenge it would remember credentials from)."""
    return ("sec-fetch-mode" in headers or "origin" in headers or "cookie" in headers
            or "text/html" in headers.get("accept", ""))


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1")
            for k, v in scope.get("headers", [])}


class SecurityMiddleware:
    """Adds the headers; gives a browser without one a CSRF cookie."""

    def __init__(self, app: ASGIApp, *, secure: bool) -> None:
        """`secure`: the site is served over HTTPS (cookies get Secure, HSTS is sent)."""
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap `send` to add headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("method", "GET") in STATE_CHANGING:
            reason = cross_site_reason(_headers(scope))
            if reason is not None:
                await _refuse(scope, send, reason)
                return
        new_csrf: str | None = None
        if not _has_cookie(scope, CSRF_COOKIE):
            new_csrf = secrets.token_urlsafe(24)
            scope.setdefault("state", {})["new_csrf"] = new_csrf

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in HEADERS if h[0] not in present)
                if self.secure:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                if new_csrf is not None:
                    cookie = (f"{CSRF_COOKIE}={new_csrf}; Path=/; HttpOnly; SameSite=Strict"
                              + ("; Secure" if self.secure else ""))
                    headers.append((b"set-cookie", cookie.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse(scope: Scope, send: Send, reason: str) -> None:
    """403 for a cross-site write, JSON on /api/*, with the usual security headers."""
    message = _("cross-site request refused: {reason}").format(reason=reason)
    if str(scope.get("path", "")).startswith("/api/"):
        body, ctype = json.dumps({"error": message}).encode(), b"application/json"
    else:
        body, ctype = message.encode(), b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", ctype),
                            (b"content-length", str(len(body)).encode()), *HEADERS]})
    await send({"type": "http.response.body", "body": body})


def _has_cookie(scope: Scope, name: str) -> bool:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                if part.strip().startswith(name + "="):
                    return True
    return False
