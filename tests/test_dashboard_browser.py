"""The guard dashboard in a real browser against a real guard station and real offices.

One stack per module (Mosquitto, `officesec guard`, three `officesec run` with
mock pins); each test uses its own office so that alarms never interfere.
"""

from __future__ import annotations

import csv
import io
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.protocol.messages import Event, Topics, utcnow
from tests.test_dashboard_support import (
    UI_TIMEOUT_MS,
    Stack,
    launch,
    login,
    need_chromium,
    publish_raw,
    publish_sim,
    start_stack,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ESCALATE_S = 2  # unacknowledged this long means escalated (the minimum the config allows)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    need_chromium()
    # eg-104 is in the roster but never started: it must show as missing
    running = start_stack(tmp_path_factory.mktemp("dash"), offices=4, running=3,
                          escalate_after_s=ESCALATE_S)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = launch(pw)
        try:
            yield chromium
        finally:
            chromium.close()


_SESSIONS: dict[tuple[str, str], Any] = {}
_JS_ERRORS: list[str] = []


@pytest.fixture(autouse=True)
def no_javascript_errors() -> Iterator[None]:
    """Every page of a test must run without an uncaught script error."""
    _JS_ERRORS.clear()
    yield
    assert _JS_ERRORS == []


def screen(browser: Any, stack: Stack, user: str, **ctx: Any) -> Any:
    """A logged-in dashboard in its own browser context (its own cookies, like another PC).

    The first screen per user logs in through the form; later ones reuse its cookies.
    """
    key = (stack.url, user)
    page = browser.new_context(storage_state=_SESSIONS.get(key), **ctx).new_page()
    page.on("pageerror", lambda exc: _JS_ERRORS.append(f"{page.url}: {exc}"))
    page.set_default_timeout(UI_TIMEOUT_MS)
    if key in _SESSIONS:
        page.goto(stack.url)
    else:
        login(page, stack.url, user, stack.password(user))
        _SESSIONS[key] = page.context.storage_state()
    page.wait_for_selector("#live.on")
    page.wait_for_selector(".office[data-office]")
    return page


def resolve_open_alarms(stack: Stack, office: str) -> None:
    for alarm in stack.api("/api/alarms?open=true"):
        if alarm["office"] != office or alarm.get("kind") == "fault":
            continue  # fault alarms close by themselves once acknowledged and cleared
        if alarm["state"] == "active":
            stack.api(f"/api/alarms/{alarm['alarm_id']}/ack", method="POST")
        stack.api(f"/api/alarms/{alarm['alarm_id']}/resolve", method="POST",
                  body={"outcome": "handled"})


def test_wrong_password_shows_an_error_and_no_session(browser: Any, stack: Stack):
    page = browser.new_context().new_page()
    page.goto(stack.url)
    assert "/login" in page.url  # the dashboard needs a login
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    assert "Wrong user name or password" in page.locator(".login-error").inner_text()
    page.goto(stack.url)
    assert "/login" in page.url
    page.context.close()


def test_alarm_appears_live_is_acknowledged_and_every_screen_follows(browser: Any, stack: Stack):
    office = "eg-101"
    first = screen(browser, stack, "admin", permissions=["notifications"])
    second = screen(browser, stack, "guard")
    # record the browser notifications the page raises (headless Chromium shows none)
    first.evaluate("""() => {
        window.__notes = [];
        const Real = window.Notification;
        window.Notification = function (title, opts) {
            window.__notes.push(title);
            return new Real(title, opts);
        };
        Object.defineProperty(window.Notification, "permission", { get: () => Real.permission });
        window.Notification.requestPermission = Real.requestPermission.bind(Real);
    }""")
    for page in (first, second):
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        assert page.locator(".alarm-card:not(.kind-fault)").count() == 0
    # the kiosk flag allows sound without a gesture (the blocked case: test_console_live_browser)
    wait_for(lambda: first.evaluate("document.body.dataset.audio") == "enabled", what="audio")

    publish_sim(stack, office, "panic", "press")
    publish_sim(stack, office, "panic", "release")

    for page in (first, second):
        card = page.locator('.alarm-card:not(.kind-fault)[data-state="active"]'
                            ':has-text("Beratung 101")')
        card.wait_for()
        assert "Jobcenter Demo" in card.inner_text() and "Room 101" in card.inner_text()
        assert page.evaluate("window.__sameDocument") is True
        assert "alarm-active" in page.evaluate("document.body.className")
        page.wait_for_selector(f'.office[data-office="{office}"][data-status="alarm"]')
    assert first.evaluate("document.body.dataset.sound") == "playing"  # until acknowledged
    assert first.evaluate("window.__notes") == ["ALARM: Beratung 101"]
    ticker = first.locator(".alarm-card:not(.kind-fault) .ticker")
    before = ticker.inner_text()
    wait_for(lambda: ticker.inner_text() != before, 5, "time since raised ticks")

    first.locator(".alarm-card:not(.kind-fault) .ack-btn").click()
    first.locator('.alarm-card:not(.kind-fault) .alarm-cmd.confirmed'
                  ':has-text("confirmed by the office")').wait_for()
    wait_for(lambda: first.evaluate("document.body.dataset.sound") == "off", 5, "sound stops")
    # the other guard's screen follows without a reload
    acked = second.locator('.alarm-card:not(.kind-fault)[data-state="acknowledged"]')
    acked.wait_for()
    assert "acknowledged by admin" in acked.inner_text()
    assert "alarm-active" not in second.evaluate("document.body.className")
    assert second.evaluate("window.__sameDocument") is True

    # resolving is a dialog with a required outcome (issue 13)
    second.locator(".alarm-card:not(.kind-fault) .resolve-btn").click()
    second.locator('#resolve-dialog[open] label[for="outcome-handled"]').click()
    second.locator("#resolve-dialog .resolve-submit").click()
    for page in (first, second):
        page.mouse.move(5, 5)  # the queue holds still while the pointer is over it
        page.locator(".alarm-card:not(.kind-fault)").wait_for(state="detached")
        page.wait_for_selector(f'.office[data-office="{office}"][data-status="online"]')
        page.context.close()


def test_drill_is_shown_as_a_drill_not_as_an_alarm(browser: Any, stack: Stack):
    office = "eg-102"
    page = screen(browser, stack, "guard")
    drill = page.locator(f'.office[data-office="{office}"] .drill-btn')
    drill.click()
    assert "Start drill?" in drill.inner_text()  # two steps: no accidental drills
    drill.click()
    card = page.locator(".alarm-card:not(.kind-fault).drill")
    card.wait_for()
    assert "DRILL" in card.locator(".badge.kind").inner_text()
    classes = page.evaluate("document.body.className")
    assert "drill-active" in classes and "alarm-active" not in classes
    page.wait_for_selector(f'.office[data-office="{office}"][data-status="drill"]')
    resolve_open_alarms(stack, office)
    card.wait_for(state="detached")
    page.context.close()


def test_lockdown_controls_only_for_admins(browser: Any, stack: Stack):
    office = "eg-103"
    guard = screen(browser, stack, "guard")
    assert guard.locator(".lockdown-btn").count() == 0
    assert guard.locator(".site-lockdown").count() == 0
    guard.context.close()
    admin = screen(browser, stack, "admin")
    admin.wait_for_selector(".site-lockdown")
    button = admin.locator(f'.office[data-office="{office}"] .lockdown-btn')
    button.click()
    button.click()
    admin.wait_for_selector(f'.office[data-office="{office}"][data-status="lockdown"]')
    card = admin.locator(f'.office[data-office="{office}"]')
    relay = card.locator('.lamp[data-lamp="relay"]')
    card.locator('[data-sim="release"]').click()  # the inside release button, in lockdown
    wait_for(lambda: stack.api(f"/api/events?office={office}&type=release_blocked"),
             what="release_blocked logged")
    assert relay.get_attribute("data-on") == "false"
    lift = card.locator(".lift-btn")
    lift.click()
    lift.click()
    admin.wait_for_selector(f'.office[data-office="{office}"][data-status="online"]')
    card.locator('[data-sim="release"]').click()  # now the strike opens (relay lamp lights)
    card.locator('.lamp[data-lamp="relay"][data-on="true"]').wait_for()

    # site-wide: every office of the site at once, and lifted again
    site_on = admin.locator(".site-lockdown")
    site_on.click()
    site_on.click()
    for running in ("eg-101", "eg-102", "eg-103"):
        admin.wait_for_selector(f'.office[data-office="{running}"][data-status="lockdown"]')
    site_off = admin.locator(".site-lift")
    site_off.click()
    site_off.click()
    for running in ("eg-101", "eg-102", "eg-103"):
        admin.wait_for_selector(f'.office[data-office="{running}"]:not([data-status="lockdown"])')
    admin.context.close()


def test_event_log_filters_and_csv_export(browser: Any, stack: Stack):
    page = screen(browser, stack, "guard")
    for office in ("eg-101", "eg-102"):
        publish_sim(stack, office, "door", "open")
        publish_sim(stack, office, "door", "close")
    wait_for(lambda: len(stack.api("/api/events?type=door_closed")) >= 2, what="door events")
    page.goto(stack.url + "events")
    page.select_option("select[name=office]", "eg-101")
    page.select_option("select[name=type]", "door_opened")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**/events?*office=eg-101*")
    rows = page.locator("table.events tbody tr")
    assert rows.count() >= 1
    for text in rows.all_inner_texts():
        assert "eg-101" in text and "door_opened" in text
    href = page.locator("#csv-link").get_attribute("href") or ""
    assert "office=eg-101" in href and "type=door_opened" in href
    answer = page.request.get(stack.url + href.lstrip("/"))
    assert answer.status == 200
    table = list(csv.DictReader(io.StringIO(answer.text())))
    assert table and {r["Office"] for r in table} == {"eg-101"}  # readable header
    assert {r["Event"] for r in table} == {"door_opened"}
    page.context.close()


def test_event_log_since_is_entered_in_local_time_and_sent_as_utc(browser: Any, stack: Stack):
    page = screen(browser, stack, "guard", timezone_id="Europe/Berlin")
    page.goto(stack.url + "events")
    page.fill("#since-local", "2099-01-01T01:00:00")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**since=2099*")
    assert "since=2099-01-01T00%3A00%3A00.000Z" in page.url  # 01:00 in Berlin is 00:00 UTC
    assert page.locator("table.events tbody tr").count() == 0
    assert page.input_value("#since-local").startswith("2099-01-01T01:00")  # shown as typed
    page.fill("#since-local", "2000-01-01T00:00:00")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**since=1999*")
    assert page.locator("table.events tbody tr").count() > 0
    page.context.close()


def test_event_log_explains_a_bad_filter(browser: Any, stack: Stack):
    page = screen(browser, stack, "guard")
    answer = page.goto(stack.url + "events?since=tomorrow&type=explosion")
    assert answer is not None and answer.status == 200
    assert "since: 'tomorrow' is not a date and time" in page.locator(".flash.error").inner_text()
    page.context.close()


def test_event_log_shows_new_events_live(browser: Any, stack: Stack):
    page = screen(browser, stack, "guard")
    page.goto(stack.url + "events?office=eg-103")
    page.wait_for_selector("#live.on")
    publish_sim(stack, "eg-103", "door", "open")
    page.locator('table.events tbody tr.fresh:has-text("door_opened")').wait_for()
    publish_sim(stack, "eg-103", "door", "close")
    page.locator('table.events tbody tr:has-text("door_closed")').wait_for()
    page.context.close()


def test_usable_at_tablet_width(browser: Any, stack: Stack):
    page = screen(browser, stack, "admin", viewport={"width": 768, "height": 1024})
    for width, height in ((768, 1024), (1024, 768), (600, 960)):  # portrait, landscape, small
        page.set_viewport_size({"width": width, "height": height})
        overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"horizontal scrolling at {width} px"
        target = page.locator(".office .drill-btn:visible").first.bounding_box()
        assert target is not None and target["height"] >= 36  # touch-sized
    page.context.close()


def test_demo_endpoints_need_csrf_and_valid_input(browser: Any, stack: Stack):
    page = screen(browser, stack, "guard")
    no_token = page.request.post(stack.url + "demo/sim/eg-101/panic", data={"value": "press"})
    assert no_token.status == 403
    token = page.locator("#page").get_attribute("data-csrf") or ""
    bad = page.request.post(stack.url + "demo/sim/eg-101/siren", data={"value": "press"},
                            headers={"X-CSRF-Token": token})
    assert bad.status == 400 and "unknown simulated input" in bad.json()["error"]
    outputs = page.request.get(stack.url + "demo/sim/outputs").json()
    assert set(outputs) == {"eg-101", "eg-102", "eg-103"}  # eg-104 never ran
    page.context.close()


def test_pages_need_a_login(stack: Stack, tmp_path: Path):
    import urllib.error
    import urllib.request

    for path in ("", "events", "demo/sim/outputs"):
        req = urllib.request.Request(stack.url + path)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert "/login" in resp.url  # redirected to the login page
        except urllib.error.HTTPError as exc:
            assert exc.code == 401


def test_unacknowledged_alarm_is_marked_escalated(browser: Any, stack: Stack):
    office = "eg-102"
    page = screen(browser, stack, "guard")
    publish_sim(stack, office, "panic", "press")
    publish_sim(stack, office, "panic", "release")
    card = page.locator('.alarm-card[data-kind="panic"]:has-text("Beratung 102")')
    card.wait_for()
    page.locator('.alarm-card[data-kind="panic"].escalated:has-text("Beratung 102")'
                 ' .badge.escalated').wait_for()
    assert "ESCALATED" in card.inner_text()
    resolve_open_alarms(stack, office)
    card.wait_for(state="detached")
    page.context.close()


def test_missing_stale_offline_and_an_ack_the_office_cannot_confirm(browser: Any,
                                                                    stack: Stack):
    page = screen(browser, stack, "guard")
    wait_for(lambda: page.evaluate("document.body.dataset.audio") == "enabled", what="audio")
    page.wait_for_selector('.office[data-office="eg-104"][data-status="missing"]')
    publish_sim(stack, "eg-101", "panic", "press")
    publish_sim(stack, "eg-101", "panic", "release")
    card = page.locator('.alarm-card:not(.kind-fault):has-text("Beratung 101")')
    card.wait_for()
    wait_for(lambda: page.evaluate("document.body.dataset.sound") == "playing", what="tone")
    # two hung controllers (no heartbeats, TCP still open): eg-101 with its alarm, and eg-103
    hung = [stack.procs[1], stack.procs[3]]  # procs[0] is the guard; eg-101..eg-103 follow
    for proc in hung:
        proc.send_signal(signal.SIGSTOP)
    try:
        card.locator(".ack-btn").click()
        page.wait_for_selector('.office[data-office="eg-103"][data-status="stale"]')
        # the station took the alarm, the office cannot confirm: the tone stops, the card
        # stays red and says so
        card.locator(".alarm-cmd.failed").wait_for()
        assert "NOT confirmed" in card.locator(".alarm-status").inner_text()
        # the panic tone stops; the hung controllers are fault alarms with their own tone
        assert page.evaluate("document.body.dataset.tone") in ("none", "fault")
        assert "alarm-active" in page.evaluate("document.body.className")
        # the broker gives up after 1.5 x keepalive and publishes the office's last will
        page.wait_for_selector('.office[data-office="eg-103"][data-status="offline"]',
                               timeout=30_000)
        # eg-101 keeps its ALARM colour; being offline is shown as a note (its own timer)
        page.locator('.office[data-office="eg-101"] .notes:has-text("offline")').wait_for()
        assert page.locator('.office[data-office="eg-101"]').get_attribute("data-status") == "alarm"
    finally:
        for proc in hung:
            proc.send_signal(signal.SIGCONT)
    for office in ("eg-101", "eg-103"):
        page.wait_for_selector(f'.office[data-office="{office}"]:not([data-status="offline"])',
                               timeout=30_000)
    resolve_open_alarms(stack, "eg-101")
    page.mouse.move(5, 5)  # the queue holds still while the pointer is over it
    card.wait_for(state="detached")
    page.context.close()


def test_gap_in_an_offices_sequence_shows_events_may_be_missing(browser: Any, stack: Stack):
    """Failure injection: events 2..4 of eg-104 never arrive (eg-104 has no daemon to resend)."""
    page = screen(browser, stack, "guard")
    topic = Topics("officesec").event("eg-104")
    for seq in (1, 5):
        event = Event(id=uuid.uuid4(), office="eg-104", seq=seq, ts=utcnow(), type="door_closed")
        publish_raw(stack, topic, event.to_bytes())
    card = page.locator('.office[data-office="eg-104"]')
    card.locator('.gap-note:has-text("events may be missing")').wait_for()
    assert card.get_attribute("class") is not None and "gap" in (card.get_attribute("class") or "")
    page.context.close()


def test_screen_says_it_is_not_live_and_reconnects_after_a_guard_restart(browser: Any,
                                                                         stack: Stack):
    page = screen(browser, stack, "guard")
    page.evaluate("window.__sameDocument = true")
    stack.stop_guard()
    try:
        page.wait_for_selector("#live.off")
        # after its 4 s grace the screen warns loudly that it is not live
        page.locator('#live-banner:has-text("NOT live")').wait_for()
    finally:
        stack.start_guard()
    page.wait_for_selector("#live.on")
    page.wait_for_selector('body[data-health="ok"]', state="attached")
    # the reconnected stream is live: a new alarm appears without a reload
    publish_sim(stack, "eg-101", "panic", "press")
    page.locator('.alarm-card:not(.kind-fault):has-text("Beratung 101")').wait_for()
    assert page.evaluate("window.__sameDocument") is True
    resolve_open_alarms(stack, "eg-101")
    page.locator(".alarm-card:not(.kind-fault)").wait_for(state="detached")
    publish_sim(stack, "eg-101", "panic", "release")
    page.context.close()
