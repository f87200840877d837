"""Stations that share the heartbeats: MQTT 5 `$share` ingest on one PostgreSQL store (#19 item 4).

Real parts: one Mosquitto, two `officesec guard` processes with the same
`[guard] ingest_group` on one fresh PostgreSQL database, simulated offices
publishing states over MQTT. Mosquitto gives each state to one member, so
every check below holds only if the members share what they heard.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.errors import ConfigError
from controller.guard.guard_config import GuardConfig
from controller.settings import build
from tests.broker import Mosquitto
from tests.guard_proc import GuardProc, wait_for
from tests.office_sim import OfficeSim
from tests.pg import fresh_database

OFFICES = [f"eg-{n}" for n in range(101, 107)]
HEARTBEAT_S = 1.0
GROUP = "officesec-ingest"


@pytest.fixture
def members(tmp_path: Path, broker: Mosquitto) -> Iterator[tuple[GuardProc, GuardProc]]:
    with fresh_database() as url:
        common: dict[str, Any] = {"store": {"url": url}}
        a = GuardProc(tmp_path / "a", broker.port, roster=OFFICES,
                      guard={"id": "guard-a", "ingest_group": GROUP}, **common)
        b = GuardProc(tmp_path / "b", broker.port, roster=OFFICES, signing=False,
                      guard={"id": "guard-b", "ingest_group": GROUP},
                      security={"signing_key": str(a.workdir / "keys" / "guard-signing.key")},
                      **common)
        try:
            a.start()
            wait_for(lambda: a.get("/healthz")["cluster"]["role"] == "leader", 10, "A leads")
            b.start()
            yield a, b
        finally:
            a.close()
            b.close()


def _offices(g: GuardProc) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in g.get("/api/offices") if o["id"] in OFFICES}


def _received(g: GuardProc) -> int:
    return int(g.get("/healthz")["ingest_group"]["received"])


def _fresh(g: GuardProc, offices: list[str]) -> bool:
    views = _offices(g)
    return all(views[o]["online"] and views[o]["state"] and not views[o]["stale"]
               for o in offices)


def test_members_split_the_states_and_judge_staleness_together(
        members: tuple[GuardProc, GuardProc], broker: Mosquitto) -> None:
    a, b = members
    sims = [OfficeSim(broker.port, o, heartbeat_s=HEARTBEAT_S).start_heartbeat()
            for o in OFFICES]
    try:
        for g in (a, b):
            wait_for(lambda g=g: _fresh(g, OFFICES), 20, "every office fresh on both")
        assert a.get("/healthz")["ingest_group"]["connected"]
        # 6 s of heartbeats (several times the stale limit): each member gets only its
        # share of the states, and still nobody is stale on either screen
        before = {g.url: _received(g) for g in (a, b)}
        end = time.monotonic() + 6
        while time.monotonic() < end:
            for g in (a, b):
                stale = [o for o, v in _offices(g).items() if v["stale"]]
                assert not stale, (g.url, stale)
            time.sleep(0.25)
        got = {g.url: _received(g) - before[g.url] for g in (a, b)}
        sent = len(OFFICES) * 6 / HEARTBEAT_S
        assert all(n > 0 for n in got.values()), got
        assert sum(got.values()) >= 0.7 * sent, (got, sent)  # QoS 0: a few may fall between
        assert all(n < 0.8 * sent for n in got.values()), (got, sent)  # really split

        # one changed state reaches exactly one member (round robin); both must show it,
        # and the leader raises the fault alarm it carries whichever member received it
        sim = sims[0]
        for s in sims:
            s.heartbeat = False
        time.sleep(0.3)
        sim.lockdown, sim.faults = True, ["panic_line"]
        sim.publish_state()
        for g in (a, b):
            wait_for(lambda g=g: _offices(g)[sim.office]["lockdown"], 3, "change on both")
        wait_for(lambda: any(x["kind"] == "fault" and x["fault"] == "panic_line"
                             and x["office"] == sim.office for x in a.alarms()), 5,
                 "the leader raised the panic-line fault")
        for s in sims[1:]:
            s.heartbeat = True
        sim.heartbeat = True

        # an office that really stops is still found stale, once, by both
        dead = sims[-1]
        dead.heartbeat = False
        for g in (a, b):
            wait_for(lambda g=g: _offices(g)[dead.office]["stale"], 10, "dead office stale")
        assert not any(v["stale"] for o, v in _offices(a).items() if o != dead.office)
        wait_for(lambda: [x for x in a.alarms() if x["kind"] == "fault"
                          and x["fault"] == "stale" and x["office"] == dead.office], 5,
                 "one stale fault alarm")
        dead.heartbeat = True
        wait_for(lambda: _fresh(a, OFFICES) and _fresh(b, OFFICES), 10, "fresh again")

        # a member that dies leaves the group with its connection: the other gets every
        # state and nobody turns stale
        b.kill()
        time.sleep(0.5)
        start = _received(a)
        end = time.monotonic() + 5
        while time.monotonic() < end:
            stale = [o for o, v in _offices(a).items() if v["stale"]]
            assert not stale, stale
            time.sleep(0.25)
        assert _received(a) - start >= 0.8 * len(OFFICES) * 5 / HEARTBEAT_S
    finally:
        for s in sims:
            s.close()


def test_ingest_group_needs_postgresql_and_mqtt5() -> None:
    with pytest.raises(ConfigError) as exc:
        build(GuardConfig, {"guard": {"ingest_group": GROUP}})
    assert "guard.ingest_group" in str(exc.value) and "store.url" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        build(GuardConfig, {"guard": {"ingest_group": GROUP},
                            "store": {"url": "postgresql://x@127.0.0.1/y"},
                            "mqtt": {"protocol": "3.1.1"}})
    assert "mqtt.protocol" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        build(GuardConfig, {"guard": {"ingest_group": "no/slashes"},
                            "store": {"url": "postgresql://x@127.0.0.1/y"}})
    assert "guard.ingest_group" in str(exc.value)
