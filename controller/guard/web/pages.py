"""The dashboard's pages (alarm view + office grid, event log).

Pages are rendered on the server; the static scripts then keep them live from
`/api/stream`. The demo's simulator routes live in `controller.demo.web` and are
mounted by the command line only with `[guard] demo = true`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from controller.guard.i18n import N_, gettext
from controller.guard.web.auth import current_user
from controller.guard.web.event_words import event_words
from controller.guard.web.installer import routes as installer_routes
from controller.guard.web.page_context import page_context as _page_context
from controller.guard.web.templating import templates
from controller.protocol.messages import ALARM_EVENT_TYPES, EventType, format_ts

if TYPE_CHECKING:
    from controller.guard.service import GuardService

EVENT_TYPES: tuple[str, ...] = get_args(EventType)
LIMITS = (100, 500, 2000)


def _service(request: Request) -> GuardService:
    service: GuardService = request.app.state.service
    return service


def _login_redirect(request: Request) -> Response:
    target = request.url.path
    return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)


async def plan_file(request: Request) -> Response:
    """One configured floor plan (SVG or PNG), for signed-in users only."""
    if current_user(request) is None:
        return Response(status_code=401)
    floors = _service(request).cfg.floors
    index = int(request.path_params["index"])
    if not 0 <= index < len(floors):
        return Response(gettext("no such plan"), status_code=404)
    path = Path(floors[index].plan)
    media = "image/svg+xml" if path.suffix.lower() == ".svg" else "image/png"
    # an SVG plan is shown as an image (no scripts run in an <img>); never as a document
    headers = {"Cache-Control": "private, max-age=300",
               "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
    return FileResponse(path, media_type=media, headers=headers)


def _page(name: str, active: str) -> Any:
    """A signed-in page whose content the static scripts fill from the API."""

    async def handler(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return _login_redirect(request)
        context = _page_context(request, user) | {"active": active,
                                                  **dict(request.path_params)}
        return templates.TemplateResponse(request, name, context)

    handler.__name__ = f"{active}_page"
    handler.__doc__ = f"The {active} page (rendered shell, filled live from the API)."
    return handler


async def dashboard(request: Request) -> Response:
    """Alarm view and office grid (filled and kept live by the static scripts)."""
    user = current_user(request)
    if user is None:
        return _login_redirect(request)
    return templates.TemplateResponse(request, "dashboard.html", _page_context(request, user))


_DETAIL_FIELDS = (("presses", N_("{n} presses"), "n"), ("by", N_("by {by}"), "by"),
                  ("source", N_("source {source}"), "source"),
                  ("seconds", "{seconds} s", "seconds"),
                  ("cmd", N_("cmd {cmd}"), "cmd"), ("reason", N_("reason {reason}"), "reason"),
                  ("dropped", N_("{n} dropped"), "n"))


def event_details(event: dict[str, Any]) -> str:
    """One short line of the type-specific fields (events.js renders live rows the same way)."""
    parts = []
    if event.get("alarm_id"):
        parts.append(gettext("alarm {id}").format(id=str(event["alarm_id"])[:8]))
    for key, label, name in _DETAIL_FIELDS:
        value = event.get(key)
        if value or (key == "seconds" and value is not None):
            parts.append(gettext(label).format(**{name: value}))
    return ", ".join(parts)


def parse_since(value: str) -> str:
    """A user's date/time (ISO-8601, `Z` or offset, or naive = UTC) as a stored-`ts` bound."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("since: " + gettext("{value} is not a date and time (YYYY-MM-DDTHH:MM)")
                         .format(value=repr(value))) from None
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
        "event_types": EVENT_TYPES, "alarm_types": ALARM_EVENT_TYPES,
        "event_words": event_words()}
    return templates.TemplateResponse(request, "events.html", context)


routes = [
    Route("/", dashboard, methods=["GET"]),
    Route("/events", events_page, methods=["GET"]),
    Route("/history", _page("history.html", "history"), methods=["GET"]),
    Route("/alarms/{alarm_id:str}", _page("incident.html", "incident"), methods=["GET"]),
    Route("/plans/{index:int}", plan_file, methods=["GET"]),
    *installer_routes,
]
