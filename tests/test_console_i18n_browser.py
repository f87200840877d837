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

from controller.guard.web import i18n
from tests.console_support import Console, axe_violations, close_all, panic, start_drill
from tests.test_dashboard_support import Stack, start_stack

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


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from tests.test_dashboard_support import need_chromium

    need_chromium()
    running = start_stack(tmp_path_factory.mktemp("de"), offices=3, escalate_after_s=600,
                          language=None, guard_env={"OFFICESEC_GUARD__TIMEZONE": "Europe/Berlin"},
                          guard_toml=INSTRUCTIONS)
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
    i18n.use("de")
    found = []
    for msgid in i18n.js_catalog("en"):
        if "{" in msgid or len(msgid) < 6 or i18n.gettext(msgid) == msgid:
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
