"""Helpers for the dashboard and demo browser tests (this module holds no tests).

Playwright drives Debian's Chromium (never `playwright install`). A guard
station stack is real processes: a private Mosquitto, `officesec guard` and
`officesec run` offices with mock pins, from the demo's config generator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.demo.layout import DemoLayout, write_demo_configs
from controller.protocol.messages import Topics
from tests.broker import Mosquitto, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]
UI_TIMEOUT_MS = 15_000  # generous: two cores shared with the whole suite


def need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout} s")


def login(page: Any, base_url: str, user: str, password: str) -> None:
    page.goto(base_url + "login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(base_url, timeout=UI_TIMEOUT_MS)


def http_json(url: str, user: str, password: str, method: str = "GET",
              body: Any = None) -> Any:
    token = b64encode(f"{user}:{password}".encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, method=method, data=data,
                                 headers={"Authorization": f"Basic {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "healthz", timeout=1) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Stack:
    """A running guard station with offices; `url` ends with a slash."""

    broker: Mosquitto
    layout: DemoLayout
    url: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    layout_prefix: str = "officesec"  # mqtt.prefix of the generated configs
    env: dict[str, str] = field(default_factory=dict)

    def password(self, name: str) -> str:
        return next(u.password for u in self.layout.users if u.name == name)

    def api(self, path: str, user: str = "admin", method: str = "GET", body: Any = None) -> Any:
        return http_json(self.url + path.lstrip("/"), user, self.password(user), method, body)

    def stop_guard(self) -> None:
        """Stop the guard station (SIGTERM) and wait until it is gone."""
        self.procs[0].terminate()
        self.procs[0].wait(10)

    def start_guard(self) -> None:
        """Start the stopped guard station again with the same config; wait until ready."""
        log = self.layout.root / "logs" / "guard.log"
        with log.open("ab") as out:
            self.procs[0] = subprocess.Popen(self.procs[0].args, stdout=out,
                                             stderr=subprocess.STDOUT, env=self.env)
        wait_for(lambda: healthy(self.url), 30, "guard station back")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.broker.kill()


def start_stack(root: Path, offices: int, *, running: int | None = None,
                escalate_after_s: float = 30) -> Stack:
    """Mosquitto + `officesec guard` (demo mode) + the first `running` of `offices` offices.

    Offices in the roster that are not started stay "missing" on the dashboard.
    """
    broker = Mosquitto(root / "mq").start()
    port = free_port()
    layout = write_demo_configs(root, offices=offices, guard_port=port, mqtt_host=broker.host,
                                mqtt_port=broker.port, protocol="5",
                                escalate_after_s=escalate_after_s)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFICESEC_")}
    stack = Stack(broker, layout, f"http://127.0.0.1:{port}/", env=env)
    logs = root / "logs"
    logs.mkdir()
    started = layout.offices[:offices if running is None else running]

    def spawn(name: str, argv: list[str]) -> None:
        with (logs / f"{name}.log").open("wb") as log:
            stack.procs.append(subprocess.Popen([sys.executable, "-m", "controller", *argv],
                                                stdout=log, stderr=subprocess.STDOUT, env=env))

    # the guard first, so that its broker session exists before the offices speak
    spawn("guard", ["guard", "--config", str(layout.guard_config)])
    try:
        wait_for(lambda: healthy(stack.url) and stack.api("/healthz")["broker"]["connected"],
                 30, "guard station connected")
    except AssertionError:
        stack.stop()
        raise AssertionError((logs / "guard.log").read_text(errors="replace")) from None
    for office in started:
        spawn(office.id, ["run", "--config", str(office.config)])
    try:
        wait_for(lambda: healthy(stack.url), 30, "guard station up")
        ids = {o.id for o in started}
        wait_for(lambda: all(o["online"] and o["state"] for o in stack.api("/api/offices")
                             if o["id"] in ids), 30, "every started office online")
    except AssertionError:
        stack.stop()
        text = "\n".join(p.read_text(errors="replace")[-2000:] for p in logs.iterdir())
        raise AssertionError(f"stack did not come up:\n{text}") from None
    return stack


def publish_raw(stack: Stack, topic: str, payload: bytes) -> None:
    """Publish straight on the test broker (QoS 1), as a device or an intruder would."""
    import paho.mqtt.publish as publish

    publish.single(topic, payload, qos=1, hostname=stack.broker.host, port=stack.broker.port)


def publish_sim(stack: Stack, office: str, name: str, value: str) -> None:
    """Press a simulated input straight on the broker (what the office's wiring would do)."""
    publish_raw(stack, Topics(stack.layout_prefix).sim_input(office, name), value.encode())
