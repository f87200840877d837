"""The alarm console under stress (#13), in Debian's Chromium against a real station.

One stack per module: Mosquitto, `officesec guard`, twelve `officesec run` with mock
pins. Every test raises its own alarms and closes every open alarm when it ends.
"""

from __future__ import annotations

import csv
import io
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.console_support import (
    Console,
    ack_button_box,
    axe_violations,
    close_all,
    open_ids,
    panic,
    post_json,
    rows_in_view,
    start_drill,
)
from tests.test_dashboard_support import Stack, publish_sim, start_stack, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from tests.test_dashboard_support import need_chromium

    need_chromium()
    running = start_stack(tmp_path_factory.mktemp("console"), offices=12, escalate_after_s=600)
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


def test_eight_alarms_fit_at_1920_and_four_at_1366_oldest_first(stack: Stack, console: Console):
    offices = [f"eg-1{n:02d}" for n in range(1, 10)]
    for office in offices:
        panic(stack, office)
        time.sleep(0.15)  # distinct raise times
    page = console.screen("guard", viewport={"width": 1920, "height": 1080})
    wait_for(lambda: page.locator(".qrow").count() == len(offices), what="nine rows")
    # oldest first: the order the presses happened in
    assert page.eval_on_selector_all(".qrow", "rs => rs.map(r => r._alarm.office)") == offices
    big = rows_in_view(page)
    page.set_viewport_size({"width": 1366, "height": 768})
    small = rows_in_view(page)
    print(f"\nalarms with Acknowledge in view: 1920x1080 -> {big}, 1366x768 -> {small}")
    assert big >= 8 and small >= 4
    head = page.locator("#queue-head").inner_text()
    assert "9 open" in head and "9 unacknowledged" in head and "oldest" in head
    page.context.close()


def test_new_alarm_under_a_resting_pointer_moves_nothing_and_the_click_hits(stack: Stack,
                                                                             console: Console):
    page = console.screen("guard")
    panic(stack, "eg-101")
    start_drill(stack, "eg-102")
    drill = '.qrow[data-kind="drill"]'
    page.locator(drill).wait_for()
    page.locator('.qrow[data-kind="panic"]').wait_for()
    box = ack_button_box(page, drill)
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)  # the guard aims at the drill's Acknowledge ... and rests there
    panic(stack, "eg-103")  # a new panic sorts above the drill
    page.locator("#queue-head .c-new:not(.invisible)").wait_for()
    assert "1 new" in page.locator("#queue-head .c-new").inner_text()
    assert ack_button_box(page, drill) == box  # nothing moved under the pointer
    page.mouse.click(x, y)
    wait_for(lambda: stack_state(stack, "eg-102") == "acknowledged", what="drill acknowledged")
    time.sleep(1.0)
    assert stack_state(stack, "eg-101") == "active" and stack_state(stack, "eg-103") == "active"
    page.mouse.move(5, 5)  # pointer off the queue: the new alarm takes its place
    page.locator('.qrow:has-text("Beratung 103")').wait_for()
    assert page.locator("#queue-head .c-new.invisible").count() == 1
    page.context.close()


def stack_state(stack: Stack, office: str) -> str | None:
    for alarm in stack.api("/api/alarms?open=true"):
        if alarm["office"] == office:
            return str(alarm["state"])
    return None


@pytest.mark.parametrize("gap_s", [0.2, 0.5, 0.8, "triple"])
def test_a_double_click_acknowledges_once_never_resolves_never_the_next(stack: Stack,
                                                                        console: Console,
                                                                        gap_s: float | str):
    page = console.screen("guard")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    pairs = {0.2: ("101", "102"), 0.5: ("103", "104"), 0.8: ("105", "106")}
    pair = pairs.get(gap_s, ("107", "108"))
    aimed, other = (f"eg-{n}" for n in pair)
    panic(stack, aimed)
    time.sleep(0.2)
    panic(stack, other)
    first = f'.qrow[data-state="active"]:has-text("Beratung {pair[0]}")'
    page.locator(first).wait_for()
    page.locator(f'.qrow[data-state="active"]:has-text("Beratung {pair[1]}")').wait_for()
    box = ack_button_box(page, first)
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    if gap_s == "triple":
        page.mouse.click(x, y, click_count=3)
    else:
        page.mouse.click(x, y)
        time.sleep(float(gap_s))
        page.mouse.click(x, y)
    wait_for(lambda: stack_state(stack, aimed) == "acknowledged", what="first acknowledged")
    page.wait_for_timeout(1500)  # (a Playwright call: it delivers the request events)
    assert len(posts) == 1 and posts[0].endswith("/ack"), posts  # one action, one request
    assert stack_state(stack, aimed) == "acknowledged"  # not resolved
    assert stack_state(stack, other) == "active"  # the next alarm untouched
    assert page.locator("#resolve-dialog[open]").count() == 0
    page.context.close()


def test_keyboard_enter_acknowledges_the_focused_alarm_and_focus_follows_the_queue(
        stack: Stack, console: Console):
    page = console.screen("guard")
    panic(stack, "eg-106")
    time.sleep(0.2)
    panic(stack, "eg-107")
    page.locator('.qrow:has-text("Beratung 107")').wait_for()
    page.focus('.qrow:has-text("Beratung 106")')
    tabs = 0
    while tabs < 8:  # Tab walks the row's buttons, then reaches the next row
        page.keyboard.press("Tab")
        tabs += 1
        if page.evaluate("document.activeElement.classList.contains('qrow')"):
            break
    assert "Beratung 107" in page.evaluate("document.activeElement.innerText")
    page.keyboard.press("Enter")
    wait_for(lambda: stack_state(stack, "eg-107") == "acknowledged", what="focused one acked")
    assert stack_state(stack, "eg-106") == "active"
    page.context.close()


def test_a_screen_reader_hears_a_new_alarm_once(stack: Stack, console: Console):
    page = console.screen("guard")
    page.evaluate("""() => {
        window.__said = [];
        const box = document.getElementById('announce');
        new MutationObserver(() => window.__said.push(box.textContent))
          .observe(box, {childList: true, characterData: true, subtree: true});
    }""")
    panic(stack, "eg-108")
    page.locator('.qrow:has-text("Beratung 108")').wait_for()
    time.sleep(3)  # three ticks of the timers
    said = page.evaluate("window.__said")
    assert len(said) == 1 and "Beratung 108" in said[0], said
    # nothing that ticks is inside a live region
    live = "[aria-live] .ticker, [role=alert] .ticker, [role=status] .ticker"
    assert page.locator(live).count() == 0
    page.context.close()


def test_resolve_needs_the_dialog_and_an_outcome(stack: Stack, console: Console):
    page = console.screen("guard")
    panic(stack, "eg-109")
    row = page.locator('.qrow:has-text("Beratung 109")')
    row.locator(".ack-btn").click()
    row.locator(".resolve-btn:visible").wait_for()
    ack_box = row.locator(".q-ack").bounding_box()
    resolve_box = row.locator(".resolve-btn").bounding_box()
    assert ack_box and resolve_box and resolve_box["x"] > ack_box["x"] + ack_box["width"]
    time.sleep(1.1)  # past the click guard
    row.locator(".resolve-btn").click()
    dialog = page.locator("#resolve-dialog[open]")
    dialog.wait_for()
    assert dialog.locator(".resolve-submit").is_disabled()  # no outcome yet
    dialog.locator('label[for="outcome-false_alarm"]').click()
    dialog.locator("textarea[name=note]").fill("pressed by mistake while cleaning")
    dialog.locator(".resolve-submit").click()
    dialog.wait_for(state="detached")
    assert row.get_attribute("data-state") in ("closed", "acknowledged")  # kept in place ...
    page.mouse.move(5, 5)  # ... until the pointer leaves the queue
    row.wait_for(state="detached")
    closed = [a for a in stack.api("/api/alarms?open=false") if a["office"] == "eg-109"]
    assert closed and closed[0]["outcome"] == "false_alarm"
    assert closed[0]["note"] == "pressed by mistake while cleaning"
    page.context.close()


def test_two_screens_acknowledging_one_alarm_both_say_acknowledged_by(stack: Stack,
                                                                      console: Console):
    one = console.screen("guard")
    two = console.screen("admin")
    panic(stack, "eg-110")
    rows = [p.locator('.qrow:has-text("Beratung 110")') for p in (one, two)]
    for row in rows:
        row.wait_for()
    # both guards press at the same moment (a click each, without waiting for the first)
    for row in rows:
        row.locator(".ack-btn").evaluate("b => b.click()")
    for row in rows:
        row.locator('.alarm-status:has-text("acknowledged by")').wait_for()
        assert row.locator(".alarm-cmd.failed").count() == 0
    # "I am going too" from the second screen shows on the first
    time.sleep(1.1)
    rows[1].locator(".going-btn").click()
    rows[0].locator('.alarm-cmd:has-text("admin")').wait_for()
    for page in (one, two):
        page.context.close()


def measure_click_to_ack(stack: Stack, page: Any, office: str) -> float:
    """Seconds from the click to the row showing the acknowledgement (office confirmed)."""
    panic(stack, office)
    row = page.locator(f'.qrow:has-text("Beratung {office[-3:]}")')
    row.wait_for()
    started = time.monotonic()
    row.locator(".ack-btn").click()
    row.locator(".acked-note:visible").wait_for()
    took = time.monotonic() - started
    page.mouse.move(5, 5)  # off the queue, so that the next alarm is not held back
    return took


def test_click_to_acknowledged_latency(stack: Stack, console: Console):
    page = console.screen("guard")
    took = [measure_click_to_ack(stack, page, office) for office in ("eg-111", "eg-112")]
    print(f"\nclick -> acknowledged shown: {', '.join(f'{t * 1000:.0f} ms' for t in took)}")
    assert max(took) < 5  # the command timeout; typically well under a second
    assert open_ids(stack)
    page.context.close()


def test_no_wcag_aa_violations_on_the_console_its_dialogs_and_pages(stack: Stack,
                                                                    console: Console):
    page = console.screen("admin")
    panic(stack, "eg-101")
    time.sleep(0.2)
    panic(stack, "eg-102")
    start_drill(stack, "eg-103")
    page.locator('.qrow:has-text("Beratung 103")').wait_for()
    acked = page.locator('.qrow:has-text("Beratung 102")')
    acked.locator(".ack-btn").click()
    acked.locator(".acked-note:visible").wait_for()
    page.mouse.move(5, 5)
    found = {"console": axe_violations(page)}
    time.sleep(1.1)
    acked.locator(".resolve-btn").click()
    page.locator("#resolve-dialog[open]").wait_for()
    found["resolve dialog"] = axe_violations(page)
    page.keyboard.press("Escape")
    time.sleep(1.1)
    acked.locator(".details-btn").click()
    page.locator("#details-dialog[open]").wait_for()
    found["details dialog"] = axe_violations(page)
    page.keyboard.press("Escape")
    for path in ("history", "events", f"alarms/{open_ids(stack)[0]}"):
        page.goto(stack.url + path)
        page.wait_for_selector("#live.on")
        found[path] = axe_violations(page)
    login_page = console.browser.new_page()
    login_page.goto(stack.url + "login")
    found["login"] = axe_violations(login_page)
    login_page.close()
    assert {k: v for k, v in found.items() if v} == {}
    page.context.close()


def test_fault_alarm_amber_quieter_cleared_please_acknowledge(stack: Stack, console: Console):
    page = console.screen("guard")
    office_proc = stack.procs[11]  # eg-111 (procs[0] is the guard)
    office_proc.send_signal(signal.SIGSTOP)  # a hung controller: no more heartbeats
    try:
        row = page.locator('.qrow[data-kind="fault"]:has-text("Beratung 111")')
        row.wait_for(timeout=30_000)
        assert "FAULT" in row.locator(".badge.kind").inner_text()
        assert row.evaluate("r => getComputedStyle(r).backgroundColor") == "rgb(255, 176, 32)"
        wait_for(lambda: page.evaluate("document.body.dataset.tone") == "fault", 5, "fault tone")
        assert "escalates in" in row.locator(".alarm-cmd.escalation").inner_text()
        row.locator(".details-btn").click()
        dialog = page.locator("#details-dialog[open]")
        assert "Send someone to check" in dialog.locator(".what-to-do").inner_text()
        page.keyboard.press("Escape")
    finally:
        office_proc.send_signal(signal.SIGCONT)
    row.locator('.alarm-status:has-text("please acknowledge")').wait_for(timeout=30_000)
    assert page.evaluate("document.body.dataset.tone") == "none"  # cleared: no more tone
    assert row.locator(".resolve-btn:visible").count() == 0  # faults are not resolved
    time.sleep(1.1)
    row.locator(".ack-btn").click()
    page.mouse.move(5, 5)
    row.wait_for(state="detached")  # acknowledged and cleared: closed
    page.context.close()


def test_history_search_csv_and_the_incident_timeline(stack: Stack, console: Console):
    panic(stack, "eg-112")
    wait_for(lambda: stack_state(stack, "eg-112") == "active", what="alarm")
    aid = next(a["alarm_id"] for a in stack.api("/api/alarms?open=true") if a["office"] == "eg-112")
    post_json(stack, f"/api/alarms/{aid}/ack")
    post_json(stack, f"/api/alarms/{aid}/respond", user="guard")
    post_json(stack, f"/api/alarms/{aid}/resolve", {"outcome": "police", "note": "Polizei kam"})
    page = console.screen("guard", "history")
    page.fill("#h-office", "eg-112")
    page.select_option("#h-kind", "panic")
    page.click("#history-filters button[type=submit]")
    row = page.locator(f'#history tbody tr[data-alarm-id="{aid}"]')
    row.wait_for()
    assert "Police called" in row.inner_text() and "Polizei kam" in row.inner_text()
    href = page.locator("#history-csv").get_attribute("href") or ""
    assert "office=eg-112" in href and "kind=panic" in href
    table = list(csv.DictReader(io.StringIO(page.request.get(stack.url + href.lstrip("/")).text())))
    # the console's export is for people: readable column names, the values stay codes
    mine = [r for r in table if r["Alarm ID"] == aid]
    assert mine and mine[0]["Outcome"] == "police" and {r["Office"] for r in table} == {"eg-112"}
    row.locator("a").click()
    page.wait_for_selector('body[data-loaded="true"]')
    text = page.locator("#incident").inner_text()
    for expected in ("panic button pressed", "acknowledged", "on the way", "resolved",
                     "Police called", "Polizei kam"):
        assert expected in text, expected
    page.context.close()


def test_resolved_while_the_button_is_still_held_says_no_new_press_can_be_detected(
        stack: Stack, console: Console):
    """Issue 16.10: the line stays open after the guard resolved: the card says so in words."""
    page = console.screen("guard")
    office = "eg-110"
    publish_sim(stack, office, "panic", "press")  # pressed and held (or a cut wire)
    try:
        wait_for(lambda: any(a["office"] == office for a in stack.api("/api/alarms?open=true")),
                 15, "the alarm")
        close_all(stack)
        card = page.locator(f'[data-office="{office}"]')
        card.locator(':text("a new press cannot be detected here")').wait_for(timeout=15_000)
    finally:
        publish_sim(stack, office, "panic", "release")
    card.locator(':text("a new press cannot be detected here")').wait_for(state="detached",
                                                                          timeout=15_000)
    page.context.close()
