"""Helpers for the console browser tests (this module holds no tests)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.test_dashboard_support import (
    UI_TIMEOUT_MS,
    Stack,
    launch,
    login,
    publish_sim,
    wait_for,
)


def post_json(stack: Stack, path: str, body: dict[str, Any] | None = None,
              user: str = "admin") -> tuple[int, Any]:
    """POST with HTTP Basic (no CSRF needed); returns (status, parsed body)."""
    token = b64encode(f"{user}:{stack.password(user)}".encode()).decode()
    data = json.dumps(body or {}).encode()
    req = urllib.request.Request(stack.url + path.lstrip("/"), data=data, method="POST",
                                 headers={"Authorization": f"Basic {token}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def panic(stack: Stack, office: str) -> None:
    """A press and release of the office's (simulated) panic button."""
    publish_sim(stack, office, "panic", "press")
    publish_sim(stack, office, "panic", "release")


def start_drill(stack: Stack, office: str) -> None:
    status, body = post_json(stack, f"/api/offices/{office}/test")
    assert status == 200, body


def open_ids(stack: Stack) -> list[str]:
    return [a["alarm_id"] for a in stack.api("/api/alarms?open=true")]


def close_all(stack: Stack) -> None:
    """Acknowledge and resolve every open panic/drill alarm; acknowledge faults."""
    for alarm in stack.api("/api/alarms?open=true"):
        aid = alarm["alarm_id"]
        if alarm["state"] == "active":
            post_json(stack, f"/api/alarms/{aid}/ack")
        if alarm.get("kind", "panic") != "fault":
            post_json(stack, f"/api/alarms/{aid}/resolve", {"outcome": "handled"})
    wait_for(lambda: not [a for a in stack.api("/api/alarms?open=true")
                          if a.get("kind", "panic") != "fault"], 20, "alarms closed")


def rows_in_view(page: Any) -> int:
    """Open alarms whose Acknowledge button is wholly inside the viewport (no scrolling)."""
    return int(page.evaluate("""() => [...document.querySelectorAll('.qrow .ack-btn')]
        .filter(b => { const r = b.getBoundingClientRect();
                       return r.height > 0 && r.top >= 0 && r.bottom <= innerHeight
                              && r.left >= 0 && r.right <= innerWidth; }).length"""))


def ack_button_box(page: Any, row_selector: str) -> dict[str, float]:
    box = page.locator(row_selector).locator(".ack-btn").bounding_box()
    assert box is not None, f"no Acknowledge button in {row_selector}"
    return dict(box)


@dataclass
class Console:
    """One Chromium for a test module; each screen is its own context (its own PC)."""

    stack: Stack
    browser: Any
    sessions: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @classmethod
    @contextmanager
    def open(cls, stack: Stack, args: list[str] | None = None) -> Iterator[Console]:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = launch(pw) if args is None else pw.chromium.launch(
                executable_path="/usr/bin/chromium", args=args)
            try:
                yield cls(stack, browser)
            finally:
                browser.close()

    def screen(self, user: str, path: str = "", **ctx: Any) -> Any:
        """A logged-in console page (the first per user logs in through the form)."""
        context = self.browser.new_context(storage_state=self.sessions.get(user), **ctx)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        page.set_default_timeout(UI_TIMEOUT_MS)
        if user in self.sessions:
            page.goto(self.stack.url + path)
        else:
            login(page, self.stack.url, user, self.stack.password(user))
            self.sessions[user] = context.storage_state()
            if path:
                page.goto(self.stack.url + path)
        if not path:
            page.wait_for_selector("#live.on")
            page.wait_for_selector(".office[data-office]")
        return page

    def assert_no_js_errors(self) -> None:
        errors, self.errors[:] = list(self.errors), []
        assert errors == []


def axe_violations(page: Any) -> list[tuple[str, Any, str]]:
    """WCAG 2.0/2.1 A and AA violations, one entry per offending node."""
    from axe_playwright_python.sync_playwright import Axe

    page.wait_for_timeout(300)  # fonts and styles settled
    result = Axe().run(page, options={
        "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
        "resultTypes": ["violations"]})
    return [(v["id"], n["target"], n.get("failureSummary", "")[:200])
            for v in result.response["violations"] for n in v["nodes"]]
