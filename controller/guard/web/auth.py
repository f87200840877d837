"""Who is asking: console sessions, HTTP Basic and API tokens for scripts, throttled logins.

Sessions live on the server (`sessions.py`): the cookie (HttpOnly,
SameSite=Strict, Secure under HTTPS) is a random token, so logout, a password
or role change and the idle/absolute limits end a session for good. Scripts
use HTTP Basic (contract section 5) or, better, a per-user API token
(`Authorization: Bearer ...`, only its SHA-256 in the config). CSRF tokens are
an HMAC of a random per-browser cookie (double submit, bound to the server
secret). Passwords are argon2id hashes; every attempt is counted before it is
verified, serialised per user name, and throttled per name and address
(`throttle.py`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
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

from controller.guard.guard_config import ApiTokenCfg, UserCfg
from controller.guard.web.sessions import Sessions, fingerprint
from controller.guard.web.throttle import LoginThrottle

SESSION_COOKIE = "officesec_session"
CSRF_COOKIE = "officesec_csrf"
BASIC_CACHE_S = 60.0
TOKEN_PREFIX = "osk_"  # noqa: S105 - a marker, not a secret
_HASHER = PasswordHasher()
# verified against for unknown users, so that a wrong name costs as much as a wrong password
_DUMMY_HASH = ("$argon2id$v=19$m=65536,t=3,p=4$yWRPYHOz2jR3ygmH3srn8g$PrEdLv"
               "jcJdoyaiKgJSCQJ6zG/T+ErINNX4lSCUesxr4")
ROLES_THAT_WRITE = frozenset({"guard", "admin"})


@dataclass(frozen=True)
class User:
    """An authenticated caller; `session` is the server-side session key (console only)."""

    name: str
    role: str
    via: str = "session"
    session: str | None = None

    @property
    def can_write(self) -> bool:
        """Viewers read everything and change nothing."""
        return self.role in ROLES_THAT_WRITE


class LockedOut(Exception):  # noqa: N818 - reads better at the call site
    """Too many failures for this user name from here (or from everywhere)."""

    def __init__(self, retry_after: float) -> None:
        """Seconds until the lock ends."""
        super().__init__(f"locked for {retry_after:.0f} s")
        self.retry_after = retry_after


class Auth:
    """Users, tokens, sessions, the CSRF secret and the login throttle (one per app)."""

    def __init__(self, users: list[UserCfg], secret: bytes, *, sessions: Sessions, secure: bool,
                 lockout_attempts: int, lockout_s: float,
                 audit: Callable[[str, str, str, str], None],
                 tokens: list[ApiTokenCfg] | None = None) -> None:
        """`audit(user, action, outcome, detail)` records logins in the trail."""
        self.users = {u.name: u for u in users}
        self.fingerprints = {u.name: fingerprint(u.password_hash, u.role) for u in users}
        self.tokens = {t.sha256: t for t in tokens or []}
        self.secret = secret
        self.sessions = sessions
        self.max_age_s = int(sessions.max_age_s)
        self.secure = secure
        self.throttle = LoginThrottle(lockout_attempts, lockout_s)
        self.audit = audit
        self.verified = 0  # argon2 verifications run (a test reads it via /healthz detail)
        self._locks: dict[str, asyncio.Lock] = {}
        self._basic_ok: dict[tuple[str, str], float] = {}
        sessions.purge(self.fingerprints)

    # -------------------------------------------------------------- passwords

    async def verify(self, name: str, password: str, via: str, address: str = "") -> User | None:
        """Check a password (argon2, in a thread); throttled, raises LockedOut."""
        user = self.users.get(name)
        digest = hashlib.sha256(f"{name}\0{password}".encode()).hexdigest()
        if via == "basic" and user and self._basic_ok.get((name, digest), 0.0) > time.monotonic():
            return User(user.name, user.role, via="basic")
        lock = self._locks.get(name)
        if lock is None:
            if len(self._locks) > 1000:  # drop idle locks: bounded against invented names
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[name] = asyncio.Lock()
        async with lock:
            now = time.monotonic()
            trusted = user is not None and self.sessions.trusted(name, address)
            wait = self.throttle.blocked(name, address, now, trusted=trusted)
            if wait is not None:
                self.audit(name, f"login_{via}", "locked", address)
                raise LockedOut(wait)
            self.throttle.attempt(name, address, now)  # counted before the slow check
            self.verified += 1
            ok = await asyncio.to_thread(_check, user.password_hash if user else _DUMMY_HASH,
                                         password)
            now = time.monotonic()
            if ok and user is not None:
                self.throttle.succeeded(name, address, now)
                self.sessions.trust(name, address)
                if via == "basic":
                    self._basic_ok[(name, digest)] = now + BASIC_CACHE_S
                    if len(self._basic_ok) > 1000:
                        self._basic_ok = {k: v for k, v in self._basic_ok.items() if v > now}
                else:
                    self.audit(name, "login", "ok", address)
                return User(user.name, user.role, via=via)
            locked = self.throttle.locked_now(name, address, now)
            self.audit(name, f"login_{via}", "locked_out" if locked else "failed", address)
            return None

    def token_user(self, token: str) -> User | None:
        """The user behind an API token (constant-time over the stored hashes' lookup key)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        entry = self.tokens.get(hashlib.sha256(token.encode()).hexdigest())
        cfg = self.users.get(entry.user) if entry else None
        if cfg is None or entry is None:
            return None
        return User(cfg.name, cfg.role, via=f"token:{entry.name}")

    # --------------------------------------------------------------- sessions

    def session_user(self, value: str | None, *, touch: bool = True) -> User | None:
        """The user of a valid session cookie (its use slides the idle limit)."""
        session = self.sessions.lookup(value, self.fingerprints, touch=touch)
        if session is None:
            return None
        cfg = self.users[session.user]
        return User(cfg.name, cfg.role, via="session", session=session.key)

    def set_session(self, response: Response, user: User, address: str = "") -> None:
        """Start a server-side session and put its cookie on a response."""
        token = self.sessions.create(user.name, self.fingerprints[user.name], address)
        response.set_cookie(SESSION_COOKIE, token, max_age=self.max_age_s,
                            httponly=True, samesite="strict", secure=self.secure, path="/")

    def clear_session(self, response: Response, token: str | None = None) -> None:
        """Log out: the server forgets the session, the browser the cookie."""
        self.sessions.end_token(token)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                               secure=self.secure)

    def csrf_for(self, cookie_value: str) -> str:
        """The CSRF token that belongs to a browser's CSRF cookie."""
        return hmac.new(self.secret, b"csrf:" + cookie_value.encode(),
                        hashlib.sha256).hexdigest()[:40]


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
    """The logged-in user (session cookie, or Basic/token already checked on /api/*)."""
    user = getattr(request.state, "user", None)
    if isinstance(user, User):
        return user
    user = _auth(request).session_user(request.cookies.get(SESSION_COOKIE))
    if user is not None:
        request.state.user = user
    return user


def client_address(request: Request) -> str:
    """The caller's address (the key of the login throttle).

    The peer; or, with `[security] trust_forwarded_for` behind a reverse proxy
    on loopback, the address the proxy saw (the last X-Forwarded-For entry).
    """
    peer = request.client.host if request.client else ""
    if peer in ("127.0.0.1", "::1") and getattr(request.app.state, "trust_forwarded_for", False):
        forwarded = request.headers.get("x-forwarded-for", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return peer


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


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
