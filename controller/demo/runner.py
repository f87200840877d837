"""`officesec demo`: the whole system on one machine, the production code path.

A private broker, one guard station (`officesec guard`) and N simulated offices
(`officesec run` with mock pins) run as real subprocesses from generated configs
in a temporary directory. Ctrl-C or SIGTERM stops everything within a few
seconds and removes the directory; children also die with the demo
(PR_SET_PDEATHSIG), so a killed demo leaves no orphans behind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

from controller.demo.broker import Broker, BrokerError, choose_broker, die_with_parent, free_port
from controller.demo.layout import MAX_OFFICES, DemoLayout, write_demo_configs
from controller.errors import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, ConfigError

READY_TIMEOUT_S = 30.0  # the guard imports the web stack and opens its store; slow laptops too
TERM_GRACE_S = 3.0  # children get SIGTERM, then SIGKILL: the whole stop stays under 5 s
SUPERVISE_EVERY_S = 0.5
MAX_RESTARTS = 5  # a child that keeps dying is a bug to show, not to hide behind restarts
STABLE_AFTER_S = 60.0
def _child_env() -> dict[str, str]:
    # the user's OFFICESEC_* overrides are meant for their own configs, not the demo's
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFICESEC_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Child:
    """One supervised subprocess and its log file."""

    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start (or restart) the process; output goes to its log file."""
        if self._log is None:
            self._log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            die_with_parent(self.argv), stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, env=_child_env(), start_new_session=True)

    def exited(self) -> int | None:
        """The exit code if the process has ended, else None."""
        return None if self.proc is None else self.proc.poll()

    def terminate(self) -> None:
        """Ask politely (SIGTERM); the daemons turn it into a clean stop."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def close_log(self) -> None:
        """Release the log file handle."""
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 15) -> str:
        """The last lines the process wrote, to explain a failure on screen."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Demo:
    """Owns the temporary directory, the broker and every child process."""

    def __init__(self, *, offices: int, port: int, no_mosquitto: bool,
                 say: Callable[[str], None]) -> None:
        """Only remember the options; `run` does the work."""
        self.offices = offices
        self.port = port
        self.no_mosquitto = no_mosquitto
        self.say = say
        self.stop_event = threading.Event()
        self.root: Path | None = None
        self.broker: Broker | None = None
        self.children: list[Child] = []
        self.layout: DemoLayout | None = None

    def _command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "controller", *args]

    def setup(self) -> DemoLayout:
        """Temp dir, broker, configs; raises BrokerError/ConfigError/ValueError/OSError."""
        self.root = Path(tempfile.mkdtemp(prefix="officesec-demo-"))
        (self.root / "logs").mkdir()
        self.broker = choose_broker(self.root, no_mosquitto=self.no_mosquitto)
        self.broker.start()
        self.say(f"broker:  {self.broker.description} on "
                 f"{self.broker.host}:{self.broker.port} (MQTT {self.broker.protocol})")
        guard_port = self.port or free_port()
        self.layout = write_demo_configs(
            self.root, offices=self.offices, guard_port=guard_port, mqtt_host=self.broker.host,
            mqtt_port=self.broker.port, protocol=self.broker.protocol, furnished=True)
        return self.layout

    def start_guard(self, layout: DemoLayout) -> None:
        """The guard station first: it must hold its broker session before offices speak."""
        guard = Child("guard", self._command("guard", "--config", str(layout.guard_config)),
                      layout.root / "logs" / "guard.log")
        self.children.append(guard)
        guard.start()

    def start_offices(self, layout: DemoLayout) -> None:
        """Every simulated office (after the guard is subscribed, so no event is missed)."""
        for office in layout.offices:
            child = Child(office.id, self._command("run", "--config", str(office.config)),
                          layout.root / "logs" / f"{office.id}.log")
            self.children.append(child)
            child.start()

    def wait_ready(self, url: str) -> bool:
        """Poll the guard's /healthz until it serves and is connected to the broker."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        guard = self.children[0]
        while time.monotonic() < deadline and not self.stop_event.is_set():
            if guard.exited() is not None:
                return False
            try:
                with urllib.request.urlopen(url + "healthz", timeout=1) as resp:  # noqa: S310
                    health = json.loads(resp.read())
                if health.get("status") == "ok":  # without login: up (broker and store) or not
                    return True
            except (urllib.error.URLError, OSError, ValueError, AttributeError):
                pass
            self.stop_event.wait(0.1)
        return False

    def supervise(self) -> int:
        """Restart children that die (as systemd would) until asked to stop."""
        while not self.stop_event.wait(SUPERVISE_EVERY_S):
            for child in self.children:
                code = child.exited()
                if code is None:
                    continue
                if time.monotonic() - child.started_at > STABLE_AFTER_S:
                    child.restarts = 0  # a crash after a long healthy run is not a crash loop
                if child.restarts >= MAX_RESTARTS:
                    self.say(f"{child.name} keeps failing (exit {code}); stopping the demo. "
                             f"Its last output:\n{child.log_tail()}")
                    return EXIT_FAILURE
                child.restarts += 1
                self.say(f"{child.name} exited with code {code}; restarting it "
                         f"({child.restarts}/{MAX_RESTARTS})")
                child.start()
        return EXIT_OK

    def shutdown(self) -> None:
        """Offices and guard get SIGTERM, then SIGKILL; broker stopped; temp dir removed."""
        for child in self.children:
            child.terminate()
        deadline = time.monotonic() + TERM_GRACE_S
        for child in self.children:
            while child.exited() is None and time.monotonic() < deadline:
                time.sleep(0.02)
        for child in self.children:
            child.kill()
            child.close_log()
        if self.broker is not None:
            self.broker.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def _banner(layout: DemoLayout, url: str) -> list[str]:
    lines = [
        f"dashboard: {url}",
        *(f"login:   {u.name} / {u.password}  ({u.role})" for u in layout.users),
        f"offices: {len(layout.offices)} simulated ({', '.join(o.id for o in layout.offices)});"
        " use the simulator panel on the dashboard to press their buttons",
        f"files:   {layout.root} (configs, stores, logs; removed on exit)",
        "Press Ctrl-C to stop.",
    ]
    return lines


def main(args: argparse.Namespace) -> int:
    """Run the demo until SIGINT/SIGTERM; 0 clean stop, 2 bad option, 1 failure."""
    def say(line: str) -> None:
        print(line, flush=True)

    if not 1 <= args.offices <= MAX_OFFICES:
        print(f"--offices: must be between 1 and {MAX_OFFICES} (got {args.offices})",
              file=sys.stderr)
        return EXIT_CONFIG
    if not 0 <= args.port <= 65535:
        print(f"--port: must be between 0 and 65535 (got {args.port})", file=sys.stderr)
        return EXIT_CONFIG
    demo = Demo(offices=args.offices, port=args.port, no_mosquitto=args.no_mosquitto, say=say)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        demo.stop_event.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _run(demo, say)
    finally:
        say("stopping the demo ...")
        started = time.monotonic()
        demo.shutdown()
        say(f"stopped in {time.monotonic() - started:.1f} s; temporary files removed")
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(demo: Demo, say: Callable[[str], None]) -> int:
    if port_busy(demo.port):
        print(f"--port: {demo.port} is already in use", file=sys.stderr)
        return EXIT_FAILURE
    try:
        layout = demo.setup()
    except (BrokerError, ConfigError, ValueError, OSError) as exc:
        print(f"demo: cannot start: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    demo.start_guard(layout)
    url = f"http://127.0.0.1:{layout.guard_port}/"
    if not demo.wait_ready(url):
        if demo.stop_event.is_set():
            return EXIT_OK
        say(f"the guard station did not come up. Its last output:\n{demo.children[0].log_tail()}")
        return EXIT_FAILURE
    demo.start_offices(layout)
    for line in _banner(layout, url):
        say(line)
    return demo.supervise()


def port_busy(port: int) -> bool:
    """Whether a port the user asked for is taken (0, a free one we pick later, never is)."""
    if port == 0:
        return False
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False
