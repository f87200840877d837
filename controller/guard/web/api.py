"""The JSON API (contract section 5): read the picture, act on alarms and offices, stream.

Every route needs a user (session cookie; for scripts an API token or HTTP
Basic); writes from a browser session need the CSRF token, and cross-site
writes are refused whatever the authentication (see security.py). The
`viewer` role reads only. Bad input gets a 4xx with `{"error": "..."}`;
nothing a client sends can crash the station.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, get_args

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from controller.guard.actions import Result, ResultKind
from controller.guard.i18n import _
from controller.guard.web.access import (
    BadRequestError,
    Handler,
    api,
    authenticate,
    dumps,
    error,
    safe_json,
)
from controller.guard.web.auth import (
    Auth,
    User,
    basic_credentials,
    bearer_token,
    csrf_token,
)
from controller.guard.web.csv_export import EVENT_COLUMNS, csv_response, header_labels
from controller.guard.web.openapi import OPENAPI
from controller.protocol.messages import OFFICE_ID_PATTERN, EventType, format_ts

if TYPE_CHECKING:
    from controller.guard.service import GuardService

EVENT_TYPES = frozenset(get_args(EventType))
MAX_LIMIT = 10_000
SSE_PING_S = 15


def svc(request: Request) -> GuardService:
    """The service behind the app."""
    service: GuardService = request.app.state.service
    return service



# ----------------------------------------------------------------- parsing


def alarm_id_param(request: Request) -> str:
    raw = request.path_params["alarm_id"]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise BadRequestError("alarm_id: " + _("not a UUID: {value}").format(value=repr(raw[:60]))
                              ) from None


def office_id(value: str, name: str = "office") -> str:
    import re  # noqa: PLC0415

    if not re.fullmatch(OFFICE_ID_PATTERN, value):
        raise BadRequestError(f"{name}: " + _("must be 1-32 characters of a-z, 0-9 and '-'"))
    return value


def _event_filters(request: Request, *, csv: bool = False) -> dict[str, Any]:
    q = request.query_params
    unknown = set(q.keys()) - {"office", "since", "limit", "type"} - ({"header"} if csv else set())
    if unknown:
        raise BadRequestError(unknown_parameter(sorted(unknown)[0]))
    out: dict[str, Any] = {"limit": 100}
    if q.get("office"):
        out["office"] = office_id(q["office"])
    if q.get("since"):
        out["since"] = format_ts(parse_when(q["since"], "since"))
    if q.get("type"):
        if q["type"] not in EVENT_TYPES:
            raise BadRequestError("type: " + _("unknown event type {value}").format(
                value=repr(q["type"][:40])))
        out["type_"] = q["type"]
    if q.get("limit"):
        out["limit"] = parse_limit(q["limit"])
    return out


def unknown_parameter(name: str) -> str:
    """The 400 text for a query parameter the route does not take."""
    return _("unknown query parameter: {name}").format(name=name[:40])


def parse_limit(value: str) -> int:
    """A `limit` query parameter: 1..MAX_LIMIT, or a 400 naming it."""
    try:
        limit = int(value)
    except ValueError:
        raise BadRequestError("limit: " + _("not an integer")) from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequestError("limit: " + _("must be between 1 and {max}").format(max=MAX_LIMIT))
    return limit


def parse_when(value: str, name: str) -> datetime:
    """An ISO-8601 query parameter (UTC when it has no offset)."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequestError(f"{name}: " + _("not an ISO-8601 timestamp")) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


async def json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequestError("body: " + _("not valid JSON")) from None
    if not isinstance(data, dict):
        raise BadRequestError("body: " + _("must be a JSON object"))
    return data


# ------------------------------------------------------------------ routes


async def healthz(request: Request) -> Response:
    """Up or down without login (for monitoring); the details for a logged-in caller."""
    health = svc(request).health()
    user = await authenticate(request) if (basic_credentials(request) or bearer_token(request)
                                           or request.cookies) else None
    if not isinstance(user, User):
        return JSONResponse({"status": health["status"]})
    health["security"] = svc(request).ingest.security.summary()["counts"]
    health["logins_verified"] = request.app.state.auth.verified
    return safe_json(health)


async def security(request: Request, _user: User) -> Response:
    """Security events: alarm updates for another office's alarm, floods, unknown ids."""
    return safe_json(svc(request).ingest.security.summary())


async def me(request: Request, user: User) -> Response:
    """Who is logged in, and the CSRF token for scripts running in the page."""
    return JSONResponse({"name": user.name, "role": user.role, "csrf": csrf_token(request)})


async def offices(request: Request, _user: User) -> Response:
    """Every known or expected office."""
    return safe_json(svc(request).offices())


async def events(request: Request, _user: User) -> Response:
    """Stored events, newest first."""
    return JSONResponse(svc(request).store.events(**_event_filters(request)))


async def events_csv(request: Request, _user: User) -> Response:
    """The same events as CSV; `header=labels` (the console's link) names the columns for people."""
    labels = header_labels(request, EVENT_COLUMNS)
    rows = svc(request).store.events(**_event_filters(request, csv=True))
    return csv_response(rows, EVENT_COLUMNS, "events.csv", labels)


HTTP_STATUS: dict[ResultKind, int] = {"done": 200, "unknown": 404, "refused": 409,
                                      "rejected": 409, "timeout": 504, "not_sent": 503,
                                      "partial": 504}


def answer(result: Result) -> Response:
    """An action's outcome as HTTP: the one place that maps kinds to status codes."""
    return JSONResponse(result.body, status_code=HTTP_STATUS[result.kind])


def _office_action(cmd: Any) -> Handler:
    async def handler(request: Request, user: User) -> Response:
        office = office_id(request.path_params["office_id"], "office_id")
        return answer(await svc(request).actions.office_command(office, cmd, user.name))

    handler.__name__ = f"office_{cmd}"
    handler.__doc__ = f"Signed `{cmd}` to one office, answered once it confirmed."
    return handler


async def site_lockdown(request: Request, user: User) -> Response:
    """Lock down (or lift) a whole site: body `{"site": "...", "on": true}`."""
    data = await json_body(request)
    site, on = data.get("site"), data.get("on")
    if not isinstance(site, str) or not site or len(site) > 200:
        raise BadRequestError("site: " + _("required, a non-empty string"))
    if not isinstance(on, bool):
        raise BadRequestError("on: " + _("required, true or false"))
    return answer(await svc(request).actions.site_lockdown(site, on, user.name))


async def selftest_report(request: Request, _user: User) -> Response:
    """The last scheduled drill round: which offices did not answer."""
    return JSONResponse(svc(request).selftest.report())


async def selftest_run(request: Request, user: User) -> Response:
    """Run a drill round now (admin)."""
    service = svc(request)
    service.store.audit(user.name, "selftest", "all", "started")
    return JSONResponse(await service.selftest.run())


async def audit(request: Request, _user: User) -> Response:
    """The audit trail, newest first (admin)."""
    return JSONResponse(svc(request).store.audit_log())


async def stream(request: Request, user: User) -> Response:
    """Server-sent events: a snapshot first, then every change, live.

    At most `[security] sse_per_session` streams per session (or per script
    user); an open stream keeps its session alive, and ends when the session does.
    """
    service = svc(request)
    auth: Auth = request.app.state.auth
    streams: dict[str, int] = request.app.state.sse_streams
    key = user.session or f"{user.via}:{user.name}"
    if streams.get(key, 0) >= service.cfg.security.sse_per_session:
        return error(429, _("too many open streams for this session; close another tab first"))
    hub = service.hub
    sub = hub.subscribe()
    snapshot = {"id": str(hub.last_id),
                "data": dumps({"kind": "snapshot",
                               "data": {"offices": service.offices(),
                                        "alarms": service.store.alarms(open_only=True)}})}
    streams[key] = streams.get(key, 0) + 1

    async def keep_session() -> None:
        every = max(1.0, min(60.0, service.cfg.security.session_idle_s / 3))
        while user.session is not None:
            await asyncio.sleep(every)
            if not auth.sessions.touch(user.session, auth.fingerprints):
                # logged out elsewhere, or the password changed: the stream ends
                hub.unsubscribe(sub)
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.put_nowait(None)
                return

    async def events() -> AsyncIterator[dict[str, str]]:
        keeper = asyncio.create_task(keep_session())
        try:
            async for msg in hub.stream(sub, [snapshot]):
                yield msg
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            streams[key] -= 1
            if streams[key] <= 0:
                streams.pop(key, None)

    return EventSourceResponse(events(), ping=SSE_PING_S, send_timeout=10,
                               headers={"Cache-Control": "no-store"})


async def openapi(_request: Request, _user: User) -> Response:
    """The OpenAPI description of this API."""
    return JSONResponse(OPENAPI)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/api/openapi.json", api(openapi), methods=["GET"]),
    Route("/api/me", api(me), methods=["GET"]),
    Route("/api/offices", api(offices), methods=["GET"]),
    Route("/api/security", api(security), methods=["GET"]),
    Route("/api/events", api(events), methods=["GET"]),
    Route("/api/events.csv", api(events_csv), methods=["GET"]),
    Route("/api/stream", api(stream), methods=["GET"]),
    Route("/api/offices/{office_id}/test", api(_office_action("test"), write=True),
          methods=["POST"]),
    *[Route(f"/api/offices/{{office_id}}/{cmd}", api(_office_action(cmd), write=True,
                                                     admin=True), methods=["POST"])
      for cmd in ("lockdown", "lift_lockdown", "release")],
    Route("/api/lockdown", api(site_lockdown, write=True, admin=True), methods=["POST"]),
    Route("/api/selftest", api(selftest_report), methods=["GET"]),
    Route("/api/selftest", api(selftest_run, write=True, admin=True), methods=["POST"]),
    Route("/api/audit", api(audit, admin=True), methods=["GET"]),
]
