"""A real 3-node NATS JetStream cluster with its MQTT gateway, on loopback, for failover tests.

nats-server 2.9 speaks MQTT 3.1.1 (QoS 0/1, retained, wills, persistent sessions
in replicated JetStream streams). Each node gets its own ports and store
directory; `kill(i)` is a SIGKILL; `wait_healthy()` waits for every live node's
`/healthz` (taking a node down before the others caught up can stall a
JetStream consumer: see notes/platform.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.broker import free_port, terminate

NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"


class NatsCluster:
    """Three nats-server processes forming cluster `officesec-test`."""

    def __init__(self, workdir: Path, nodes: int = 3) -> None:
        self.workdir = workdir
        self.n = nodes
        self.client_ports = [free_port() for _ in range(nodes)]
        self.route_ports = [free_port() for _ in range(nodes)]
        self.mqtt_ports = [free_port() for _ in range(nodes)]
        self.http_ports = [free_port() for _ in range(nodes)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * nodes

    @property
    def hosts(self) -> list[str]:
        """The MQTT gateways as `[mqtt] hosts` entries."""
        return [f"127.0.0.1:{p}" for p in self.mqtt_ports]

    def _conf(self, i: int) -> Path:
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.route_ports)
        store = self.workdir / f"n{i}" / "js"
        store.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / f"n{i}.conf"
        conf.write_text(
            f"server_name: n{i}\n"
            f"listen: 127.0.0.1:{self.client_ports[i]}\n"
            f"http: 127.0.0.1:{self.http_ports[i]}\n"
            f"jetstream {{ store_dir: \"{store}\", max_memory_store: 64MB, "
            f"max_file_store: 256MB }}\n"
            f"cluster {{ name: officesec-test, listen: 127.0.0.1:{self.route_ports[i]}, "
            f"routes: [{routes}] }}\n"
            f"mqtt {{ listen: 127.0.0.1:{self.mqtt_ports[i]} }}\n")
        return conf

    def start(self, timeout: float = 60.0) -> NatsCluster:
        """Start every node, then wait until all are healthy (JetStream meta leader elected)."""
        for i in range(self.n):
            self.start_node(i)
        self.wait_healthy(timeout)
        return self

    def start_node(self, i: int) -> None:
        """Start (or restart) node i."""
        conf = self._conf(i)
        log = (self.workdir / f"n{i}.log").open("ab")
        self.procs[i] = subprocess.Popen([NATS, "-c", str(conf)], stdout=log,
                                         stderr=log)

    def healthy(self, i: int) -> bool:
        """Node i answers `/healthz` with status ok."""
        try:
            url = f"http://127.0.0.1:{self.http_ports[i]}/healthz"
            with urllib.request.urlopen(url, timeout=1) as resp:
                return bool(json.loads(resp.read()).get("status") == "ok")
        except (OSError, ValueError):
            return False

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Every running node healthy, or AssertionError with the logs' tails."""
        deadline = time.monotonic() + timeout
        live = [i for i, p in enumerate(self.procs) if p is not None and p.poll() is None]
        while not all(self.healthy(i) for i in live):
            if time.monotonic() > deadline:
                tails = {i: (self.workdir / f"n{i}.log").read_text(errors="replace")[-1500:]
                         for i in live}
                raise AssertionError(f"NATS cluster not healthy in {timeout} s: {tails}")
            time.sleep(0.2)

    def kill(self, i: int) -> None:
        """SIGKILL node i (no goodbye to its clients)."""
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)
        self.procs[i] = None

    def connections(self, i: int) -> int:
        """How many MQTT/NATS clients node i has right now (its /connz)."""
        url = f"http://127.0.0.1:{self.http_ports[i]}/connz"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(json.loads(resp.read())["num_connections"])

    def stop(self) -> None:
        """Stop every node."""
        for i, proc in enumerate(self.procs):
            if proc is not None:
                terminate(proc, 5)
            self.procs[i] = None
