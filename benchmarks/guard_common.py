"""Shared parts of the guard benchmarks: a guard subprocess and a timestamping SSE reader."""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.guard_proc import USERS, GuardProc

__all__ = ["USERS", "GuardProc", "SSEReader"]


class SSEReader:
    """Reads /api/stream in a thread; every message is (perf_counter at arrival, kind, data)."""

    def __init__(self, url: str) -> None:
        self.q: queue.Queue[tuple[float, str, Any]] = queue.Queue()
        self._client = httpx.Client(auth=("alice", USERS["alice"][0]),
                                    timeout=httpx.Timeout(30, read=None))
        self._url = url
        self.opened = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        if not self.opened.wait(15):
            raise RuntimeError("SSE stream did not open")

    def _run(self) -> None:
        try:
            self._read()
        except httpx.HTTPError:
            self.opened.set()  # closed by close(), or the station went away

    def _read(self) -> None:
        with self._client.stream("GET", self._url + "/api/stream") as resp:
            self.opened.set()
            data = ""
            for line in resp.iter_lines():
                if line.startswith("data:"):
                    data += line[5:].strip()
                elif line == "" and data:
                    now = time.perf_counter()
                    msg = json.loads(data)
                    self.q.put((now, msg["kind"], msg["data"]))
                    data = ""

    def wait(self, match: Callable[[str, Any], bool], timeout: float = 10.0) -> float:
        """perf_counter when the first matching message arrived."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching SSE message")
            try:
                at, kind, data = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if match(kind, data):
                return at

    def drain(self) -> None:
        """Forget what has arrived so far."""
        while not self.q.empty():
            self.q.get_nowait()

    def close(self) -> None:
        """Stop reading."""
        self._client.close()


def cpu_pressure() -> str:
    """The kernel's CPU pressure (PSI): how often tasks waited for a CPU, last 60 s."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return "CPU pressure unknown"
    avg60 = dict(part.split("=") for part in line.split()[1:]).get("avg60", "?")
    return f"CPU pressure (PSI some avg60) {avg60} %"


RESULTS = Path(__file__).parent / "results" / "guard.md"
TITLE = ("# Guard station benchmarks\n\n"
         "Written by `benchmarks/bench_guard_*.py`; each run replaces its own section.\n")


def write_section(name: str, text: str) -> Path:
    """Replace (or add) the section between `<!-- name -->` markers in results/guard.md."""
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    body = RESULTS.read_text() if RESULTS.exists() else TITLE
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in body and end in body:
        head, _, rest = body.partition(begin)
        _, _, tail = rest.partition(end)
        body = head + block + tail
    else:
        body = body.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(body)
    return RESULTS
