"""The dashboard pages' pure helpers: filter parsing and the event detail line."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from controller.guard.web.pages import _filters, event_details, parse_since


def request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/events", "headers": [],
                    "query_string": query.encode()})


@pytest.mark.parametrize(("given", "stored"), [
    ("2026-11-25T10:00", "2026-11-25T10:00:00.000Z"),  # naive means UTC
    ("2026-11-25T10:00:00.250Z", "2026-11-25T10:00:00.250Z"),
    ("2026-11-25T11:00:00+01:00", "2026-11-25T10:00:00.000Z"),
])
def test_since_is_normalised_to_the_stored_timestamp_format(given: str, stored: str):
    assert parse_since(given) == stored


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "", "10:00'; DROP TABLE events"])
def test_a_bad_since_names_the_field(bad: str):
    with pytest.raises(ValueError, match=r"^since: "):
        parse_since(bad)


def test_filters_keep_good_values_and_report_bad_ones():
    filters, error = _filters(request("office=eg-101&type=panic&since=2026-11-25T10:00Z&limit=500"))
    assert error is None
    assert filters["office"] == "eg-101" and filters["type"] == "panic"
    assert filters["since"] == "2026-11-25T10:00:00.000Z" and filters["limit"] == 500
    assert filters["query"] == ("office=eg-101&type=panic&since=2026-11-25T10%3A00%3A00.000Z"
                                "&limit=500")
    filters, error = _filters(request("type=explosion&limit=999999"))
    assert error == "type: unknown event type 'explosion'"
    assert filters["type"] == "" and filters["limit"] == 2000
    filters, error = _filters(request("since=soon&limit=abc"))
    assert error is not None and error.startswith("since: ")
    assert filters["since"] == "" and filters["limit"] == 100


def test_event_details_show_the_type_specific_fields():
    assert event_details({"type": "panic_repeat", "alarm_id": "46a4026f-b988-4949", "presses": 3}
                         ) == "alarm 46a4026f, 3 presses"
    assert event_details({"type": "door_released", "source": "button", "seconds": 5.0}
                         ) == "source button, 5.0 s"
    assert event_details({"type": "command_rejected", "cmd": "ack", "reason": "replayed"}
                         ) == "cmd ack, reason replayed"
    assert event_details({"type": "door_closed"}) == ""
