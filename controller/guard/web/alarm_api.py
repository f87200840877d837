"""The alarm routes (contract section 7): the queue, the history, one incident, the actions.

`GET /api/alarms?open=true` is the guard's queue (panic, fault, drill; oldest
first); `open=false` with `since`/`until`/`office`/`kind` is the history of
closed alarms; without `open` every alarm, newest first. A resolve without a
valid `outcome` is refused with 422 before anything reaches the office.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from controller.guard.actions import OUTCOMES
from controller.guard.alarm_store import KINDS
from controller.guard.i18n import _
from controller.guard.timeline import incident
from controller.guard.web.access import BadRequestError, UnprocessableError, api
from controller.guard.web.api import (
    MAX_LIMIT,
    alarm_id_param,
    answer,
    json_body,
    office_id,
    parse_limit,
    parse_when,
    svc,
    unknown_parameter,
)
from controller.guard.web.auth import User
from controller.guard.web.csv_export import ALARM_COLUMNS, csv_response, header_labels

FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
HISTORY_PARAMS = {"open", "since", "until", "office", "kind", "limit"}
MAX_NOTE = 2000


def _alarm_query(request: Request, *, csv: bool = False) -> tuple[bool | None, dict[str, Any]]:
    """(open flag or None, history filters), every parameter checked."""
    q = request.query_params
    unknown = set(q.keys()) - HISTORY_PARAMS - ({"header"} if csv else set())
    if unknown:
        raise BadRequestError(unknown_parameter(sorted(unknown)[0]))
    flag: bool | None = None
    if "open" in q:
        if q["open"].lower() not in FLAGS:
            raise BadRequestError("open: " + _("must be true or false"))
        flag = FLAGS[q["open"].lower()]
    filters: dict[str, Any] = {}
    for name in ("since", "until"):
        if q.get(name):
            filters[name] = parse_when(q[name], name).timestamp()
    if q.get("office"):
        filters["office"] = office_id(q["office"])
    if q.get("kind"):
        if q["kind"] not in KINDS:
            raise BadRequestError("kind: " + _("must be one of {values}").format(
                values=", ".join(KINDS)))
        filters["kind"] = q["kind"]
    if q.get("limit"):
        filters["limit"] = parse_limit(q["limit"])
    if filters and flag is not False:
        raise BadRequestError(_("since, until, office, kind and limit filter the history: "
                                "use them with open=false"))
    return flag, filters


def _select(request: Request, *, csv: bool = False) -> list[dict[str, Any]]:
    flag, filters = _alarm_query(request, csv=csv)
    store = svc(request).store
    if flag is True:
        return store.alarms(open_only=True, limit=MAX_LIMIT)
    if flag is False:
        return store.alarm_history(**filters)
    return store.alarms()


async def alarms(request: Request, _user: User) -> Response:
    """Open alarms most urgent first, the history (open=false), or all alarms."""
    return JSONResponse(_select(request))


async def alarms_csv(request: Request, _user: User) -> Response:
    """The same selection as CSV (for the shift report); formulas are neutralised.

    `header=labels` (the console's export) names the columns in the station's
    language; the default header is the field names, for scripts.
    """
    labels = header_labels(request, ALARM_COLUMNS)
    rows = []
    for alarm in _select(request, csv=True):
        loc = alarm.get("location") or {}
        row = {**alarm, **{k: loc.get(k, "") for k in ("label", "site", "building", "floor",
                                                       "room")}}
        row["responders"] = "; ".join(f"{r.get('by')} {r.get('at')}"
                                      for r in alarm.get("responders") or [])
        rows.append(row)
    return csv_response(rows, ALARM_COLUMNS, "alarms.csv", labels)


async def one_alarm(request: Request, _user: User) -> Response:
    """One incident: the alarm with its timeline."""
    alarm_id = alarm_id_param(request)
    data = incident(svc(request).store, alarm_id)
    if data is None:
        return JSONResponse({"error": _("alarm {id} is not known").format(id=alarm_id)},
                            status_code=404)
    return JSONResponse(data)


async def ack(request: Request, user: User) -> Response:
    """Acknowledge (panic/drill: signed `ack`, answered once the office confirmed)."""
    return answer(await svc(request).actions.ack(alarm_id_param(request), user.name))


async def respond(request: Request, user: User) -> Response:
    """"I am going too": add the guard to the responders."""
    return answer(await svc(request).actions.respond(alarm_id_param(request), user.name))


async def resolve(request: Request, user: User) -> Response:
    """Resolve with `{"outcome": O, "note": "..."}`; a bad outcome is 422, nothing is sent."""
    alarm_id = alarm_id_param(request)
    data = await json_body(request)
    unknown = set(data) - {"outcome", "note"}
    if unknown:
        raise UnprocessableError(sorted(unknown)[0][:40], _("unknown field"))
    outcome = data.get("outcome")
    if outcome is None:
        raise UnprocessableError("outcome", _("required, one of {values}").format(
            values=", ".join(OUTCOMES)))
    if outcome not in OUTCOMES:
        raise UnprocessableError("outcome", _("must be one of {values}").format(
            values=", ".join(OUTCOMES)))
    note = data.get("note") or ""
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise UnprocessableError("note", _("must be text of at most {n} characters").format(
            n=MAX_NOTE))
    return answer(await svc(request).actions.resolve(alarm_id, user.name, outcome,
                                                     note.strip()))


async def metrics(request: Request, _user: User) -> Response:
    """Prometheus text format (or OpenMetrics when the scraper asks for it)."""
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(svc(request).metrics.registry), media_type=content_type)


routes = [
    Route("/metrics", api(metrics), methods=["GET"]),
    Route("/api/alarms", api(alarms), methods=["GET"]),
    Route("/api/alarms.csv", api(alarms_csv), methods=["GET"]),
    Route("/api/alarms/{alarm_id}", api(one_alarm), methods=["GET"]),
    Route("/api/alarms/{alarm_id}/ack", api(ack, write=True), methods=["POST"]),
    Route("/api/alarms/{alarm_id}/respond", api(respond, write=True), methods=["POST"]),
    Route("/api/alarms/{alarm_id}/resolve", api(resolve, write=True), methods=["POST"]),
]
