"""Run a real guard station (`officesec guard`) from a generated config, and talk to it."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher

from controller.protocol.signing import keygen
from tests import pg
from tests.broker import Mosquitto, free_port, terminate
from tests.office_proc import write_toml

USERS = {"alice": ("alice-pw", "guard"), "root": ("root-pw", "admin")}


@cache
def password_hash(password: str) -> str:
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(password)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition",
             interval: float = 0.02) -> Any:
    """Poll until truthy; a predicate's AssertionError/KeyError/IndexError means "not yet"."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            value = predicate()
        except (AssertionError, KeyError, IndexError) as exc:
            value, last = None, exc
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}") from last
        time.sleep(interval)


class GuardProc:
    """One `officesec guard` subprocess with a private store, keys and port."""

    def __init__(self, workdir: Path, broker_port: int, *, signing: bool = True,
                 roster: list[str] | None = None, **overrides: dict[str, Any]) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        keys = workdir / "keys"
        if signing and not (keys / "guard-signing.key").exists():
            keygen(keys)
        self.public_key = keys / "guard-signing.pub"
        sections: dict[str, dict[str, Any]] = {
            "guard": {"id": "guard-1", "listen_port": self.port},
            "mqtt": {"host": "127.0.0.1", "port": broker_port, "keepalive_s": 2,
                     "reconnect_min_s": 0.2, "reconnect_max_s": 1},
            "store": {"path": str(workdir / "guard.sqlite3")},
            "security": {"command_timeout_s": 2, "lockout_attempts": 3, "lockout_s": 60},
            "escalation": {"after_s": 600},
            "log": {"level": "info", "json": True},
        }
        if signing:
            sections["security"]["signing_key"] = str(keys / "guard-signing.key")
        for name, keys_ in overrides.items():
            sections.setdefault(name, {}).update(keys_)
        self.own_database: str | None = None  # created here, dropped by close()
        if pg.wanted() and "url" not in sections["store"]:
            self.own_database = sections["store"]["url"] = pg.create_database()
        if "hosts" in sections["mqtt"]:  # a broker list replaces host/port
            sections["mqtt"].pop("host", None)
            sections["mqtt"].pop("port", None)
        text = write_toml(workdir / "guard.toml", sections).read_text()
        for name, (pw, role) in USERS.items():
            text += (f'\n[[users]]\nname = "{name}"\npassword_hash = "{password_hash(pw)}"\n'
                     f'role = "{role}"\n')
        for office in roster or []:
            text += f'\n[[offices]]\nid = "{office}"\nsite = "Jobcenter Test"\n'
        self.config = workdir / "guard.toml"
        self.config.write_text(text)
        self.log = workdir / "guard.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.url, auth=("alice", USERS["alice"][0]),
                                   timeout=15)
        self.admin = httpx.Client(base_url=self.url, auth=("root", USERS["root"][0]),
                                  timeout=15)

    def start(self, env: dict[str, str] | None = None, wait: bool = True) -> GuardProc:
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("OFFICESEC_")}
        child_env.update(env or {})
        logf = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "controller", "guard", "--config",
                                      str(self.config)], stdout=logf, stderr=logf,
                                     env=child_env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 15.0) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"guard exited {self.proc.returncode}:\n{self.log_text()}")
            try:
                # without login /healthz says only up or down ("ok": broker and store fine)
                return httpx.get(self.url + "/healthz", timeout=1).json()["status"] == "ok"
            except (httpx.HTTPError, ValueError, KeyError):
                return False
        wait_for(ready, timeout, "guard ready")

    def stop(self, timeout: float = 5.0) -> int:
        assert self.proc is not None
        return terminate(self.proc, timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def close(self) -> None:
        self.kill()
        self.client.close()
        self.admin.close()
        if self.own_database is not None:
            pg.drop_database(self.own_database)
            self.own_database = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def get(self, path: str, **params: Any) -> Any:
        resp = self.client.get(path, params=params)
        resp.raise_for_status()
        return resp.json()

    def alarms(self, open_only: bool = True) -> list[dict[str, Any]]:
        # open=false is the history of closed alarms; no flag lists every alarm
        return list(self.get("/api/alarms", open="true") if open_only else self.get("/api/alarms"))

    def office(self, office: str) -> dict[str, Any]:
        for item in self.get("/api/offices"):
            if item["id"] == office:
                return dict(item)
        raise AssertionError(f"office {office} not listed")


class SSEClient:
    """Reads /api/stream in a thread; messages land in a queue as (id, kind, data, t_recv)."""

    def __init__(self, url: str, auth: tuple[str, str]) -> None:
        self.messages: queue.Queue[tuple[str, str, Any, float]] = queue.Queue()
        self._client = httpx.Client(auth=auth, timeout=httpx.Timeout(30, read=None))
        self._url = url
        self.opened = threading.Event()
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.opened.wait(10):
            raise AssertionError("SSE stream did not open")

    def _run(self) -> None:
        try:
            with self._client.stream("GET", self._url + "/api/stream") as resp:
                self.status = resp.status_code
                self.opened.set()
                ident, data = "", ""
                for line in resp.iter_lines():
                    if self._stop:
                        return
                    if line.startswith("id:"):
                        ident = line[3:].strip()
                    elif line.startswith("data:"):
                        data += line[5:].strip()
                    elif line == "" and data:
                        msg = json.loads(data)
                        self.messages.put((ident, msg["kind"], msg["data"], time.monotonic()))
                        ident, data = "", ""
        except httpx.HTTPError:
            self.opened.set()

    def wait(self, predicate: Callable[[str, Any], bool], timeout: float = 10.0
             ) -> tuple[str, str, Any, float]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("SSE message not received")
            try:
                item = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if predicate(item[1], item[2]):
                return item

    def close(self) -> None:
        self._stop = True
        self._client.close()


@contextlib.contextmanager
def guard_and_broker(prefix: str, **overrides: Any) -> Iterator[tuple[GuardProc, Mosquitto]]:
    """One private broker and one guard station, torn down together (module fixtures)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    mq = Mosquitto(work / "mq").start()
    g = GuardProc(work / "guard", mq.port, **overrides).start()
    try:
        yield g, mq
    finally:
        g.close()
        mq.kill()
