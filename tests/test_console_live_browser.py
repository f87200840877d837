"""Never silently deaf, never silently blind (#13 item 6), in Debian's Chromium.

Its own small stack: these tests kill the guard station and start browsers without the
kiosk's autoplay flag.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.console_support import Console, axe_violations, close_all, panic
from tests.test_dashboard_support import CHROMIUM_ARGS, Stack, healthy, start_stack, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DEFAULT_POLICY_ARGS = [a for a in CHROMIUM_ARGS if not a.startswith("--autoplay-policy")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from tests.test_dashboard_support import need_chromium

    need_chromium()
    running = start_stack(tmp_path_factory.mktemp("live"), offices=2, escalate_after_s=600)
    try:
        yield running
    finally:
        running.stop()


def test_sound_blocked_banner_under_the_default_autoplay_policy(stack: Stack):
    with Console.open(stack, DEFAULT_POLICY_ARGS) as console:
        # the login click is a user gesture Chromium carries over to the console; a kiosk
        # that reloads or starts with a stored session has none
        console.screen("guard").context.close()
        page = console.screen("guard")
        banner = page.locator("#sound-banner")
        assert banner.is_visible()  # before any alarm: the guard can fix it now
        assert page.evaluate("document.body.dataset.audio") == "blocked"
        height = banner.bounding_box()
        assert height is not None and height["height"] >= 48  # large, not a footnote
        panic(stack, "eg-101")
        page.locator('.qrow:has-text("Beratung 101")').wait_for()
        wait_for(lambda: page.evaluate("document.body.dataset.sound") == "blocked", 5,
                 "tone wanted but blocked")
        assert axe_violations(page) == []  # the banner itself is readable
        banner.locator(".enable-sound").click()  # the one gesture
        wait_for(lambda: page.evaluate("document.body.dataset.audio") == "enabled", 5, "audio")
        wait_for(lambda: page.evaluate("document.body.dataset.sound") == "playing", 5, "tone")
        page.mouse.move(5, 5)
        banner.wait_for(state="hidden")
        close_all(stack)
        wait_for(lambda: page.evaluate("document.body.dataset.sound") == "off", 10, "quiet")
        page.locator(".test-sound").click()  # the speaker check at shift start
        wait_for(lambda: page.evaluate("document.body.dataset.sound") == "test", 5, "test tone")
        wait_for(lambda: page.evaluate("document.body.dataset.sound") == "off", 5, "test ends")
        console.assert_no_js_errors()


def test_with_the_kiosk_flag_no_sound_banner(stack: Stack):
    with Console.open(stack) as console:
        page = console.screen("guard")
        assert page.evaluate("document.body.dataset.audio") == "enabled"
        page.locator("#sound-banner").wait_for(state="hidden")


def test_killed_station_shows_not_live_within_5_s_and_recovers(stack: Stack):
    with Console.open(stack) as console:
        page = console.screen("guard")
        page.evaluate("window.__sameDocument = true")
        stack.procs[0].kill()  # a crash, not a clean stop
        stack.procs[0].wait(10)
        killed = time.monotonic()
        try:
            page.locator('#live-banner:has-text("NOT live")').wait_for(timeout=6000)
            took = time.monotonic() - killed
            assert page.evaluate("document.body.dataset.live") == "off"
            assert axe_violations(page) == []
        finally:
            stack.start_guard()
        print(f"\nstation killed -> 'not live' shown after {took:.2f} s")
        assert took < 5
        page.locator("#live-banner").wait_for(state="hidden", timeout=30_000)
        page.wait_for_selector("#live.on")
        panic(stack, "eg-102")  # live again: a new alarm appears without a reload
        page.locator('.qrow:has-text("Beratung 102")').wait_for()
        assert page.evaluate("window.__sameDocument") is True
        close_all(stack)
        console.assert_no_js_errors()


def test_a_silent_network_drop_shows_not_live_within_5_s(stack: Stack):
    wait_for(lambda: healthy(stack.url), 30, "station up")
    with Console.open(stack) as console:
        page = console.screen("guard")
        page.context.set_offline(True)  # no RST, no error: the stream just goes quiet
        dropped = time.monotonic()
        page.locator('#live-banner:has-text("NOT live")').wait_for(timeout=6000)
        took = time.monotonic() - dropped
        print(f"\nnetwork dropped -> 'not live' shown after {took:.2f} s")
        assert took < 5
        page.context.set_offline(False)
        page.locator("#live-banner").wait_for(state="hidden", timeout=30_000)
        console.assert_no_js_errors()


def test_a_console_that_must_log_in_again_during_an_alarm_says_so_loudly(stack: Stack):
    wait_for(lambda: healthy(stack.url), 30, "station up")
    with Console.open(stack) as console:
        page = console.screen("guard")
        panic(stack, "eg-101")
        page.locator('.qrow:has-text("Beratung 101")').wait_for()
        page.context.clear_cookies()  # the session is gone (expired, or ended elsewhere)
        stack.stop_guard()  # the stream must reconnect, and can only do so logged in
        stack.start_guard()
        banner = page.locator("#session-banner")
        banner.wait_for(timeout=15_000)
        assert "logged out" in banner.inner_text()
        assert "/login" not in page.url  # no calm login page in place of the alarm
        assert page.locator('.qrow:has-text("Beratung 101")').is_visible()
        box = banner.bounding_box()
        assert box is not None and box["height"] >= 60
        close_all(stack)
        console.assert_no_js_errors()
