"""ASGI middleware: security headers on every answer, and the per-browser CSRF cookie.

A plain ASGI middleware (not BaseHTTPMiddleware) so that SSE streams pass
through untouched and unbuffered.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


def _has_cookie(scope: Scope, name: str) -> bool:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                if part.strip().startswith(name + "="):
                    return True
    return False
