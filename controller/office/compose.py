"""The office's composition root: the one place that builds the real collaborators.

`build_daemon(cfg)` makes the SQLite outbox, the gpiozero board, the paho link
and the system clock and hands them to `Daemon`. Tests build their own
(`controller.office.testing`), tools reuse the pieces.
"""

from __future__ import annotations

from typing import Any

from controller.office import homeassistant
from controller.office.board import Board
from controller.office.clock import Clock, SystemClock
from controller.office.command_gate import GuardKey
from controller.office.daemon import Daemon
from controller.office.link import MqttLink
from controller.office.office_config import OfficeConfig
from controller.office.outbox import Outbox
from controller.protocol.messages import Topics


def subscriptions(cfg: OfficeConfig, *, mock_pins: bool) -> list[str]:
    """What an office listens to: its commands, its neighbours' alarms, sim inputs, HA status."""
    topics = Topics(cfg.mqtt.prefix)
    subs = [topics.cmd(cfg.office.id)]
    subs += [topics.alarm(n) for n in cfg.office.neighbors]
    if mock_pins:
        subs.append(topics.sim_input(cfg.office.id, "+"))
    if cfg.homeassistant.discovery:
        subs.append(homeassistant.status_topic(cfg))
    return subs


def make_outbox(cfg: OfficeConfig) -> Outbox:
    """The durable outbox as configured in `[storage]`."""
    return Outbox(cfg.storage.path, max_events=cfg.storage.max_events,
                  keep_delivered_s=cfg.storage.keep_delivered_days * 86400)


def build_daemon(cfg: OfficeConfig, *, factory: Any = None, clock: Clock | None = None,
                 guard_key: GuardKey | None = None) -> Daemon:
    """The real daemon: outbox, board (with `factory` or the configured pins), paho link."""
    clock = clock or SystemClock()
    board = Board(cfg.hardware, factory=factory, clock=clock.monotonic,
                  panic_line=cfg.panic_line)
    topics = Topics(cfg.mqtt.prefix)
    link = MqttLink(cfg.mqtt, client_id=cfg.mqtt.client_id or f"officesec-{cfg.office.id}",
                    will_topic=topics.availability(cfg.office.id),
                    subscriptions=subscriptions(cfg, mock_pins=board.is_mock))
    return Daemon(cfg, board=board, link=link, outbox=make_outbox(cfg), clock=clock,
                  guard_key=guard_key)
