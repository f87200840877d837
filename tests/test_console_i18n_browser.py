"""The German-first console (#15) in Debian's Chromium: language, clock, instructions, report.

The station runs with the config's defaults (German) and `[guard] timezone =
"Europe/Berlin"`, while the browser runs in UTC: every time shown must be the
station's wall clock, 24-hour, dates as 02.12.2026.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from controller.guard import i18n as core
from controller.guard.web import i18n
from tests.console_support import Console, axe_violations, close_all, panic, start_drill
from tests.test_dashboard_support import Stack, publish_sim, start_stack, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]
INSTRUCTIONS = '''
[[instructions]]
site = "Jobcenter Demo"
text = "Polizei 110 · Sammelplatz: Parkplatz Nord"

[[instructions]]
site = "Jobcenter Demo"
office = "eg-101"
text = "Erste-Hilfe-Kasten im Flur neben Raum 103"
'''


PLAN_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="800" height="300" viewBox="0 0 800 300">'
    '<rect x="5" y="5" width="790" height="290" fill="#fff" stroke="#000" stroke-width="4"/>'
    '<line x1="5" y1="150" x2="795" y2="150" stroke="#000"/></svg>')
OTHER_FLOOR = """
[[offices]]
id = "og-201"
site = "Jobcenter Demo"
building = "Haus B"
floor = "1. OG"
room = "201"
label = "Beratung 201"
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from tests.test_dashboard_support import need_chromium

    need_chromium()
    plan = tmp_path_factory.mktemp("plans") / "haus-a-eg.svg"
    plan.write_text(PLAN_SVG, encoding="utf-8")
    floors = (f'\n[[floors]]\nsite = "Jobcenter Demo"\nbuilding = "Haus A"\nfloor = "EG"\n'
              f'plan = "{plan}"\n')
    running = start_stack(tmp_path_factory.mktemp("de"), offices=3, running=3,
                          escalate_after_s=600, language=None,
                          guard_env={"OFFICESEC_GUARD__TIMEZONE": "Europe/Berlin"},
                          guard_toml=INSTRUCTIONS + floors + OTHER_FLOOR,
                          plan_xy={"eg-101": (0.2, 0.25), "eg-102": (0.5, 0.25),
                                   "eg-103": (0.8, 0.25)})
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def console(stack: Stack) -> Iterator[Console]:
    with Console.open(stack) as c:
        yield c


@pytest.fixture(autouse=True)
def clean(stack: Stack, console: Console) -> Iterator[None]:
    yield
    close_all(stack)
    console.assert_no_js_errors()


def english_leftovers(text: str) -> list[str]:
    """English msgids (without placeholders) whose German differs, found in `text`."""
    core.use("de")
    found = []
    for msgid in i18n.js_catalog("en"):
        if "{" in msgid or len(msgid) < 6 or core.gettext(msgid) == msgid:
            continue
        if re.search(r"(?<!\w)" + re.escape(msgid) + r"(?!\w)", text):
            found.append(msgid)
    return found


def test_the_console_is_german_24_hour_in_the_stations_time_zone(stack: Stack, console: Console):
    page = console.screen("guard", timezone_id="UTC")
    panic(stack, "eg-101")
    start_drill(stack, "eg-102")
    row = page.locator('.qrow[data-kind="panic"]')
    row.wait_for()
    page.locator('.qrow[data-kind="drill"]').wait_for()
    assert page.get_attribute("html", "lang") == "de"
    text = page.locator("body").inner_text()
    for german in ("Offene Alarme", "Quittieren", "Ich komme auch", "nicht quittiert",
                   "Büros", "ÜBUNG", "Ton testen", "Abmelden", "eskaliert in"):
        assert german in text, german
    assert english_leftovers(text) == []
    raised = next(a for a in stack.api("/api/alarms?open=true") if a["office"] == "eg-101")
    berlin = datetime.fromisoformat(raised["raised_at"]).astimezone(ZoneInfo("Europe/Berlin"))
    shown = row.locator(".q-raised").inner_text()
    assert shown == f"seit {berlin:%H:%M:%S}", shown  # Berlin's wall clock, 24 hours
    assert not re.search(r"\b(AM|PM)\b", text)
    assert axe_violations(page) == []  # the longer German texts keep their contrast
    page.context.close()


def test_instructions_are_shown_with_every_alarm_of_their_scope(stack: Stack, console: Console):
    page = console.screen("guard")
    panic(stack, "eg-102")
    page.locator('.qrow:has-text("Beratung 102")').wait_for()
    panel = page.locator("#instructions-panel")
    panel.wait_for()
    assert "Polizei 110" in panel.inner_text()
    assert "Erste-Hilfe-Kasten" not in panel.inner_text()  # that one is eg-101's only
    panic(stack, "eg-101")
    page.locator('.qrow:has-text("Beratung 101")').wait_for()
    page.mouse.move(5, 5)
    panel.locator('text=Erste-Hilfe-Kasten').wait_for()
    page.locator('.qrow:has-text("Beratung 101") .details-btn').click()
    dialog = page.locator("#details-dialog[open] .instructions")
    assert "Polizei 110" in dialog.inner_text() and "Erste-Hilfe-Kasten" in dialog.inner_text()
    page.context.close()


def test_the_incident_report_is_german_and_printable(stack: Stack, console: Console):
    page = console.screen("guard", timezone_id="UTC")
    panic(stack, "eg-103")
    page.locator('.qrow:has-text("Beratung 103")').wait_for()
    aid = next(a["alarm_id"] for a in stack.api("/api/alarms?open=true") if a["office"] == "eg-103")
    close_all(stack)
    page.goto(stack.url + f"alarms/{aid}")
    page.wait_for_selector('body[data-loaded="true"]')
    text = page.locator("main").inner_text()
    assert "Vorfallbericht: Beratung 103" in text
    for german in ("Ausgelöst", "Quittiert", "Abgeschlossen", "Ergebnis", "Einsatz erledigt",
                   "Ablauf (älteste zuerst)", "Notrufknopf gedrückt"):
        assert german in text, german
    assert re.search(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}", text)  # 02.12.2026 15:49:33
    assert english_leftovers(text) == []
    page.emulate_media(media="print")
    assert not page.locator(".topbar").is_visible()
    assert not page.locator(".print-btn").is_visible()
    assert page.locator(".signatures").is_visible()
    page.context.close()


def test_offices_grouped_problems_first_with_counts_and_search(stack: Stack, console: Console):
    page = console.screen("guard")
    groups = page.locator(".office-group")
    wait_for(lambda: groups.count() == 2, what="two groups")
    first = groups.nth(0)  # Haus B: its only office never reported (a problem)
    assert "Haus B" in first.locator(".group-title").inner_text()
    assert "1 Büro" in first.locator(".group-counts").inner_text()
    assert "fehlt" in first.locator(".group-counts").inner_text()
    assert "3 Büros" in groups.nth(1).locator(".group-counts").inner_text()
    page.fill("#office-search", "201")
    wait_for(lambda: page.locator(".office:visible").count() == 1, what="one match")
    assert page.locator('.office[data-office="og-201"]').is_visible()
    assert not groups.nth(1).is_visible()  # no match in Haus A
    page.fill("#office-search", "beratung 102")
    wait_for(lambda: page.locator(".office:visible").count() == 1, what="label match")
    assert page.locator('.office[data-office="eg-102"]').is_visible()
    page.fill("#office-search", "")
    wait_for(lambda: page.locator(".office:visible").count() == 4, what="all again")
    page.context.close()


def test_floor_plan_tab_shows_offices_and_the_alarmed_room_blinking(stack: Stack,
                                                                    console: Console):
    page = console.screen("guard")
    page.click("#tab-plan")  # "Grundriss"
    assert page.locator("#tab-plan").inner_text() == "Grundriss"
    plan = page.locator('#plan-view figure.plan[data-floor="0"]')
    plan.wait_for()
    wait_for(lambda: plan.locator("img").evaluate("i => i.complete && i.naturalWidth > 0"),
             what="plan image loaded")
    for office in ("eg-101", "eg-102", "eg-103"):
        plan.locator(f'.plan-marker[data-office="{office}"].st-online').wait_for()
    assert "Beratung 201" in page.locator("#plan-view").inner_text()  # not on a plan: listed
    panic(stack, "eg-102")
    plan.locator('.plan-marker[data-office="eg-102"].st-alarm.blink').wait_for()
    # the plan is re-rendered on every change: measure both boxes from one rendering
    def measured():
        m = plan.locator('.plan-marker[data-office="eg-102"]').bounding_box()
        c = plan.locator(".plan-canvas").bounding_box()
        return (m, c) if m and c else None

    marker, canvas = wait_for(measured, 10, "marker and plan measured")
    assert abs((marker["x"] + marker["width"] / 2 - canvas["x"]) / canvas["width"] - 0.5) < 0.02
    page.locator('.qrow:has-text("Beratung 102") .details-btn').click()
    page.locator('#details-dialog[open] .plan-marker[data-office="eg-102"].st-alarm').wait_for()
    page.keyboard.press("Escape")
    # a forced door is a fault alarm of the station, not a state fault of the office: its
    # card and its marker still say so at once (amber, "Tür aufgebrochen")
    publish_sim(stack, "eg-103", "door", "open")
    try:
        plan.locator('.plan-marker[data-office="eg-103"].st-fault').wait_for()
        card = page.locator('.office[data-office="eg-103"][data-status="fault"]')
        assert "Tür aufgebrochen" in card.inner_text()
    finally:
        publish_sim(stack, "eg-103", "door", "close")
    assert axe_violations(page) == []
    page.context.close()


def test_installer_view_for_admins_only_with_audit_log_and_office_page(stack: Stack,
                                                                      console: Console):
    guard = console.screen("guard", "installer")
    assert guard.locator("#controllers").count() == 0  # 403 for the guard role
    guard.context.close()
    page = console.screen("admin", "installer")
    row = page.locator('#controllers tr[data-office="eg-101"]')
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == "online" and re.fullmatch(r"\d+\.\d+\.\d+.*", cells[2]), cells
    assert re.fullmatch(r"\d+:\d{2}(:\d{2})?", cells[3]), cells  # uptime
    assert cells[4].startswith("vor ") and re.fullmatch(r"\d+ / \d+", cells[5]), cells
    assert re.fullmatch(r"[+-]?\d+\.\d{2} s", cells[7]), cells  # clock offset
    # the office's own network facts from its state: IP, broker, since when (24 h, German date)
    assert re.fullmatch(r"127\.0\.0\.1 \u00b7 127\.0\.0\.1:\d+\nseit \d\d\.\d\d\.\d{4} "
                        r"\d\d:\d\d:\d\d", cells[8]), cells
    assert "fehlt" in page.locator('#controllers tr[data-office="og-201"]').inner_text()
    page.locator("#audit tbody tr").first.wait_for()  # the logins are audited
    page.fill("#a-user", "admin")
    texts = page.locator("#audit tbody tr").all_inner_texts()
    assert texts and all("admin" in t for t in texts)
    csv_text = page.evaluate("window.__auditCsv()")
    assert csv_text.startswith("Zeit (UTC),Benutzer,Aktion,Ziel,Ergebnis,Details\r\n")
    assert len(csv_text.strip().splitlines()) == len(texts) + 1
    row.locator("a").click()
    page.wait_for_selector('body[data-loaded="true"]')
    assert "Beratung 101" in page.locator("#office-title").inner_text()
    facts = page.locator("#office-facts").inner_text()
    assert "Laufzeit" in facts and "IP-Adresse" in facts and "Verbunden seit" in facts
    page.locator("#office-events tbody tr").first.wait_for()
    events = page.locator("#office-events").inner_text()
    assert "Controller gestartet" in events and "controller_started" in events  # word and code
    assert axe_violations(page) == []
    page.context.close()
