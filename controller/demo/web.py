"""The demo's simulator routes, mounted into the guard's web app only with `demo = true`.

They publish on the contract's sim topics, so a press in the browser takes the
real path: sim topic, the office daemon's mock pins, its state machine, MQTT,
the guard station. The guard never imports this module; the command line adds
these routes when it starts a demo guard station.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from controller.demo.sim import SimBridge, SimInputError
from controller.guard.i18n import _
from controller.guard.web.auth import check_csrf, current_user

if TYPE_CHECKING:
    from controller.guard.service import GuardService

STATIC_DIR = Path(__file__).parent / "static"
MAX_JSON_BODY = 1024  # a sim press is a few bytes; anything bigger is not from our page


def _service(request: Request) -> GuardService:
    service: GuardService = request.app.state.service
    return service


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
        return JSONResponse({"error": _("Not Found")}, status_code=404)
    if current_user(request) is None:
        return JSONResponse({"error": _("not logged in")}, status_code=401)
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
        return JSONResponse({"error": _("CSRF token missing or invalid (send X-CSRF-Token)")},
                            status_code=403)
    value = await _value(request)
    office, name = request.path_params["office"], request.path_params["name"]
    if value is None:
        return JSONResponse({"error": "value: " + _("required (press/release or open/close)")},
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




async def sim_script(request: Request) -> Response:
    """The simulator panel's script; loading it (with the dashboard) connects the bridge early."""
    refused = _demo_guard(request)
    if refused is not None:
        return refused
    _sim(request)  # so the lamps are known when the page's first poll comes
    return FileResponse(STATIC_DIR / "sim.js", media_type="text/javascript")


def routes() -> list[BaseRoute]:
    """The demo-only routes, for `create_app(service, extra_routes=...)`."""
    return [
        Route("/demo/sim/outputs", sim_outputs, methods=["GET"]),
        Route("/demo/sim/{office}/{name}", sim_input, methods=["POST"]),
        Route("/demo/static/sim.js", sim_script, methods=["GET"]),
    ]
