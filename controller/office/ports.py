"""What the daemon needs from its broker link: the seam between logic and paho.

`controller.office.link.MqttLink` is the real one (paho); `controller.office.testing.FakeLink`
records what would have been published, for daemon tests without a broker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

MessageHandler = Callable[[str, bytes, bool], None]
"""(topic, payload, retained); called inside `poll()` (the logic thread), must not block."""
AckHandler = Callable[[str], None]
"""Called with the event id once the broker acknowledged it (PUBACK)."""


class Session(NamedTuple):
    """Where the link is connected, for the state (the installer sees it): none when offline."""

    address: str | None = None  # this office's IP on the socket to the broker
    broker: str | None = None  # "host:port" of the broker in use (one of `[mqtt] hosts`)


class Link(Protocol):
    """A broker connection with a retained last will and delivery tracking."""

    connected: bool

    def bind(self, *, on_message: MessageHandler, on_ack: AckHandler,
             on_connected: Callable[[], None], on_disconnected: Callable[[], None]) -> None:
        """Attach the daemon's handlers (before `start`)."""
        ...

    def start(self) -> None:
        """Connect in the background and keep reconnecting."""
        ...

    def stop(self) -> None:
        """Publish `offline`, disconnect."""
        ...

    @property
    def loop_alive(self) -> bool:
        """The network loop runs (for the watchdog)."""
        ...

    def publish_event(self, event_id: str, topic: str, payload: bytes) -> None:
        """QoS 1 publish whose PUBACK calls `on_ack(event_id)`."""
        ...

    def publish(self, topic: str, payload: bytes, *, retain: bool, qos: int = 1) -> None:
        """Fire-and-track publish (state, alarm, retained topics)."""
        ...

    def let_out(self, max_wait_s: float = ...) -> None:
        """Give the network loop the chance to write an alarm before other work."""
        ...

    def poll(self, timeout: float) -> None:
        """On the logic thread: wait up to `timeout` for the network or `wake()`, do the I/O."""
        ...

    def wake(self) -> None:
        """From any thread: make a waiting `poll()` return (something was queued)."""
        ...

    def session(self) -> Session:
        """The current connection's network facts (empty while not connected)."""
        ...
