"""#17.5: slow and numerous clients are cut off; the station keeps answering meanwhile.

One attacker address opens more half-sent requests than it may hold: the
surplus is closed at once, the rest once their request has not arrived within
`http_header_timeout_s` (the deadline runs from a request's first byte, so
trickling a byte at a time does not extend it). Guards on other addresses are
served throughout, and the log says so a few times, not once per connection.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.security.fleet import HEADER_TIMEOUT_S, MAX_PER_CLIENT, Stack

pytestmark = pytest.mark.slow
ATTACKER = "127.0.0.20"
N = MAX_PER_CLIENT + 36


def _closed(sock: socket.socket, wait: float) -> bool:
    """The server closed (or reset) the connection within `wait` seconds."""
    sock.settimeout(wait)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _open(port: int, first: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5,
                                    source_address=(ATTACKER, 0))
    sock.sendall(first)
    return sock


def test_slow_clients_are_cut_off_and_others_are_served(stack: Stack) -> None:
    port = stack.web_port
    socks = [_open(port, b"GET /healthz HTTP/1.1\r\nHost: guard\r\nX-Slow: ")
             for _ in range(N)]
    slow_body = _open(port, b"POST /login HTTP/1.1\r\nHost: guard\r\nContent-Length: 1000\r\n"
                            b"Content-Type: application/x-www-form-urlencoded\r\n\r\nusername=")
    started = time.monotonic()
    try:
        refused = sum(_closed(s, 0.05) for s in socks)
        assert refused >= N - MAX_PER_CLIENT, f"only {refused} of {N} refused beyond the cap"
        held = [s for s in socks if s.fileno() != -1]
        # the guards are served while the attacker holds its connections
        for path in ("/healthz", "/login"):
            t0 = time.monotonic()
            res = httpx.get(stack.url + path, timeout=2)
            assert res.status_code == 200 and time.monotonic() - t0 < 1.0, path
        # trickling bytes does not extend the deadline
        trickler = _open(port, b"GET / HTTP/1.1\r\n")
        for _ in range(int(HEADER_TIMEOUT_S / 0.25) + 2):
            try:
                trickler.sendall(b"X")
            except OSError:
                break
            time.sleep(0.25)
        assert _closed(trickler, HEADER_TIMEOUT_S), "a trickling client was kept"
        remaining = max(0.2, HEADER_TIMEOUT_S + 1.0 - (time.monotonic() - started))
        still_open = [s for s in held if not _closed(s, remaining)]
        assert not still_open, f"{len(still_open)} half-sent requests still held"
        assert _closed(slow_body, 1.0), "a request with a slow body was kept"
        assert time.monotonic() - started < HEADER_TIMEOUT_S + 4
    finally:
        for s in [*socks, slow_body]:
            s.close()
    assert httpx.get(stack.url + "/healthz", timeout=2).json() == {"status": "ok"}
    log = stack.log("guard")
    for event in ("http_request_too_slow", "http_connection_refused"):
        assert 1 <= log.count(event) <= 3, (event, log.count(event))
