"""Escalation: an unacknowledged alarm goes to the webhook (with retries) and on MQTT."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from controller.protocol.messages import Escalation, Topics
from tests.broker import Mosquitto
from tests.guard_proc import USERS, GuardProc, SSEClient, wait_for
from tests.office_sim import OfficeSim


class Webhook:
    """A tiny local HTTP server: fails the first `fail` requests with 500, then 200."""

    def __init__(self, fail: int = 0) -> None:
        self.received: queue.Queue[tuple[int, dict[str, Any]]] = queue.Queue()
        self.fail = fail
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if hook.fail > 0 else 200
                hook.fail -= 1
                hook.received.put((status, json.loads(body)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(fail=1)
    try:
        yield hook
    finally:
        hook.close()


def _subscribe(port: int, topic: str) -> tuple[mqtt.Client, queue.Queue[bytes]]:
    got: queue.Queue[bytes] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, m: got.put(m.payload)
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    return client, got


def test_unacknowledged_alarm_is_escalated(tmp_path: Path, broker: Mosquitto,
                                          webhook: Webhook) -> None:
    guard = GuardProc(tmp_path / "guard", broker.port,
                      escalation={"after_s": 1, "webhook_url": webhook.url}).start()
    sub, published = _subscribe(broker.port, Topics("officesec").guard_escalation("guard-1"))
    sse = SSEClient(guard.url, ("alice", USERS["alice"][0]))
    sim = OfficeSim(broker.port, public_key=guard.public_key)
    try:
        drill = sim.press(test=True)
        event = sim.press()
        payload = published.get(timeout=10)
        first = Escalation.model_validate_json(payload)
        second = Escalation.model_validate_json(published.get(timeout=10))
        assert {first.alarm_id, second.alarm_id} == {event.alarm_id, drill.alarm_id}
        status, body = webhook.received.get(timeout=10)
        assert status == 500
        assert body["alarm_id"] == str(event.alarm_id)
        status, body = webhook.received.get(timeout=10)  # retried after backoff
        assert status == 200 and body["alarm_id"] == str(event.alarm_id)
        assert webhook.received.empty()  # the drill did not go to the webhook
        sse.wait(lambda k, d: k == "escalation" and d["alarm_id"] == str(event.alarm_id)
                 and d["status"].startswith("delivered"))
        alarms = {a["alarm_id"]: a for a in guard.alarms()}
        assert alarms[str(event.alarm_id)]["escalated_at"]
        assert alarms[str(event.alarm_id)]["escalation_status"].startswith("delivered")
        assert alarms[str(drill.alarm_id)]["escalation_status"] == "no webhook (drill)"
        health = guard.get("/healthz")["webhook"]
        assert health["failures"] == 1 and health["delivered"] == 1
        assert health["last_error"]
    finally:
        sim.close()
        sse.close()
        sub.loop_stop()
        guard.close()


def test_acknowledged_alarm_is_not_escalated(tmp_path: Path, broker: Mosquitto,
                                            webhook: Webhook) -> None:
    guard = GuardProc(tmp_path / "guard", broker.port,
                      escalation={"after_s": 2, "webhook_url": webhook.url}).start()
    sim = OfficeSim(broker.port, public_key=guard.public_key)
    try:
        event = sim.press()
        alarm_id = str(event.alarm_id)
        wait_for(guard.alarms, what="alarm")
        assert guard.client.post(f"/api/alarms/{alarm_id}/ack").status_code == 200
        late = sim.press()
        wait_for(lambda: webhook.received.qsize() >= 1, timeout=10, what="escalation")
        _, body = webhook.received.get()
        assert body["alarm_id"] == str(late.alarm_id)
        alarms = {a["alarm_id"]: a for a in guard.alarms()}
        assert alarms[alarm_id]["escalated_at"] is None
    finally:
        sim.close()
        guard.close()


def test_webhook_interrupted_by_a_restart_is_delivered_after_it(tmp_path: Path,
                                                                broker: Mosquitto) -> None:
    hook = Webhook(fail=1000)
    guard = GuardProc(tmp_path / "guard", broker.port,
                      escalation={"after_s": 1, "webhook_url": hook.url}).start()
    sim = OfficeSim(broker.port, public_key=guard.public_key)
    try:
        event = sim.press()
        status, _ = hook.received.get(timeout=10)
        assert status == 500
        wait_for(lambda: guard.alarms()[0]["escalation_status"].startswith("retrying"),
                 what="retrying")
        assert guard.stop() == 0
        hook.fail = 0
        guard.start()
        wait_for(lambda: guard.alarms()[0]["escalation_status"].startswith("delivered"),
                 what="delivered after restart")
        statuses = []
        while not hook.received.empty():
            statuses.append(hook.received.get())
        assert statuses[-1][0] == 200
        assert statuses[-1][1]["alarm_id"] == str(event.alarm_id)
    finally:
        sim.close()
        guard.close()
        hook.close()
