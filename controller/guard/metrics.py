"""`GET /metrics`: the station's health in the Prometheus text format (contract section 7).

One registry per service (tests run several in a process). Gauges are
computed at scrape time from the live model and the store, so they can never
drift from what the console shows; the delivery histogram is observed as each
panic is committed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from controller.protocol.messages import Event

DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


def office_state(office: dict[str, Any]) -> str:
    """One word per office for `officesec_offices{state=...}`."""
    if office.get("missing"):
        return "missing"
    if office.get("availability") == "offline":
        return "offline"
    if office.get("stale"):
        return "stale"
    return "online" if office.get("online") else "unknown"


@dataclass(frozen=True)
class Sample:
    """The numbers the service reports at scrape time."""

    offices: list[dict[str, Any]]
    open_alarms: dict[str, int]
    ingest: dict[str, int]
    loop_lag_s: float
    notifications_delivered: int
    notification_attempts: int
    escalations: int
    broker_connected: bool


class _Live(Collector):
    def __init__(self, sample: Callable[[], Sample]) -> None:
        self.sample = sample

    def collect(self) -> Iterable[Metric]:
        now = self.sample()
        offices = GaugeMetricFamily("officesec_offices", "Offices by state", labels=["state"])
        counts = dict.fromkeys(("online", "offline", "stale", "missing", "unknown"), 0)
        for office in now.offices:
            counts[office_state(office)] += 1
        for state, n in counts.items():
            offices.add_metric([state], n)
        yield offices
        alarms = GaugeMetricFamily("officesec_alarms_open", "Open alarms by kind",
                                   labels=["kind"])
        for kind in ("panic", "drill", "fault"):
            alarms.add_metric([kind], now.open_alarms.get(kind, 0))
        yield alarms
        ingest = CounterMetricFamily("officesec_ingest_messages", "MQTT messages handled",
                                     labels=["result"])
        for result, n in now.ingest.items():
            ingest.add_metric([result], n)
        yield ingest
        yield GaugeMetricFamily("officesec_event_loop_lag_seconds",
                                "Largest event loop lag in the last minute",
                                value=now.loop_lag_s)
        notify = CounterMetricFamily("officesec_notifications", "Notification attempts",
                                     labels=["result"])
        notify.add_metric(["delivered"], now.notifications_delivered)
        notify.add_metric(["failed_attempt"],
                          now.notification_attempts - now.notifications_delivered)
        yield notify
        yield CounterMetricFamily("officesec_escalations", "Escalation levels reached",
                                  value=now.escalations)
        yield GaugeMetricFamily("officesec_broker_connected", "1 while the broker is connected",
                                value=1.0 if now.broker_connected else 0.0)


class Metrics:
    """The registry of one guard station."""

    def __init__(self, sample: Callable[[], Sample], now: Callable[[], float] = time.time
                 ) -> None:
        """Register the live collector and the delivery histogram."""
        self.registry = CollectorRegistry()
        self.now = now
        self.delivery = Histogram("officesec_alarm_delivery_seconds",
                                  "Office event ts to the guard's commit (panic events)",
                                  buckets=DELIVERY_BUCKETS, registry=self.registry)
        self.registry.register(_Live(sample))
        self._seen: OrderedDict[str, None] = OrderedDict()

    def on_event(self, event: Event) -> None:
        """After commit: how long a press took from the office to the station's store."""
        if event.type != "panic" or str(event.id) in self._seen:
            return  # a redelivered copy is not a second delivery
        self._seen[str(event.id)] = None
        if len(self._seen) > 10_000:
            self._seen.popitem(last=False)
        self.delivery.observe(max(0.0, self.now() - event.ts.timestamp()))
