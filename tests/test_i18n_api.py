"""API errors and CSV headers for people follow `[guard] language` (#15); codes and fields do not.

Two real stations on a real Mosquitto: one with the default (German), one with
`language = "en"`. Each refusal is checked in both: the human text is in the
station's language, the machine parts (status, `field`, the field name in
front of the text, CSV cell values) are the same.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import httpx
import pytest

from tests.broker import Mosquitto
from tests.guard_proc import USERS, GuardProc, wait_for
from tests.office_sim import OfficeSim

NO_ALARM = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def mq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path_factory.mktemp("mq")).start()
    try:
        yield broker
    finally:
        broker.kill()


@pytest.fixture(scope="module")
def stations(tmp_path_factory: pytest.TempPathFactory, mq: Mosquitto
             ) -> Iterator[dict[str, GuardProc]]:
    de = GuardProc(tmp_path_factory.mktemp("de"), mq.port).start()
    en = GuardProc(tmp_path_factory.mktemp("en"), mq.port,
                   guard={"id": "guard-en", "language": "en"}).start()
    try:
        yield {"de": de, "en": en}
    finally:
        de.close()
        en.close()


EXPECTED = [
    # (method, path, json body, status, German, English text of `error`)
    ("GET", "/api/events?limit=x", None, 400,
     "limit: keine ganze Zahl", "limit: not an integer"),
    ("GET", "/api/alarms?open=vielleicht", None, 400,
     "open: muss true oder false sein", "open: must be true or false"),
    ("GET", "/api/alarms?colour=red", None, 400,
     "unbekannter Abfrageparameter: colour", "unknown query parameter: colour"),
    ("GET", "/api/alarms/nope", None, 400,
     "alarm_id: keine UUID: 'nope'", "alarm_id: not a UUID: 'nope'"),
    ("GET", f"/api/alarms/{NO_ALARM}", None, 404,
     f"Alarm {NO_ALARM} ist nicht bekannt", f"alarm {NO_ALARM} is not known"),
    ("POST", f"/api/alarms/{NO_ALARM}/resolve", {}, 422,
     "outcome: erforderlich, einer dieser Werte: handled, police, medical, false_alarm, "
     "drill, technical",
     "outcome: required, one of handled, police, medical, false_alarm, drill, technical"),
    ("POST", f"/api/alarms/{NO_ALARM}/resolve", {"outcome": "police", "note": 5}, 422,
     "note: muss ein Text mit höchstens 2000 Zeichen sein",
     "note: must be text of at most 2000 characters"),
    ("POST", f"/api/alarms/{NO_ALARM}/ack", None, 404,
     f"Alarm {NO_ALARM} ist nicht bekannt", f"alarm {NO_ALARM} is not known"),
    ("POST", "/api/offices/nope-9/test", None, 404,
     "Büro nope-9 ist nicht bekannt", "office nope-9 is not known"),
    ("POST", "/api/lockdown", {"site": "X", "on": True}, 403,
     "diese Aktion braucht die Rolle „admin“", "this action needs the admin role"),
    ("GET", "/api/nothing", None, 404, "Nicht gefunden", "Not Found"),
]


@pytest.mark.parametrize("lang", ["de", "en"])
def test_api_errors_for_people_are_in_the_stations_language(stations: dict[str, GuardProc],
                                                             lang: str) -> None:
    guard = stations[lang]
    wrong = []
    for method, path, body, status, german, english in EXPECTED:
        resp = guard.client.request(method, path, json=body)
        want = german if lang == "de" else english
        if resp.status_code != status or resp.json().get("error") != want:
            wrong.append((method, path, resp.status_code, resp.text[:200]))
    assert wrong == []
    # the 422 still names the field for a program, whatever the language
    resp = guard.client.post(f"/api/alarms/{NO_ALARM}/resolve", json={"outcome": "oops"})
    assert resp.status_code == 422 and resp.json()["field"] == "outcome"


@pytest.mark.parametrize("lang", ["de", "en"])
def test_refusals_before_the_route_are_translated_too(stations: dict[str, GuardProc],
                                                      lang: str) -> None:
    guard = stations[lang]
    de = lang == "de"
    with httpx.Client(base_url=guard.url, timeout=15) as anonymous:
        resp = anonymous.get("/api/offices")
        assert resp.status_code == 401
        assert resp.json()["error"] == ("nicht angemeldet" if de else "not logged in")
    with httpx.Client(base_url=guard.url, timeout=15, auth=("alice", "wrong")) as bad:
        resp = bad.get("/api/offices")
        assert resp.status_code == 401
        assert resp.json()["error"] == ("Benutzername oder Passwort falsch" if de
                                        else "wrong user name or password")
    with httpx.Client(base_url=guard.url, timeout=15,
                      auth=("root", USERS["root"][0])) as admin:
        resp = admin.post("/api/offices/x-1/release", headers={"Origin": "http://evil.example"})
        assert resp.status_code == 403
        assert resp.json()["error"] == (
            "Anfrage von einer fremden Seite abgelehnt: Origin 'http://evil.example' is not "
            "this site" if de else
            "cross-site request refused: Origin 'http://evil.example' is not this site")


@pytest.mark.parametrize("lang", ["de", "en"])
def test_the_consoles_csv_has_readable_headers_scripts_keep_the_field_names(
        stations: dict[str, GuardProc], mq: Mosquitto, lang: str) -> None:
    guard = stations[lang]
    office = OfficeSim(mq.port, f"csv-{lang}", public_key=guard.public_key)
    try:
        office.press()
        wait_for(guard.alarms, 10, "the alarm")
        plain = guard.client.get("/api/alarms.csv").text
        (head, row) = list(csv.reader(io.StringIO(plain)))[:2]
        assert head[:4] == ["alarm_id", "kind", "fault", "office"]
        people = guard.client.get("/api/alarms.csv", params={"header": "labels"}).text
        (head2, row2) = list(csv.reader(io.StringIO(people)))[:2]
        assert head2[:4] == (["Alarm-ID", "Art", "Störung", "Büro"] if lang == "de"
                             else ["Alarm ID", "Kind", "Fault", "Office"])
        assert "Ausgelöst (UTC)" in head2 if lang == "de" else "Raised (UTC)" in head2
        assert row2 == row and row[1] == "panic"  # the values are codes in both
        events = guard.client.get("/api/events.csv", params={"header": "labels"}).text
        assert events.splitlines()[0].startswith(
            "Zeit (UTC),Büro,Laufnummer,Ereignis" if lang == "de" else
            "Time (UTC),Office,Sequence number,Event")
        bad = guard.client.get("/api/alarms.csv", params={"header": "fancy"})
        assert bad.status_code == 400 and bad.json()["error"] == (
            "header: muss einer dieser Werte sein: fields, labels" if lang == "de" else
            "header: must be one of fields, labels")
    finally:
        office.close()

