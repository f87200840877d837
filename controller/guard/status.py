"""What the station reports about itself: /healthz and the metrics sample.

Kept apart from the composition root (service.py) so that adding a part to
the station adds a line here, not to the object that wires the parts.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from controller import mqttclient
from controller.guard.cluster import Follow
from controller.guard.commander import Commander
from controller.guard.consumer import GuardMqtt
from controller.guard.escalation import Escalator
from controller.guard.guard_config import GuardConfig
from controller.guard.hub import Hub
from controller.guard.ingest import Ingest
from controller.guard.metrics import Sample
from controller.guard.model import LiveModel
from controller.guard.notify import Notifier
from controller.guard.pushes import LagMeter
from controller.guard.share import SharedStates
from controller.guard.store import Store


class Station(Protocol):
    """The parts of the station (GuardService) these reports read."""

    cfg: GuardConfig
    store: Store
    store_error: str | None
    broker_connected: bool
    broker_changed_at: float
    started_mono: float
    messages_in: int
    mqtt: GuardMqtt
    commander: Commander
    follow: Follow
    share: SharedStates | None
    escalator: Escalator
    notifier: Notifier
    ingest: Ingest
    lag: LagMeter
    hub: Hub
    model: LiveModel

    def queued(self) -> dict[str, int]: ...


def station_health(svc: Station) -> dict[str, Any]:
    """Broker, store, cluster, notifications and ingest status for /healthz."""
    store_ok = svc.store_error is None and svc.store.healthy()
    ok = store_ok and svc.broker_connected
    broker = mqttclient.current_endpoint(svc.mqtt.client)  # with `hosts`: the one in use
    return {
        "status": "ok" if ok else "degraded",
        "guard": svc.cfg.guard.id,
        "uptime_s": round(time.monotonic() - svc.started_mono, 1),
        "broker": {"connected": svc.broker_connected, "host": broker[0], "port": broker[1],
                   "since": svc.broker_changed_at},
        "store": {"ok": store_ok, "error": svc.store_error},
        "signing": svc.commander.can_sign,
        "cluster": svc.follow.cluster.health(),
        "ingest_group": None if svc.share is None else svc.share.health(),
        "webhook": svc.escalator.health(),
        "notify": svc.notifier.health(),
        "ingest": {"stored": svc.ingest.stored, "duplicates": svc.ingest.duplicates,
                   "dropped": svc.ingest.dropped, **svc.queued()},
        "loop_lag_max_ms": round(1000 * svc.lag.max_s, 1),
        "sse": {"clients": len(svc.hub.subscribers), "dropped_clients": svc.hub.dropped_clients},
        "offices": svc.model.counts(),
    }


def metrics_sample(svc: Station) -> Sample:
    """The numbers /metrics exports, read when it is scraped."""
    return Sample(
        offices=svc.model.snapshot(time.monotonic()),
        open_alarms=svc.store.open_alarm_counts(),
        ingest={"received": svc.messages_in, "stored": svc.ingest.stored,
                "duplicate": svc.ingest.duplicates, "dropped": svc.ingest.dropped},
        loop_lag_s=svc.lag.max_s, notifications_delivered=svc.notifier.delivered,
        notification_attempts=svc.notifier.attempts,
        escalations=svc.escalator.escalations, broker_connected=svc.broker_connected)
