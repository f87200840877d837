"""paho driven by the station's asyncio loop: one thread owns ingest (issue #18 item 4, #19).

With paho's own network thread, every message crossed from that thread to
the event loop, and with tens of thousands of heartbeats a second the two
threads fought for the GIL: whenever the loop gave up the GIL (a socket
write, a SQLite commit) it waited up to the 5 ms switch interval to get it
back, several times per alarm (the "convoy" that capped a station at 5,000
offices). Here paho's socket is watched by the event loop itself, with
paho's external-loop API: `loop_read` when readable (`add_reader`),
`loop_write` while paho has output (`add_writer`, registered through
paho's socket callbacks), `loop_misc` every second (keepalive, retries).
Messages are delivered on the loop thread, so nothing crosses threads.

Only the TCP/TLS connect, which blocks, runs in a worker thread; the loop
is told about the new socket through `call_soon_threadsafe`. Reconnects
follow `[mqtt] reconnect_min_s` doubling to `reconnect_max_s` and move to
the next broker of `[mqtt] hosts` on every failure, as paho's thread did.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import MQTTErrorCode

from controller import mqttclient
from controller.settings import MqttCfg

log = structlog.get_logger("officesec.guard.mqtt")


class LoopDriver:
    """Runs one paho client on the running asyncio loop (start/stop from the loop)."""

    def __init__(self, client: mqtt.Client, cfg: MqttCfg, connect_kwargs: dict[str, Any]) -> None:
        """`connect_kwargs` as for `connect()`; set `connacked` when the broker accepted us."""
        self.client = client
        self.cfg = cfg
        self.kwargs = connect_kwargs
        self.connacked = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = 0
        self._task: asyncio.Task[None] | None = None
        self._closed: asyncio.Event | None = None
        self._sock: Any = None
        self._nodelay = client.on_socket_open
        client.on_socket_open = self._opened
        client.on_socket_close = self._closing
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = self._done_write

    # ----------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Begin connecting (in the background, with retries)."""
        self.loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self._closed = asyncio.Event()
        self._task = self.loop.create_task(self._run())

    def alive(self) -> bool:
        """The connection manager still runs (for the systemd watchdog)."""
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Stop reconnecting; the socket stays watched so a last DISCONNECT can go out."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def detach(self) -> None:
        """Stop watching the socket (after the clean disconnect)."""
        self._unwatch(self._sock)

    # -------------------------------------------------------- connections

    async def _run(self) -> None:
        assert self.loop is not None and self._closed is not None  # noqa: S101 - start() ran
        low = max(0.1, self.cfg.reconnect_min_s)
        delay, first = low, True
        while True:
            host, port = mqttclient.current_endpoint(self.client)
            if not host:  # nothing tried yet: the first broker of the list
                host, port = mqttclient.endpoints(self.client)[0]
            self._closed.clear()
            self.connacked = False
            try:
                if first:
                    await asyncio.to_thread(self.client.connect, host, port, **self.kwargs)
                else:
                    await asyncio.to_thread(self.client.reconnect)
            except (OSError, ValueError, mqtt.WebsocketConnectionError) as exc:
                log.warning("mqtt_connect_failed", broker=f"{host}:{port}", error=str(exc)[:200])
                mqttclient.fail_over(self.client)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max(low, self.cfg.reconnect_max_s))
                continue
            first = False
            misc = self.loop.create_task(self._misc())
            try:
                await self._closed.wait()
            finally:
                misc.cancel()
            # a connection that was accepted starts the backoff afresh; a refused one doubles it
            delay = low if self.connacked else min(delay * 2, max(low, self.cfg.reconnect_max_s))
            await asyncio.sleep(delay)

    async def _misc(self) -> None:
        """Paho's housekeeping once a second: keepalive pings, retries, ping timeouts."""
        while True:
            await asyncio.sleep(1.0)
            if self.client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._drop_socket()
                return

    # ------------------------------------------------ paho socket callbacks

    def _on_loop(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the event loop (paho calls these from the connect thread too)."""
        if self.loop is None:
            return
        if threading.get_ident() == self._thread_id:
            fn()
        else:
            self.loop.call_soon_threadsafe(fn)

    def _opened(self, client: Any, userdata: Any, sock: Any) -> None:
        if self._nodelay is not None:
            self._nodelay(client, userdata, sock)

        def watch() -> None:
            assert self.loop is not None  # noqa: S101
            self._sock = sock
            self.loop.add_reader(sock, self._read)
        self._on_loop(watch)

    def _read(self) -> None:
        rc = self.client.loop_read()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._drop_socket()

    def _write(self) -> None:
        rc = self.client.loop_write()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._drop_socket()

    def _closing(self, _client: Any, _userdata: Any, sock: Any) -> None:
        def forget() -> None:
            self._unwatch(sock)
            if self._closed is not None:
                self._closed.set()
        self._on_loop(forget)

    def _want_write(self, _client: Any, _userdata: Any, sock: Any) -> None:
        def watch() -> None:
            assert self.loop is not None  # noqa: S101
            if sock.fileno() >= 0:
                self.loop.add_writer(sock, self._write)
        self._on_loop(watch)

    def _done_write(self, _client: Any, _userdata: Any, sock: Any) -> None:
        def unwatch() -> None:
            assert self.loop is not None  # noqa: S101
            self.loop.remove_writer(sock)
        self._on_loop(unwatch)

    def _unwatch(self, sock: Any) -> None:
        if self.loop is None or sock is None:
            return
        self.loop.remove_reader(sock)
        self.loop.remove_writer(sock)
        if self._sock is sock:
            self._sock = None

    def _drop_socket(self) -> None:
        """The connection is gone (paho closed it on a read/write error or ping timeout)."""
        sock = self._sock
        if sock is not None:
            self._unwatch(sock)
        if self._closed is not None:
            self._closed.set()
