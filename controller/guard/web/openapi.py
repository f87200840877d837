"""A hand-written OpenAPI 3.1 description of the guard station's API (for clients and fuzzers)."""

from __future__ import annotations

from typing import Any

_ERR = {"description": "error", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}
_JSON = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
_LIST = {"description": "OK", "content": {"application/json": {"schema": {"type": "array",
                                                                          "items": {}}}}}
_UUID = {"name": "alarm_id", "in": "path", "required": True,
         "schema": {"type": "string", "format": "uuid"}}
_OFFICE = {"name": "office_id", "in": "path", "required": True,
           "schema": {"type": "string", "pattern": "^[a-z0-9-]{1,32}$"}}
_COMMAND_ANSWERS = {"200": _JSON, "400": _ERR, "401": _ERR, "403": _ERR, "404": _ERR,
                    "409": _ERR, "503": _ERR, "504": _ERR}
_EVENT_FILTERS = [
    {"name": "office", "in": "query", "schema": {"type": "string",
                                                 "pattern": "^[a-z0-9-]{1,32}$"}},
    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                "maximum": 10000}},
    {"name": "type", "in": "query", "schema": {"type": "string"}},
]


# the CSV header: field names (scripts) or column names in the station's language (people)
_HEADER = {"name": "header", "in": "query", "schema": {"enum": ["fields", "labels"]}}
_LOCKDOWN = {"type": "object", "required": ["site", "on"], "additionalProperties": False,
             "properties": {"site": {"type": "string", "minLength": 1},
                            "on": {"type": "boolean"}}}
_RESOLVE = {"type": "object", "required": ["outcome"], "additionalProperties": False,
            "properties": {"outcome": {"enum": ["handled", "police", "medical", "false_alarm",
                                                "drill", "technical"]},
                           "note": {"type": "string", "maxLength": 2000}}}
_ALARM_FILTERS = [
    {"name": "open", "in": "query", "schema": {"type": "boolean"}},
    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    {"name": "office", "in": "query", "schema": {"type": "string",
                                                 "pattern": "^[a-z0-9-]{1,32}$"}},
    {"name": "kind", "in": "query", "schema": {"enum": ["panic", "drill", "fault"]}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                "maximum": 10000}},
]


def _post(summary: str, params: list[dict[str, Any]],
          body: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": params,
                          "responses": {**_COMMAND_ANSWERS, "422": _ERR},
                          "security": [{"token": []}, {"basic": []}, {"session": []}]}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": body}}}
    return {"post": op}


def _get(summary: str, params: list[dict[str, Any]] | None = None,
         answer: dict[str, Any] = _JSON) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": params or [],
                    "responses": {"200": answer, "400": _ERR, "401": _ERR},
                    "security": [{"token": []}, {"basic": []}, {"session": []}]}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "officesec guard station", "version": "1"},
    "components": {
        "securitySchemes": {"token": {"type": "http", "scheme": "bearer",
                                      "description": "`officesec api-token`"},
                            "basic": {"type": "http", "scheme": "basic"},
                            "session": {"type": "apiKey", "in": "cookie",
                                        "name": "officesec_session"}},
        "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string", "description": "for people, in the station's "
                      "[guard] language; programs use the status and `field`"},
            "field": {"type": "string", "description": "422: the field to fix"}}}},
    },
    "paths": {
        "/healthz": {"get": {"summary": "up or down (no login); details with a login",
                             "responses": {"200": _JSON}}},
        "/api/me": _get("the logged-in user and a CSRF token"),
        "/api/offices": _get("every known or expected office", answer=_LIST),
        "/api/alarms": _get("open=true: the queue (panic, fault, drill; oldest first); "
                            "open=false: history of closed alarms; neither: all, newest first",
                            _ALARM_FILTERS, _LIST),
        "/api/alarms.csv": _get("the same selection as CSV", [*_ALARM_FILTERS, _HEADER],
                                {"description": "CSV", "content": {"text/csv": {}}}),
        "/api/alarms/{alarm_id}": _get("one incident with its timeline", [_UUID]),
        "/api/alarms/{alarm_id}/respond": _post("add the guard to the responders", [_UUID]),
        "/api/events": _get("stored events, newest first", _EVENT_FILTERS, _LIST),
        "/api/events.csv": _get("stored events as CSV", [*_EVENT_FILTERS, _HEADER],
                                {"description": "CSV", "content": {"text/csv": {}}}),
        "/metrics": _get("Prometheus metrics (text format; OpenMetrics on request)",
                         answer={"description": "metrics", "content": {"text/plain": {}}}),
        "/api/stream": _get("server-sent events: {kind, data} per message",
                            answer={"description": "event stream",
                                    "content": {"text/event-stream": {}}}),
        "/api/security": _get("security events: counts, per office, the newest"),
        "/api/selftest": {**_get("last drill round"), **_post("run a drill round now", [])},
        "/api/audit": _get("audit trail (admin)", answer=_LIST),
        "/api/alarms/{alarm_id}/ack": _post("acknowledge (waits for the office)", [_UUID]),
        "/api/alarms/{alarm_id}/resolve": _post("resolve with an outcome (waits for the office)",
                                                [_UUID], body=_RESOLVE),
        "/api/offices/{office_id}/test": _post("drill one office", [_OFFICE]),
        "/api/offices/{office_id}/lockdown": _post("lock down one office (admin)", [_OFFICE]),
        "/api/offices/{office_id}/lift_lockdown": _post("lift lockdown (admin)", [_OFFICE]),
        "/api/offices/{office_id}/release": _post("remote door release (admin)", [_OFFICE]),
        "/api/lockdown": _post("site-wide lockdown (admin)", [], body=_LOCKDOWN),
    },
}
