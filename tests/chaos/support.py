"""Shared parts of the chaos suite: sizes, the results file, a TCP proxy that can be cut.

Sizes are read from environment variables so that CI runs a small suite and
the report command (`python -m tests.chaos.report`) a full one. Each test
appends its figures as one JSON line to $OFFICESEC_CHAOS_RESULTS (if set);
the report renders them into docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

RESULTS_ENV = "OFFICESEC_CHAOS_RESULTS"

# name: (CI default, full size)
SIZES: dict[str, tuple[float, float]] = {
    "OFFICESEC_CHAOS_OFFICES": (5, 10),
    "OFFICESEC_CHAOS_PRESSES": (200, 1000),
    "OFFICESEC_CHAOS_FAULTS": (8, 30),
    "OFFICESEC_CHAOS_PARTITION_S": (20, 600),
    "OFFICESEC_CHAOS_PAYLOADS": (10_000, 100_000),
    "OFFICESEC_CHAOS_HTTP_REQUESTS": (500, 3_000),
}


def size(name: str) -> int:
    """The configured size: env var if set, else the CI default."""
    raw = os.environ.get(name)
    if raw:
        return int(float(raw))
    return int(SIZES[name][0])


def record(test: str, **figures: Any) -> None:
    """Append this test's figures to the results file (no-op when none is configured)."""
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    line = json.dumps({"test": test, "at": time.time(), **figures}, default=str)
    with Path(path).open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def wait_until(pred: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `pred` until truthy or raise after `timeout` seconds (a correctness bound)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class TcpProxy:
    """A TCP forwarder on a free port that can be cut (all connections dropped, no new ones).

    Stands in for the network between an office and the broker: `cut()` is a
    pulled cable as far as the office can tell (connections reset, reconnects
    refused), `heal()` plugs it back in.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.setblocking(False)
        self.port = int(self.listener.getsockname()[1])
        self.open = True
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.listener, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="tcp-proxy")
        self._thread.start()

    def cut(self, *, silent: bool = True) -> None:
        """Stop forwarding until `heal()`; new connections are refused.

        silent (a pulled cable): open connections stay up but every byte is
        swallowed, so each side only finds out through its keepalive. Otherwise
        every connection is reset at once.
        """
        with self._lock:
            self.open = False
            if not silent:
                for sock in list(self._pairs):
                    self._close(sock)

    def heal(self) -> None:
        """Reset what is left of the old connections and forward new ones again."""
        with self._lock:
            for sock in list(self._pairs):
                self._close(sock)  # their byte streams lost data: MQTT cannot resume them
            self.open = True

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        with self._lock:
            for sock in list(self._pairs):
                self._close(sock)
        self.listener.close()

    def _close(self, sock: socket.socket) -> None:
        peer = self._pairs.pop(sock, None)
        for s in (sock, peer):
            if s is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(s)
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            except OSError:
                pass
        if peer is not None:
            self._pairs.pop(peer, None)

    def _run(self) -> None:
        while not self._stop:
            for key, _mask in self._sel.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                with self._lock:
                    if sock is self.listener:
                        self._accept()
                    elif sock in self._pairs:
                        self._forward(sock)

    def _accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        if not self.open:
            client.close()
            return
        try:
            upstream = socket.create_connection(self.target, timeout=2)
        except OSError:
            client.close()
            return
        for s in (client, upstream):
            s.settimeout(5)  # recv only after select said readable; sendall may block briefly
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sel.register(s, selectors.EVENT_READ)
        self._pairs[client] = upstream
        self._pairs[upstream] = client

    def _forward(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._close(sock)
            return
        if not self.open:
            return  # the cable is pulled: swallow it
        try:
            self._pairs[sock].sendall(data)
        except OSError:
            self._close(sock)
