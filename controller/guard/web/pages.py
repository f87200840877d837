"""The dashboard's pages (alarm view + office grid, event log) and the demo simulator link.

Pages are rendered on the server; the static scripts then keep them live from
`/api/stream`. The simulator routes exist only with `[guard] demo = true` and
publish on the contract's sim topics, so a press in the browser takes the
real path: sim topic, the office daemon's mock pins, its state machine, MQTT,
this station.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, get_args
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from controller.demo.sim import SimBridge, SimInputError
from controller.guard.web.auth import User, check_csrf, csrf_token, current_user
from controller.guard.web.templating import templates
from controller.protocol.messages import ALARM_EVENT_TYPES, EventType, format_ts

if TYPE_CHECKING:
    from controller.guard.service import GuardService

EVENT_TYPES: tuple[str, ...] = get_args(EventType)
LIMITS = (100, 500, 2000)
MAX_JSON_BODY = 1024  # a sim press is a few bytes; anything bigger is not from our page


def _service(request: Request) -> GuardService:
    service: GuardService = request.app.state.service
    return service


def _login_redirect(request: Request) -> Response:
    target = request.url.path
    return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)


def _page_context(request: Request, user: User) -> dict[str, Any]:
    cfg = _service(request).cfg
    return {"user": user, "csrf": csrf_token(request), "demo": bool(cfg.guard.demo)}


async def dashboard(request: Request) -> Response:
    """Alarm view and office grid (filled and kept live by the static scripts)."""
    user = current_user(request)
    if user is None:
        return _login_redirect(request)
    if _service(request).cfg.guard.demo:
        _sim(request)  # connect early so the lamps are known when the page's first poll comes
    return templates.TemplateResponse(request, "dashboard.html", _page_context(request, user))


_DETAIL_FIELDS = (("presses", "{} presses"), ("by", "by {}"), ("source", "source {}"),
                  ("seconds", "{} s"), ("cmd", "cmd {}"), ("reason", "reason {}"),
                  ("dropped", "{} dropped"))


def event_details(event: dict[str, Any]) -> str:
    """One short line of the type-specific fields (events.js renders live rows the same way)."""
    parts = []
    if event.get("alarm_id"):
        parts.append(f"alarm {str(event['alarm_id'])[:8]}")
    for key, label in _DETAIL_FIELDS:
        value = event.get(key)
        if value or (key == "seconds" and value is not None):
            parts.append(label.format(value))
    return ", ".join(parts)


def parse_since(value: str) -> str:
    """A user's date/time (ISO-8601, `Z` or offset, or naive = UTC) as a stored-`ts` bound."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"since: {value!r} is not a date and time (YYYY-MM-DDTHH:MM)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_ts(moment)


def _filters(request: Request) -> tuple[dict[str, Any], str | None]:
    params = request.query_params
    office = params.get("office", "").strip()[:32]
    type_ = params.get("type", "").strip()
    error = None
    if type_ and type_ not in EVENT_TYPES:
        error, type_ = f"type: unknown event type {type_[:40]!r}", ""
    since = ""
    raw_since = params.get("since", "").strip()
    if raw_since:
        try:
            since = parse_since(raw_since)
        except ValueError as exc:
            error = str(exc)
    try:
        limit = int(params.get("limit", LIMITS[0]))
    except ValueError:
        limit = LIMITS[0]
    limit = min(max(limit, 1), LIMITS[-1])
    query = urlencode({k: v for k, v in
                       (("office", office), ("type", type_), ("since", since),
                        ("limit", str(limit))) if v})
    return ({"office": office, "type": type_, "since": since, "limit": limit,
             "query": query}, error)


async def events_page(request: Request) -> Response:
    """The event log with filters (office, type, since) and the CSV export link."""
    user = current_user(request)
    if user is None:
        return _login_redirect(request)
    service = _service(request)
    filters, error = _filters(request)
    events = service.store.events(office=filters["office"] or None,
                                  since=filters["since"] or None,
                                  type_=filters["type"] or None, limit=filters["limit"])
    for event in events:
        event["details"] = event_details(event)
    offices = sorted(service.model.offices)
    context = _page_context(request, user) | {
        "events": events, "filters": filters, "error": error, "offices": offices,
        "event_types": EVENT_TYPES, "alarm_types": ALARM_EVENT_TYPES}
    return templates.TemplateResponse(request, "events.html", context)


# ------------------------------------------------------------------ demo only


def _sim(request: Request) -> SimBridge:
    bridge: SimBridge | None = getattr(request.app.state, "sim_bridge", None)
    if bridge is None:
        cfg = _service(request).cfg
        bridge = SimBridge(cfg.mqtt, cfg.guard.id)
        request.app.state.sim_bridge = bridge
        bridge.start()
    return bridge


def _demo_guard(request: Request) -> Response | None:
    if not _service(request).cfg.guard.demo:
        return JSONResponse({"error": "not found"}, status_code=404)
    if current_user(request) is None:
        return JSONResponse({"error": "not logged in"}, status_code=401)
    return None


async def sim_outputs(request: Request) -> Response:
    """The simulated lamps of every office: `{office: {relay, ack_led, neighbor_led}}`."""
    refused = _demo_guard(request)
    if refused is not None:
        return refused
    return JSONResponse(_sim(request).outputs())


async def sim_input(request: Request) -> Response:
    """Publish one simulated input: body `{"value": "press"}` (or form field `value`)."""
    refused = _demo_guard(request)
    if refused is not None:
        return refused
    if not await check_csrf(request):
        return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
    value = await _value(request)
    office, name = request.path_params["office"], request.path_params["name"]
    if value is None:
        return JSONResponse({"error": "value: required (press/release or open/close)"},
                            status_code=400)
    try:
        _sim(request).press(office, name, value)
    except SimInputError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"office": office, "input": name, "value": value, "published": True})


async def _value(request: Request) -> str | None:
    if request.headers.get("content-type", "").startswith("application/json"):
        raw = await request.body()
        if len(raw) > MAX_JSON_BODY:
            return None
        try:
            data = json.loads(raw or b"{}")
        except (ValueError, RecursionError):
            return None
        value = data.get("value") if isinstance(data, dict) else None
    else:
        form = await request.form()
        value = form.get("value")
    return value if isinstance(value, str) else None


routes = [
    Route("/", dashboard, methods=["GET"]),
    Route("/events", events_page, methods=["GET"]),
    Route("/demo/sim/outputs", sim_outputs, methods=["GET"]),
    Route("/demo/sim/{office}/{name}", sim_input, methods=["POST"]),
]
