"""Issue 14: escalation reaches people through Apprise, and a failing notifier is a fault.

Real receivers on 127.0.0.1: an HTTP server for Apprise's `json://` and an
aiosmtpd SMTP server for `mailto://`. A real guard station process, a real
Mosquitto, simulated offices.
"""

from __future__ import annotations

import email
import email.policy
import json
import queue
import re
import threading
import tomllib
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller

from controller.errors import ConfigError
from controller.guard.guard_config import GuardConfig
from controller.protocol.messages import Escalation
from controller.settings import build
from tests.broker import Mosquitto, free_port
from tests.guard_proc import GuardProc, wait_for
from tests.office_sim import OfficeSim
from tests.probe import Probe


class JsonSink:
    """Receives Apprise's json:// POSTs."""

    def __init__(self) -> None:
        self.got: queue.Queue[dict[str, Any]] = queue.Queue()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.got.put(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/oncall"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def all(self) -> list[dict[str, Any]]:
        out = []
        while not self.got.empty():
            out.append(self.got.get_nowait())
        return out


class MailSink:
    """A real SMTP server (aiosmtpd) collecting parsed messages."""

    def __init__(self) -> None:
        self.got: queue.Queue[email.message.EmailMessage] = queue.Queue()
        sink = self

        class Handler:
            async def handle_DATA(self, _server: Any, _session: Any,  # noqa: N802 - aiosmtpd
                                  envelope: Any) -> str:
                sink.got.put(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.url = (f"mailto://127.0.0.1:{self.port}?from=leitstelle@example.org"
                    f"&to=bereitschaft@example.org&mode=insecure")


@pytest.fixture
def sinks() -> Iterator[tuple[JsonSink, MailSink]]:
    js, mail = JsonSink(), MailSink()
    try:
        yield js, mail
    finally:
        js.server.shutdown()
        mail.controller.stop()


def test_faults_and_panics_notify_people_and_a_dead_notifier_is_a_fault(
        tmp_path: Path, broker: Mosquitto, sinks: tuple[JsonSink, MailSink]) -> None:
    js, mail = sinks
    dead = f"json://127.0.0.1:{free_port()}/nobody"  # nothing listens there
    guard = GuardProc(tmp_path / "guard", broker.port,
                      escalation={"after_s": 1, "fault_after_s": 2, "notify_retries": 1,
                                  "notify": [js.url, mail.url],
                                  "console_url": "https://leitstelle.example:8443"})
    guard.config.write_text(guard.config.read_text() + (
        f'\n[[escalation.levels]]\nafter_s = 900\nfault_after_s = 4\nnotify = ["{dead}"]\n'))
    guard.start()
    esc = Probe(broker.host, broker.port, "officesec/guard/guard-1/escalation").start()
    drill_office = OfficeSim(broker.port, "eg-201", public_key=guard.public_key).start_heartbeat()
    office = OfficeSim(broker.port, "eg-202", public_key=guard.public_key).start_heartbeat()
    try:
        drill = str(drill_office.press(test=True).alarm_id)
        wait_for(lambda: guard.get(f"/api/alarms/{drill}")["escalated_at"], 5, "drill escalated")
        panic = str(drill_office.press().alarm_id)  # a real press from the same office
        msg = js.got.get(timeout=10)
        assert msg["title"].startswith("Panikalarm: Beratung eg-201"), msg
        assert "Ort: Jobcenter Test, Haus A, EG, 201" in msg["message"]
        assert f"Vorgang: https://leitstelle.example:8443/?alarm={panic}" in msg["message"]
        assert "Niemand hat diesen Alarm bisher quittiert." in msg["message"]
        mail.got.get(timeout=10)  # the panic's mail
        assert js.all() == []  # and nothing for the drill (notify_on_test is off)

        wait_for(lambda: guard.office("eg-202")["online"], 5, "online")
        office.raw("availability", b"offline", retain=True)
        fault = wait_for(lambda: [a for a in guard.alarms() if a["office"] == "eg-202"], 5,
                         "offline fault")[0]
        msg = js.got.get(timeout=10)
        assert msg["title"] == "Technische Störung: Controller offline: Beratung eg-202"
        assert "Was tun: Der Panikknopf von Beratung eg-202 funktioniert nicht" in msg["message"]
        mailed = mail.got.get(timeout=10)
        assert mailed["Subject"] == msg["title"] and mailed["To"] == "bereitschaft@example.org"
        assert "Beratung eg-202" in mailed.get_body(("plain",)).get_content()
        escalations = [Escalation.model_validate_json(m.payload) for m in esc.msgs]
        assert {(e.kind, e.level) for e in escalations if e.office == "eg-202"} >= {
            ("fault", 1)}
        (fault_esc,) = [e for e in escalations if e.office == "eg-202" and e.level == 1]
        assert fault_esc.fault == "offline"

        # level 2 goes to a notifier that is down: retried, audited, then a station fault
        station = wait_for(lambda: [a for a in guard.alarms() if a["office"] == "guard-1"],
                           15, "notifier fault")[0]
        assert station["kind"] == "fault" and station["fault"] == "notify"
        assert "Bereitschaft telefonisch informieren" in station["what_to_do"]["de"]
        audit = guard.admin.get("/api/audit").json()
        notes = [a for a in audit if a["action"] == "notify" and a["target"] == fault["alarm_id"]]
        assert sorted(a["outcome"] for a in notes) == ["delivered", "delivered", "failed",
                                                       "failed"]
        assert all("nobody" not in a["detail"] or "127.0.0.1" in a["detail"] for a in notes)
        inc = guard.get(f"/api/alarms/{fault['alarm_id']}")
        whats = [e["what"] for e in inc["timeline"]]
        assert whats.count("escalated") == 2 and whats.count("notification_failed") == 2
        # the timeline (and the printed report) says it in the station's language
        failed = [e for e in inc["timeline"] if e["what"] == "notification_failed"]
        assert failed[0]["detail"].startswith("Stufe 2, json://127.0.0.1:"), failed
        assert ", Versuch 1 von 2: " in failed[0]["detail"]
        assert guard.get("/healthz")["notify"]["failing"]

        metrics = guard.client.get("/metrics").text
        assert 'officesec_alarms_open{kind="fault"} 2.0' in metrics
        assert "officesec_alarm_delivery_seconds_count 2.0" in metrics
        assert 'officesec_notifications_total{result="delivered"} 4.0' in metrics
        assert 'officesec_offices{state="offline"} 1.0' in metrics
        assert "officesec_event_loop_lag_seconds" in metrics
        assert "officesec_ingest_messages_total" in metrics
    finally:
        esc.stop()
        drill_office.close()
        office.close()
        guard.close()


def test_an_english_station_notifies_in_english_on_its_own_clock(
        tmp_path: Path, broker: Mosquitto, sinks: tuple[JsonSink, MailSink]) -> None:
    js, _mail = sinks
    guard = GuardProc(tmp_path / "guard", broker.port,
                      guard={"language": "en", "timezone": "America/New_York"},
                      escalation={"after_s": 1, "fault_after_s": 1, "notify": [js.url]}).start()
    office = OfficeSim(broker.port, "eg-301", public_key=guard.public_key).start_heartbeat()
    try:
        panic = str(office.press().alarm_id)
        msg = js.got.get(timeout=10)
        assert msg["title"] == "Panic alarm: Beratung eg-301", msg
        raised = guard.get(f"/api/alarms/{panic}")["raised_at"]
        local = datetime.fromisoformat(raised).astimezone(ZoneInfo("America/New_York"))
        lines = msg["message"].splitlines()
        assert lines[:3] == ["Nobody has acknowledged this alarm yet.",
                             "Location: Jobcenter Test, Haus A, EG, 301", "Office: eg-301"]
        assert lines[3].startswith(f"Raised: {local:%H:%M:%S} (") and lines[3].endswith(" ago)")
        assert lines[4] == "Escalation level: 1"
        timeline = wait_for(lambda: [e for e in guard.get(f"/api/alarms/{panic}")["timeline"]
                                     if e["what"] == "notification_delivered"], 10, "recorded")
        assert timeline[0]["detail"].startswith("level 1, json://127.0.0.1:")
        assert timeline[0]["detail"].endswith(", attempt 1 of 4")
        escalated = [e for e in guard.get(f"/api/alarms/{panic}")["timeline"]
                     if e["what"] == "escalated"]
        assert escalated[0]["detail"] == "level: 1; notifications: 1"  # translated by the console

        wait_for(lambda: guard.office("eg-301")["online"], 5, "online")
        office.raw("availability", b"offline", retain=True)
        msg = js.got.get(timeout=10)
        assert msg["title"] == "Technical fault: Controller offline: Beratung eg-301"
        assert ("What to do: The panic button of Beratung eg-301 does not work"
                in msg["message"])
    finally:
        office.close()
        guard.close()


def test_bad_notify_url_is_a_config_error_naming_the_key(tmp_path: Path,
                                                        broker: Mosquitto) -> None:
    guard = GuardProc(tmp_path / "guard", broker.port,
                      escalation={"notify": ["json://127.0.0.1:9/ok", "nosuchservice://x"]})
    with pytest.raises(RuntimeError, match=r"escalation: notify\.1: Apprise does not"):
        guard.start()
    assert "nosuchservice://x" not in guard.log_text()  # a URL may hold a secret
    guard.close()


def test_apprise_examples_in_the_docs_are_valid_configs() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "guard-station.md").read_text()
    blocks = [b for b in re.findall(r"```toml\n(.*?)```", doc, re.S) if "notify" in b]
    assert len(blocks) >= 2
    for block in blocks:
        cfg = build(GuardConfig, tomllib.loads(block))  # Apprise accepts every URL
        steps = cfg.escalation.steps(fault=True)
        assert steps == sorted(steps) and len(steps) == 1 + len(cfg.escalation.levels)


def test_notify_urls_with_secrets_come_from_a_file(tmp_path: Path) -> None:
    secrets = tmp_path / "notify.urls"
    secrets.write_text("# on-call team\n\nmailtos://leitstelle:GEHEIM@mail.example.org:587"
                       "?to=bereitschaft@example.org\njson://127.0.0.1:9/oncall\n")
    cfg = build(GuardConfig, {"escalation": {
        "notify": ["json://127.0.0.1:9/desk"], "notify_file": str(secrets),
        "levels": [{"after_s": 120, "notify_file": str(secrets)}]}})
    assert cfg.escalation.level_urls(1)[0] == "json://127.0.0.1:9/desk"
    assert cfg.escalation.level_urls(1)[1].startswith("mailtos://leitstelle:GEHEIM@")
    assert len(cfg.escalation.level_urls(2)) == 2
    secrets.write_text("json://127.0.0.1:9/ok\nnosuch://user:GEHEIM@x\n")
    with pytest.raises(ConfigError) as err:
        build(GuardConfig, {"escalation": {"notify_file": str(secrets)}})
    assert "notify_file: URL 2: Apprise does not understand" in str(err.value)
    assert "GEHEIM" not in str(err.value)
    with pytest.raises(ConfigError, match=r"levels\.0\.notify: a level needs notify"):
        build(GuardConfig, {"escalation": {"levels": [{"after_s": 60}]}})
