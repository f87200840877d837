"""The dashboard pages' pure helpers: filter parsing and the event detail line."""

from __future__ import annotations

import re

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
    from controller.guard import i18n

    i18n.use("de")  # the default language
    assert event_details({"type": "panic_repeat", "alarm_id": "46a4026f-b988-4949", "presses": 3}
                         ) == "Alarm 46a4026f, 3\u00d7 gedr\u00fcckt"
    i18n.use("en")
    assert event_details({"type": "panic_repeat", "alarm_id": "46a4026f-b988-4949", "presses": 3}
                         ) == "alarm 46a4026f, 3 presses"
    assert event_details({"type": "door_released", "source": "button", "seconds": 5.0}
                         ) == "source button, 5.0 s"
    assert event_details({"type": "command_rejected", "cmd": "ack", "reason": "replayed"}
                         ) == "cmd ack, reason replayed"
    assert event_details({"type": "door_closed"}) == ""
    i18n.use("de")


# ------------------------------------------- the pages inside the real app, in-process


def _client(tmp_path, monkeypatch, *, demo: bool):
    from starlette.testclient import TestClient

    from controller.demo import web as demo_web
    from controller.demo.layout import write_demo_configs
    from controller.guard.guard_config import load_guard_config
    from controller.guard.service import GuardService
    from controller.guard.web.app import create_app

    layout = write_demo_configs(tmp_path, offices=1, guard_port=1, mqtt_host="127.0.0.1",
                                mqtt_port=1, protocol="5")
    monkeypatch.setenv("OFFICESEC_GUARD__DEMO", "true" if demo else "false")
    service = GuardService(load_guard_config(layout.guard_config))
    routes = demo_web.routes() if demo else []
    client = TestClient(create_app(service, routes), follow_redirects=False)  # no lifespan: no MQTT
    login = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', login.text)
    assert token is not None
    user = layout.users[1]
    answer = client.post("/login", data={"username": user.name, "password": user.password,
                                         "csrf": token.group(1), "next": "/"})
    assert answer.status_code == 303
    return client, token.group(1), service


# Starlette's TestClient warns that it will move to httpx2; the test is about our pages
quiet_testclient = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@quiet_testclient
def test_simulator_exists_only_in_demo_mode(tmp_path, monkeypatch):
    client, token, service = _client(tmp_path, monkeypatch, demo=False)
    try:
        page = client.get("/")
        assert page.status_code == 200
        assert "/static/sim.js" not in page.text and "/static/queue.js" in page.text
        assert client.get("/demo/sim/outputs").status_code == 404
        answer = client.post("/demo/sim/eg-101/panic", json={"value": "press"},
                             headers={"X-CSRF-Token": token})
        assert answer.status_code == 404
    finally:
        service.store.close()


@quiet_testclient
def test_demo_dashboard_loads_the_simulator_and_checks_input(tmp_path, monkeypatch):
    client, token, service = _client(tmp_path, monkeypatch, demo=True)
    try:
        page = client.get("/")
        assert "/static/sim.js" in page.text
        assert 'data-role="guard"' in page.text and f'data-csrf="{token}"' in page.text
        assert 'id="site-controls"' not in page.text  # lockdown controls are for admins
        assert client.post("/demo/sim/eg-101/panic", json={"value": "press"}).status_code == 403
        bad = client.post("/demo/sim/eg-101/panic", json={"value": "smash"},
                          headers={"X-CSRF-Token": token})
        assert bad.status_code == 400 and "press or release" in bad.json()["error"]
        none = client.post("/demo/sim/eg-101/panic", content=b"[1, 2]",
                           headers={"X-CSRF-Token": token, "Content-Type": "application/json"})
        assert none.status_code == 400 and none.json()["error"].startswith("value: erforderlich")
    finally:
        client.app.state.sim_bridge.stop()
        service.store.close()
