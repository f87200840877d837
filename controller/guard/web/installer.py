"""The installer's pages (role admin): controllers' technical state, the audit log, one office.

The figures an installer needs without reading JSON: version, uptime, last heard,
outbox pending/dropped, faults, clock offset (office clock minus station clock at
receipt; what an office's commands are checked against), the open fault alarms, and
the office's IP, broker and connected-since as it reports them in its state.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from controller.guard.i18n import _
from controller.guard.web.auth import current_user
from controller.guard.web.event_words import event_words
from controller.guard.web.page_context import page_context as _page_context
from controller.guard.web.templating import templates

if TYPE_CHECKING:
    from controller.guard.service import GuardService


def _service(request: Request) -> GuardService:
    service: GuardService = request.app.state.service
    return service


def _offset_s(office: dict[str, Any], now: float) -> float | None:
    """Office clock minus station clock when its last state arrived (seconds)."""
    state = office.get("state") or {}
    age, ts = office.get("state_age_s"), state.get("ts")
    if age is None or not ts:
        return None
    try:
        sent = datetime.fromisoformat(str(ts)).timestamp()
    except ValueError:
        return None
    return round(sent - (now - float(age)), 2)


def controllers(service: GuardService) -> list[dict[str, Any]]:
    """One row per office with what an installer checks first."""
    now = time.time()
    rows = []
    for o in service.offices():
        state = o.get("state") or {}
        rows.append({
            "id": o["id"], "location": o.get("location") or {}, "version": o.get("version"),
            "uptime_s": state.get("uptime_s"), "last_heard_s": o.get("state_age_s"),
            "availability": o.get("availability"), "online": o.get("online"),
            "stale": o.get("stale"), "missing": o.get("missing"),
            "outbox_pending": o.get("outbox_pending"), "outbox_dropped": o.get("outbox_dropped"),
            "faults": o.get("faults") or [], "clock_offset_s": _offset_s(o, now),
            "gaps": o.get("gaps"), "duplicates": o.get("duplicates"),
            "fault_alarms": [a.get("fault") for a in o.get("fault_alarms") or []],
            # the office's own network facts, as of its last state (older offices: none)
            "address": state.get("address"), "broker": state.get("broker"),
            "connected_since": state.get("connected_since"),
        })
    return rows


def _admin(request: Request) -> Response | None:
    user = current_user(request)
    if user is None:
        return RedirectResponse("/login?next=" + request.url.path, status_code=303)
    if user.role != "admin":
        return Response(_("this page needs the admin role"), status_code=403)
    return None


async def installer_page(request: Request) -> Response:
    """Controllers and the audit log (filled by installer.js)."""
    refused = _admin(request)
    if refused:
        return refused
    user = current_user(request)
    assert user is not None  # noqa: S101 - checked above
    return templates.TemplateResponse(request, "installer.html",
                                      _page_context(request, user) | {"active": "installer"})


async def installer_data(request: Request) -> Response:
    """The controllers' rows as JSON (the page refreshes them)."""
    refused = _admin(request)
    if refused:
        return JSONResponse({"error": _("this page needs the admin role")}, status_code=403)
    return JSONResponse(controllers(_service(request)))


async def office_page(request: Request) -> Response:
    """One office: its technical state and its recent events."""
    refused = _admin(request)
    if refused:
        return refused
    user = current_user(request)
    assert user is not None  # noqa: S101 - checked above
    office = request.path_params["office_id"]
    known = {o["id"] for o in _service(request).offices()}
    if office not in known:
        return Response(_("no such office"), status_code=404)
    return templates.TemplateResponse(request, "office.html", _page_context(request, user) | {
        "active": "installer", "office_id": office, "event_words": event_words()})


routes = [
    Route("/installer", installer_page, methods=["GET"]),
    Route("/installer/controllers", installer_data, methods=["GET"]),
    Route("/offices/{office_id:str}", office_page, methods=["GET"]),
]
