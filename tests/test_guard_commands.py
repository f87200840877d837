"""Signed commands from the guard station: confirmation by nonce, 504, 409, 503, roles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.protocol.signing import keygen
from tests.broker import Mosquitto
from tests.guard_proc import GuardProc, guard_and_broker, wait_for
from tests.office_sim import OfficeSim


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[GuardProc, Mosquitto]]:
    """One broker and one station for the module; each test uses its own office id."""
    with guard_and_broker("officesec-guard-cmd-", security={"command_timeout_s": 1}) as pair:
        yield pair


@pytest.fixture
def guard(shared: tuple[GuardProc, Mosquitto]) -> GuardProc:
    return shared[0]


@pytest.fixture
def broker(shared: tuple[GuardProc, Mosquitto]) -> Mosquitto:
    return shared[1]


def _alarm(guard: GuardProc, sim: OfficeSim) -> str:
    event = sim.press()
    alarm_id = str(event.alarm_id)
    wait_for(lambda: any(a["alarm_id"] == alarm_id for a in guard.alarms()), what="alarm")
    return alarm_id


def _of(guard: GuardProc, alarm_id: str) -> dict:
    return next(a for a in guard.alarms(open_only=False) if a["alarm_id"] == alarm_id)


def test_ack_and_resolve_are_confirmed_by_the_office(guard: GuardProc, broker: Mosquitto) -> None:
    sim = OfficeSim(broker.port, "cmd-1", public_key=guard.public_key)
    try:
        alarm_id = _alarm(guard, sim)
        resp = guard.client.post(f"/api/alarms/{alarm_id}/ack")
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["command"]["status"] == "confirmed"
        assert body["alarm"]["state"] == "acknowledged"
        assert body["alarm"]["acknowledged_by"] == "alice"
        assert body["alarm"]["command_status"] == "confirmed by the office"
        (ack,) = sim.wait_commands("ack")
        assert ack.by == "alice" and str(ack.alarm_id) == alarm_id and ack.sig
        assert sim.rejections == []
        resp = guard.client.post(f"/api/alarms/{alarm_id}/resolve", json={"outcome": "handled"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["alarm"]["state"] == "closed"
        assert alarm_id not in {a["alarm_id"] for a in guard.alarms()}
        resp = guard.client.post(f"/api/alarms/{alarm_id}/ack")
        assert resp.status_code == 409
        audit = [a for a in guard.admin.get("/api/audit").json() if a["target"] == alarm_id]
        assert [a["action"] for a in audit] == ["alarm_ack", "alarm_resolve", "alarm_ack"]
    finally:
        sim.close()


def test_ack_without_answer_is_a_504(guard: GuardProc, broker: Mosquitto) -> None:
    sim = OfficeSim(broker.port, "cmd-2", public_key=guard.public_key, answer=False)
    try:
        alarm_id = _alarm(guard, sim)
        resp = guard.client.post(f"/api/alarms/{alarm_id}/ack")
        assert resp.status_code == 504
        assert "error" in resp.json()
        alarm = _of(guard, alarm_id)
        assert alarm["state"] == "active"
        assert alarm["guard_ack_by"] == "alice"
        assert alarm["command_status"].startswith("no confirmation")
    finally:
        sim.close()


def test_wrongly_signed_command_is_rejected_409(guard: GuardProc, broker: Mosquitto,
                                               tmp_path: Path) -> None:
    _, other_pub = keygen(tmp_path / "other")
    sim = OfficeSim(broker.port, "cmd-3", public_key=other_pub)
    try:
        alarm_id = _alarm(guard, sim)
        resp = guard.client.post(f"/api/alarms/{alarm_id}/ack")
        assert resp.status_code == 409
        assert "bad_signature" in resp.json()["error"]
        assert sim.rejections == ["bad_signature"]
    finally:
        sim.close()


def test_without_signing_key_ack_is_recorded_and_503(tmp_path: Path, broker: Mosquitto) -> None:
    guard = GuardProc(tmp_path / "g", broker.port, signing=False,
                      guard={"id": "guard-2"}).start()
    sim = OfficeSim(broker.port, "cmd-4")
    try:
        alarm_id = _alarm(guard, sim)
        resp = guard.client.post(f"/api/alarms/{alarm_id}/ack")
        assert resp.status_code == 503
        assert "nicht signiert" in resp.json()["error"]  # German by default, names the key
        assert "security.signing_key" in resp.json()["error"]
        assert _of(guard, alarm_id)["guard_ack_by"] == "alice"
        assert sim.commands == []
    finally:
        sim.close()
        guard.close()


def test_office_commands_and_roles(guard: GuardProc, broker: Mosquitto) -> None:
    sim = OfficeSim(broker.port, "cmd-5", public_key=guard.public_key,
                    site="Site Five").start_heartbeat()
    try:
        wait_for(lambda: guard.office("cmd-5")["online"], what="office online")
        resp = guard.client.post("/api/offices/cmd-5/test")
        assert resp.status_code == 200, resp.text
        alarm_id = resp.json()["alarm_id"]
        alarm = wait_for(lambda: [a for a in guard.alarms() if a["alarm_id"] == alarm_id],
                         what="drill alarm")[0]
        assert alarm["test"] is True
        assert guard.client.post("/api/offices/cmd-5/lockdown").status_code == 403
        resp = guard.admin.post("/api/offices/cmd-5/lockdown")
        assert resp.status_code == 200, resp.text
        assert resp.json()["command"]["event"]["type"] == "lockdown_on"
        resp = guard.admin.post("/api/offices/cmd-5/release")
        assert resp.status_code == 409
        assert "remote_release_not_allowed" in resp.json()["error"]
        resp = guard.admin.post("/api/lockdown", json={"site": "Site Five", "on": False})
        assert resp.status_code == 200, resp.text
        assert resp.json()["results"]["cmd-5"]["status"] == "confirmed"
        assert guard.admin.post("/api/lockdown", json={"site": "Nowhere", "on": True}
                                ).status_code == 404
        assert guard.admin.post("/api/lockdown", json={"site": "x"}).status_code == 400
        assert guard.admin.post("/api/lockdown", content=b"[1]").status_code == 400
        assert guard.client.post("/api/offices/nope-1/test").status_code == 404
        assert guard.client.post("/api/offices/BAD!/test").status_code in (400, 404)
    finally:
        sim.close()
