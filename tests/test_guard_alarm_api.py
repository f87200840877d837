"""The alarm API of contract section 7: queue order, incident timeline, second screens,
responders, resolve outcomes (422 before anything is sent), history and CSV export."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator

import pytest

from tests.broker import Mosquitto
from tests.guard_proc import GuardProc, guard_and_broker, wait_for
from tests.office_sim import OfficeSim


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[GuardProc, Mosquitto]]:
    with guard_and_broker("officesec-guard-alarmapi-", security={"command_timeout_s": 2},
                          escalation={"after_s": 600}) as pair:
        yield pair


def _raise(guard: GuardProc, sim: OfficeSim, *, test: bool = False) -> str:
    alarm_id = str(sim.press(test=test).alarm_id)
    wait_for(lambda: any(a["alarm_id"] == alarm_id for a in guard.alarms()), what="alarm")
    return alarm_id


def test_open_alarms_are_ordered_panic_then_drill_oldest_first(
        shared: tuple[GuardProc, Mosquitto]) -> None:
    guard, broker = shared
    sims = [OfficeSim(broker.port, f"ord-{i}", public_key=guard.public_key) for i in range(4)]
    try:
        drill_old = _raise(guard, sims[0], test=True)
        time.sleep(0.05)
        panic_old = _raise(guard, sims[1])
        time.sleep(0.05)
        drill_new = _raise(guard, sims[2], test=True)
        time.sleep(0.05)
        panic_new = _raise(guard, sims[3])
        ids = [a["alarm_id"] for a in guard.alarms() if a["office"].startswith("ord-")]
        assert ids == [panic_old, panic_new, drill_old, drill_new]
        kinds = {a["alarm_id"]: a["kind"] for a in guard.alarms()}
        assert kinds[panic_old] == "panic" and kinds[drill_old] == "drill"
        alarm = next(a for a in guard.alarms() if a["alarm_id"] == panic_old)
        assert alarm["state"] == "active" and alarm["responders"] == []
        assert alarm["escalated_at"] is None and alarm["escalates_at"] is not None
        assert 590 < alarm["escalates_in_s"] <= 600
        for alarm_id in ids:
            assert guard.client.post(f"/api/alarms/{alarm_id}/resolve",
                                     json={"outcome": "handled"}).status_code == 200
    finally:
        for sim in sims:
            sim.close()


def test_second_ack_is_not_an_error_and_responders_are_added(
        shared: tuple[GuardProc, Mosquitto]) -> None:
    guard, broker = shared
    sim = OfficeSim(broker.port, "ack-2", public_key=guard.public_key)
    try:
        alarm_id = _raise(guard, sim)
        first = guard.client.post(f"/api/alarms/{alarm_id}/ack")
        assert first.status_code == 200, first.text
        assert first.json()["alarm"]["ack_delivered"] is True
        second = guard.admin.post(f"/api/alarms/{alarm_id}/ack")
        assert second.status_code == 200, second.text
        body = second.json()
        assert body["already_acknowledged_by"] == "alice"
        assert body["already_acknowledged_at"] == first.json()["alarm"]["acknowledged_at"]
        assert len(sim.wait_commands("ack")) == 1  # the office got one ack, not two
        for client in (guard.admin, guard.admin, guard.client):  # twice the same: once
            resp = client.post(f"/api/alarms/{alarm_id}/respond")
            assert resp.status_code == 200, resp.text
        responders = resp.json()["alarm"]["responders"]
        assert [r["by"] for r in responders] == ["root", "alice"]
        assert all(r["at"].endswith("Z") for r in responders)
    finally:
        sim.close()


@pytest.mark.parametrize("body", [None, {}, {"outcome": "solved"}, {"outcome": 3},
                                  {"outcome": "handled", "reason": "x"}])
def test_resolve_without_a_valid_outcome_is_422_and_nothing_is_sent(
        shared: tuple[GuardProc, Mosquitto], body: dict[str, object] | None) -> None:
    guard, broker = shared
    sim = OfficeSim(broker.port, "res-422", public_key=guard.public_key)
    try:
        alarm_id = _raise(guard, sim)
        resp = guard.client.post(f"/api/alarms/{alarm_id}/resolve", json=body)
        assert resp.status_code == 422, resp.text
        expected = "reason" if body and "reason" in body else "outcome"
        assert resp.json()["field"] == expected and expected in resp.json()["error"]
        time.sleep(0.3)
        assert [c.cmd for c in sim.commands] == []
        assert guard.get(f"/api/alarms/{alarm_id}")["state"] == "active"
        guard.client.post(f"/api/alarms/{alarm_id}/resolve", json={"outcome": "handled"})
    finally:
        sim.close()


def test_incident_timeline_outcome_history_and_csv(shared: tuple[GuardProc, Mosquitto]) -> None:
    guard, broker = shared
    sim = OfficeSim(broker.port, "inc-1", public_key=guard.public_key)
    try:
        before = time.time() - 1
        alarm_id = _raise(guard, sim)
        sim.event("panic_repeat", alarm_id=sim.alarm_id, presses=2)
        wait_for(lambda: guard.get(f"/api/alarms/{alarm_id}")["presses"] == 2, what="repeat")
        assert guard.client.post(f"/api/alarms/{alarm_id}/ack").status_code == 200
        assert guard.admin.post(f"/api/alarms/{alarm_id}/respond").status_code == 200
        note = "=HYPERLINK(\"http://evil\")\tTäter geflüchtet"
        resp = guard.client.post(f"/api/alarms/{alarm_id}/resolve",
                                 json={"outcome": "police", "note": note})
        assert resp.status_code == 200, resp.text
        inc = guard.get(f"/api/alarms/{alarm_id}")
        assert inc["state"] == "closed" and inc["outcome"] == "police"
        assert inc["note"] == note.strip() and inc["resolved_by"] == "alice"
        assert inc["resolved_at"] and inc["escalates_at"] is None
        whats = [e["what"] for e in inc["timeline"]]
        for step in ("pressed", "pressed_again", "ack_requested", "acknowledged", "responding",
                     "resolve_requested", "resolved"):
            assert step in whats, whats
        assert whats.index("pressed") < whats.index("acknowledged") < whats.index("resolved")
        assert [e["ts"] for e in inc["timeline"]] == sorted(e["ts"] for e in inc["timeline"])
        assert guard.client.get("/api/alarms/00000000-0000-0000-0000-000000000000"
                                ).status_code == 404
        # history: closed alarms, filtered
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(before))
        hist = guard.get("/api/alarms", open="false", office="inc-1", since=since, kind="panic")
        assert [a["alarm_id"] for a in hist] == [alarm_id]
        assert guard.get("/api/alarms", open="false", office="inc-1", kind="fault") == []
        assert guard.get("/api/alarms", open="false", office="inc-1", until=since) == []
        for bad in ({"open": "false", "kind": "nope"}, {"open": "true", "office": "inc-1"},
                    {"open": "false", "since": "yesterday"}):
            assert guard.client.get("/api/alarms", params=bad).status_code == 400
        text = guard.client.get("/api/alarms.csv", params={"open": "false",
                                                           "office": "inc-1"}).text
        (row,) = list(csv.DictReader(io.StringIO(text)))
        assert row["alarm_id"] == alarm_id and row["outcome"] == "police"
        assert row["note"].startswith("'=HYPERLINK")  # a formula is neutralised
        assert row["responders"].startswith("root ")
    finally:
        sim.close()


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised() -> None:
    from controller.guard.web.csv_export import csv_safe

    for text in ("=1+2", "+1", "-1", "@SUM(A1)", "\tcmd", "\rcmd"):
        assert csv_safe(text) == "'" + text
    assert csv_safe("Beratung 101") == "Beratung 101"
    assert csv_safe(3) == 3
