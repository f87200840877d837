"""Login, sessions, CSRF, lock-out and HTTP Basic for the guard station.

Sessions are HMAC-signed cookies (HttpOnly, SameSite=Strict, Secure under
HTTPS) naming the user; the role is always re-read from the config, so a
removed user is out at once. CSRF tokens are an HMAC of a random per-browser
cookie (double submit, bound to the server secret). Passwords are argon2
hashes from the config; verification runs off the event loop. Repeated
failures lock the user name out for `lockout_s`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from controller.guard.guard_config import UserCfg

SESSION_COOKIE = "officesec_session"
CSRF_COOKIE = "officesec_csrf"
BASIC_CACHE_S = 60.0
_HASHER = PasswordHasher()
# verified against for unknown users, so that a wrong name costs as much as a wrong password
_DUMMY_HASH = ("$argon2id$v=19$m=65536,t=3,p=4$yWRPYHOz2jR3ygmH3srn8g$PrEdLv"
               "jcJdoyaiKgJSCQJ6zG/T+ErINNX4lSCUesxr4")


@dataclass(frozen=True)
class User:
    """A logged-in guard."""

    name: str
    role: str


class LockedOut(Exception):  # noqa: N818 - reads better at the call site
    """The user name is locked after too many failures."""

    def __init__(self, retry_after: float) -> None:
        """Seconds until the lock ends."""
        super().__init__(f"locked for {retry_after:.0f} s")
        self.retry_after = retry_after


class Auth:
    """Users, the session secret and the failure counters (one per app)."""

    def __init__(self, users: list[UserCfg], secret: bytes, *, max_age_s: int, secure: bool,
                 lockout_attempts: int, lockout_s: float,
                 audit: Callable[[str, str, str, str], None]) -> None:
        """`audit(user, action, outcome, detail)` records logins in the trail."""
        self.users = {u.name: u for u in users}
        self.secret = secret
        self.max_age_s = max_age_s
        self.secure = secure
        self.lockout_attempts = lockout_attempts
        self.lockout_s = lockout_s
        self.audit = audit
        self.failures: dict[str, list[float]] = {}
        self.locked_until: dict[str, float] = {}
        self._basic_ok: dict[tuple[str, str], float] = {}

    # -------------------------------------------------------------- passwords

    async def verify(self, name: str, password: str, via: str) -> User | None:
        """Check a password (argon2, in a thread); counts failures, raises LockedOut."""
        now = time.monotonic()
        until = self.locked_until.get(name, 0.0)
        if until > now:
            self.audit(name, f"login_{via}", "locked", "")
            raise LockedOut(until - now)
        user = self.users.get(name)
        digest = hashlib.sha256(f"{name}\0{password}".encode()).hexdigest()
        if via == "basic" and user and self._basic_ok.get((name, digest), 0.0) > now:
            return User(user.name, user.role)
        ok = await asyncio.to_thread(_check, user.password_hash if user else _DUMMY_HASH,
                                     password)
        if ok and user is not None:
            self.failures.pop(name, None)
            if via == "basic":
                self._basic_ok[(name, digest)] = now + BASIC_CACHE_S
            else:
                self.audit(name, "login", "ok", "")
            return User(user.name, user.role)
        recent = [t for t in self.failures.get(name, []) if now - t < self.lockout_s]
        recent.append(now)
        self.failures[name] = recent
        if len(recent) >= self.lockout_attempts:
            self.locked_until[name] = now + self.lockout_s
            self.failures.pop(name, None)
            self.audit(name, f"login_{via}", "locked_out", f"{len(recent)} failures")
        else:
            self.audit(name, f"login_{via}", "failed", "")
        return None

    # --------------------------------------------------------------- sessions

    def _mac(self, data: bytes) -> str:
        return hmac.new(self.secret, data, hashlib.sha256).hexdigest()

    def session_cookie(self, user: User) -> str:
        """A signed session value for `user`."""
        body = json.dumps({"u": user.name, "exp": time.time() + self.max_age_s,
                           "n": secrets.token_urlsafe(8)}, separators=(",", ":")).encode()
        raw = base64.urlsafe_b64encode(body).decode()
        return f"{raw}.{self._mac(raw.encode())}"

    def session_user(self, value: str | None) -> User | None:
        """The user of a valid, unexpired session cookie."""
        if not value or "." not in value:
            return None
        raw, _, mac = value.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(raw.encode())):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(raw.encode()))
            name, exp = str(data["u"]), float(data["exp"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        cfg = self.users.get(name)
        if cfg is None or exp < time.time():
            return None
        return User(cfg.name, cfg.role)

    def set_session(self, response: Response, user: User) -> None:
        """Put the session cookie on a response."""
        response.set_cookie(SESSION_COOKIE, self.session_cookie(user), max_age=self.max_age_s,
                            httponly=True, samesite="strict", secure=self.secure, path="/")

    def clear_session(self, response: Response) -> None:
        """Log out."""
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                               secure=self.secure)

    def csrf_for(self, cookie_value: str) -> str:
        """The CSRF token that belongs to a browser's CSRF cookie."""
        return self._mac(b"csrf:" + cookie_value.encode())[:40]


def _check(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _auth(request: Request) -> Auth:
    auth: Auth = request.app.state.auth
    return auth


# ------------------------------------------------------ helpers for the pages


def current_user(request: Request) -> User | None:
    """The logged-in user (session cookie, or HTTP Basic already checked on /api/*)."""
    user = getattr(request.state, "user", None)
    if isinstance(user, User):
        return user
    return _auth(request).session_user(request.cookies.get(SESSION_COOKIE))


def require_user(
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Page decorator: not logged in means a redirect to /login (and back afterwards)."""

    async def wrapper(request: Request) -> Response:
        if current_user(request) is None:
            target = request.url.path
            return RedirectResponse(f"/login?next={target}", status_code=303)
        return await endpoint(request)

    wrapper.__name__ = getattr(endpoint, "__name__", "page")
    wrapper.__doc__ = endpoint.__doc__
    return wrapper


def csrf_cookie_value(request: Request) -> str:
    """The browser's CSRF cookie (a fresh one is set by the middleware when missing)."""
    value = request.cookies.get(CSRF_COOKIE) or request.scope.get("state", {}).get("new_csrf")
    return str(value or "")


def csrf_token(request: Request) -> str:
    """The token to put in forms (field `csrf`) or the X-CSRF-Token header."""
    return _auth(request).csrf_for(csrf_cookie_value(request))


async def check_csrf(request: Request) -> bool:
    """True when the request carries the right token (header or form field `csrf`)."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie:
        return False
    sent = request.headers.get("x-csrf-token")
    if not sent:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            try:
                form = await request.form()
            except Exception:  # noqa: BLE001 - a broken form body is simply no token
                return False
            value = form.get("csrf")
            sent = value if isinstance(value, str) else None
    if not sent:
        return False
    return hmac.compare_digest(sent, _auth(request).csrf_for(cookie))


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(user, password) from an Authorization: Basic header, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    name, sep, password = decoded.partition(":")
    if not sep:
        return None
    return name, password


def session_secret(path: str | None) -> bytes:
    """The cookie-signing secret, kept in a 0600 file beside the store (random if none)."""
    if path is None:
        return secrets.token_bytes(32)
    file = Path(path)
    try:
        data = file.read_bytes()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    file.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret)
    return secret
