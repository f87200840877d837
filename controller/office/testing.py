"""Working fakes for the office daemon's seams, gpiozero style: a clock and a link.

Shipped in the package (not under tests/) so that anyone integrating officesec
can test against them: `FakeClock` moves only when told, `FakeLink` records
every publish and lets the test deliver messages and PUBACKs. With gpiozero's
MockFactory pins and a real SQLite outbox the whole daemon runs in one thread
through `Daemon.pump()`: no broker, no sleeps to get past a debounce.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gpiozero.pins.mock import MockSPIDevice

from controller.office.office_config import SPI_PINS, SPI_SELECT
from controller.office.ports import AckHandler, MessageHandler, Session

FAKE_POLL_MAX_S = 0.05  # a fake link's poll() never sleeps longer (messages come unannounced)


class FakeClock:
    """Monotonic and wall time that advance together, only through `advance()`."""

    def __init__(self, start: float = 1000.0,
                 wall: datetime = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)) -> None:
        """Start at an arbitrary monotonic value and wall time."""
        self._mono = start
        self._wall = wall

    def monotonic(self) -> float:
        """The fake monotonic seconds."""
        return self._mono

    def wall(self) -> datetime:
        """The fake UTC wall time."""
        return self._wall

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self._mono += seconds
        self._wall += timedelta(seconds=seconds)

    def step_wall(self, seconds: float) -> None:
        """Step only the wall clock (NTP correction, an installer setting the time)."""
        self._wall += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Published:
    """One message the daemon handed to the link."""

    topic: str
    payload: bytes
    retain: bool
    event_id: str | None = None

    def json(self) -> Any:
        """The payload as JSON (events, state, alarm)."""
        return json.loads(self.payload) if self.payload else None


class FakeLink:
    """A link with no broker: records publishes, acks on demand, delivers on demand."""

    def __init__(self, *, auto_ack: bool = True) -> None:
        """With `auto_ack` every event is PUBACKed as soon as it is published."""
        self.auto_ack = auto_ack
        self.connected = False
        self.started = False
        self.published: list[Published] = []
        self.unacked: list[str] = []
        self._on_message: MessageHandler = lambda *_: None
        self._on_ack: AckHandler = lambda _id: None
        self._on_connected: Callable[[], None] = lambda: None
        self._on_disconnected: Callable[[], None] = lambda: None
        self._woken = threading.Event()
        self.session_facts = Session("192.0.2.10", "broker.test:1883")  # while connected

    def bind(self, *, on_message: MessageHandler, on_ack: AckHandler,
             on_connected: Callable[[], None], on_disconnected: Callable[[], None]) -> None:
        """Keep the daemon's handlers."""
        self._on_message, self._on_ack = on_message, on_ack
        self._on_connected, self._on_disconnected = on_connected, on_disconnected

    def start(self) -> None:
        """Nothing to connect; call `connect()` to simulate the broker's CONNACK."""
        self.started = True

    def stop(self) -> None:
        """Like the real link: say offline on the availability topic if connected."""
        if self.connected:
            self.published.append(Published("(availability)", b"offline", retain=True))
        self.connected = False

    @property
    def loop_alive(self) -> bool:
        """Always alive once started."""
        return self.started

    def session(self) -> Session:
        """`session_facts` while connected, like the real link."""
        return self.session_facts if self.connected else Session()

    def publish_event(self, event_id: str, topic: str, payload: bytes) -> None:
        """Record; PUBACK at once with `auto_ack`, else keep it for `ack_all()`."""
        self.published.append(Published(topic, payload, retain=False, event_id=event_id))
        if self.auto_ack:
            self._on_ack(event_id)
        else:
            self.unacked.append(event_id)

    def publish(self, topic: str, payload: bytes, *, retain: bool, qos: int = 1) -> None:
        """Record a plain publish."""
        self.published.append(Published(topic, payload, retain=retain))

    def let_out(self, max_wait_s: float = 0.0) -> None:
        """Nothing to wait for."""

    def poll(self, timeout: float) -> None:
        """No network: wait for `wake()` (a daemon thread with a fake link), bounded."""
        self._woken.wait(min(timeout, FAKE_POLL_MAX_S))
        self._woken.clear()

    def wake(self) -> None:
        """End a waiting `poll()`."""
        self._woken.set()

    # ------------------------------------------------------- test controls

    def connect(self) -> None:
        """The broker answered: the daemon replays its alarm, state and backlog."""
        self.connected = True
        self._on_connected()

    def disconnect(self) -> None:
        """The connection dropped."""
        self.connected = False
        self._on_disconnected()

    def deliver(self, topic: str, payload: bytes, *, retained: bool = False) -> None:
        """A message from the broker (command, neighbour alarm, sim input)."""
        self._on_message(topic, payload, retained)

    def ack_all(self) -> None:
        """PUBACK everything still open."""
        pending, self.unacked = self.unacked, []
        for event_id in pending:
            self._on_ack(event_id)

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        """The published events (optionally of one type), as JSON."""
        out = [p.json() for p in self.published if p.event_id is not None]
        return [e for e in out if type_ is None or e["type"] == type_]

    def last(self, leaf: str) -> Published | None:
        """The last publish on a topic ending in `/leaf` (state, alarm, sim/output)."""
        for p in reversed(self.published):
            if p.topic.endswith("/" + leaf):
                return p
        return None


class MockMCP3008(MockSPIDevice):  # type: ignore[misc]  # gpiozero is untyped
    """The ADC side of an MCP3008 on MockFactory's software SPI: set `values[ch]` (0..1).

    Speaks the chip's single-ended protocol as gpiozero's `MCP3008` drives it:
    a start bit, the mode bit, three channel bits, then a null bit and ten
    data bits, MSB first. Used by the supervised panic line in tests and in the
    demo (`pin_factory = "mock"`).
    """

    rx_buf: list[int]

    def __init__(self, factory: Any, *, port: int = 0, device: int = 0) -> None:
        """Attach to the SPI pins of `port`/`device` of a MockFactory."""
        clock, mosi, miso = SPI_PINS[port]
        super().__init__(clock, mosi, miso, SPI_SELECT[(port, device)], pin_factory=factory)
        self.values = [0.0] * 8
        self._phase = "wait"

    def on_start(self) -> None:
        """Chip select went active: wait for the start bit."""
        super().on_start()
        self._phase = "wait"

    def on_bit(self) -> None:
        """One bit clocked in on MOSI."""
        if self._phase == "wait":
            if self.rx_buf[-1]:
                self._phase, self.rx_buf = "mode", []
        elif self._phase == "mode":
            self._phase, self.rx_buf = "channel", []
        elif self._phase == "channel" and len(self.rx_buf) == 3:
            value = self.values[self.rx_word()]
            self.tx_word(max(0, min(1023, round(value * 1023))), 12)  # 2 lead bits + 10 data
            self._phase = "reply"
