"""Fan-out of live changes to server-sent-event clients, each with a bounded queue.

A slow client must never hold up the station or grow its memory: when its
queue is full it is dropped (its stream ends; the browser reconnects and
re-reads the current picture).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import structlog

log = structlog.get_logger("officesec.guard.hub")

Message = dict[str, str]


class Subscriber:
    """One SSE client's queue; `None` in it ends the stream."""

    def __init__(self, size: int) -> None:
        """A queue of at most `size` messages."""
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue(maxsize=size)
        self.dropped = False


class Hub:
    """Publishes each change once (encoded once) to every subscriber."""

    def __init__(self, queue_size: int = 1000) -> None:
        """Subscribers get queues of `queue_size` messages."""
        self.queue_size = queue_size
        self.subscribers: set[Subscriber] = set()
        self.last_id = 0
        self.dropped_clients = 0

    def publish(self, kind: str, data: Any) -> None:
        """Send `{"kind": kind, "data": data}` to every client (call on the event loop)."""
        self.last_id += 1
        if not self.subscribers:
            return
        msg = {"id": str(self.last_id),
               "data": json.dumps({"kind": kind, "data": data}, separators=(",", ":"),
                                  default=str)}
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait(msg)
            except asyncio.QueueFull:
                self._drop(sub)

    def _drop(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        sub.dropped = True
        self.dropped_clients += 1
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)
        log.warning("sse_client_dropped", reason="queue_full", queue_size=self.queue_size)

    def subscribe(self) -> Subscriber:
        """A new client."""
        sub = Subscriber(self.queue_size)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """The client went away."""
        self.subscribers.discard(sub)

    async def stream(self, sub: Subscriber, first: list[Message]) -> AsyncIterator[Message]:
        """Messages for one client: `first` (a snapshot), then live changes until dropped."""
        try:
            for msg in first:
                yield msg
            while True:
                item = await sub.queue.get()
                if item is None:
                    return
                yield item
        finally:
            self.unsubscribe(sub)
