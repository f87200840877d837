"""A small provisioned fleet for the security suite: real Mosquitto, generated TLS/passwords/ACL.

Three offices in a row (o-01 | o-02 | o-03, each the neighbour of the next),
the guard station from its generated config (plus users and an API token),
and one real office daemon (o-02, the victim of the cross-office attacks).
The other offices are played by raw MQTT clients holding their real
credentials: a compromised Raspberry Pi can send anything its ACL allows.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher

from controller.deploy import pki
from controller.protocol.messages import Event, utcnow
from tests.broker import free_port
from tests.test_deploy_support import Client, Fleet, T, wait_for

REPO = Path(__file__).resolve().parents[2]
OFFICESEC = str(REPO / ".venv" / "bin" / "officesec")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
OFFICES = ("o-01", "o-02", "o-03")
PASSWORDS = {"anna": ("anna-pw-1", "guard"), "root": ("root-pw-1", "admin"),
             "eve": ("eve-pw-1", "viewer")}
TOKEN = "osk_" + "t" * 43  # the monitoring script's API token (guard role, via anna)
LOCKOUT_ATTEMPTS = 5
HEADER_TIMEOUT_S = 1.5
MAX_CONNECTIONS = 160
MAX_PER_CLIENT = 64
OFFICE_RATE, OFFICE_BURST = 50, 300


def minimum_hash(password: str) -> str:
    """The weakest hash check-config accepts (m=19 MiB, t=2): fast tests, real rules."""
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(password)


@dataclass
class Stack:
    """The running fleet and guard; helpers to talk to them."""

    fleet: Fleet
    work: Path
    web_port: int
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    clients: dict[str, Client] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def api(self, **kw: Any) -> httpx.Client:
        """A script's client: the API token (no password verification, no throttle)."""
        return httpx.Client(base_url=self.url, timeout=10,
                            headers={"Authorization": f"Bearer {TOKEN}"}, **kw)

    def get(self, path: str, **params: Any) -> Any:
        with self.api() as http:
            res = http.get(path, params=params)
            assert res.status_code == 200, (path, res.status_code, res.text)
            return res.json()

    def get_admin(self, path: str) -> Any:
        """GET as the admin user (HTTP Basic; the station caches a verified password 60 s)."""
        res = httpx.get(self.url + path, auth=("root", PASSWORDS["root"][0]), timeout=10)
        assert res.status_code == 200, (path, res.status_code, res.text)
        return res.json()

    def office(self, user: str) -> Client:
        """An MQTT connection with this account's real certificate and password."""
        if user not in self.clients:
            client = Client(self.fleet, user, client_id=f"sec-{user}-{time.monotonic_ns()}")
            rc = client.connect()
            assert not isinstance(rc, Exception) and not rc.is_failure, f"{user}: {rc}"
            self.clients[user] = client
        return self.clients[user]

    def event(self, office: str, etype: str, **fields: Any) -> Event:
        """Publish a valid event as `office` (seq continues from the last one)."""
        self.seqs[office] = self.seqs.get(office, 1000) + 1
        ev = Event(id=uuid.uuid4(), office=office, seq=self.seqs[office], ts=utcnow(),
                   type=etype, **fields)
        assert self.office(office).publish(T.event(office), ev.to_bytes()) < 0x80
        return ev

    def log(self, name: str) -> str:
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _guard_config(fleet: Fleet) -> Path:
    guard_toml = fleet.bundle("guard-1") / "guard.toml"
    text = guard_toml.read_text()
    for name, (pw, role) in PASSWORDS.items():
        text += (f'\n[[users]]\nname = "{name}"\npassword_hash = "{minimum_hash(pw)}"\n'
                 f'role = "{role}"\n')
    text += (f'\n[[api_tokens]]\nname = "monitoring"\nuser = "anna"\n'
             f'sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"\n')
    guard_toml.write_text(text)
    return guard_toml


def _spawn(stack: Stack, name: str, args: list[str], env: dict[str, str]) -> None:
    log = (stack.work / f"{name}.log").open("wb")
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("OFFICESEC_")}
    stack.procs[name] = subprocess.Popen([OFFICESEC, *args], env={**child_env, **env},
                                         stdout=log, stderr=log)


def start(work: Path) -> tuple[Stack, Path]:
    """Provision, start Mosquitto, the guard and o-02's daemon; returns (stack, broker root)."""
    broker_root = Path(tempfile.mkdtemp(prefix="officesec-sec-"))
    broker_root.chmod(0o755)
    broker_dir = broker_root / "officesec"
    port = free_port()
    out = work / "fleet"
    out.mkdir()
    (out / "fleet.toml").write_text(
        f'[fleet]\nbroker_host = "127.0.0.1"\nbroker_port = {port}\noffice_dir = ""\n'
        f'guard_dir = ""\nbroker_dir = "{broker_dir}"\n'
        '[defaults.hardware]\npin_factory = "mock"\n[defaults.alarm]\nheartbeat_s = 0.5\n')
    rows = ["id,site,building,floor,room,label,neighbors",
            "o-01,Jobcenter,Haus A,EG,101,Beratung 1,o-02",
            "o-02,Jobcenter,Haus A,EG,102,Beratung 2,o-01 o-03",
            "o-03,Jobcenter,Haus B,1,201,Beratung 3,o-02"]
    inventory = work / "inventory.csv"
    inventory.write_text("\n".join(rows) + "\n")
    res = subprocess.run([OFFICESEC, "provision", str(inventory), "--out", str(out)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    ca = pki.Issued((out / "pki" / "ca.crt").read_bytes(), (out / "pki" / "ca.key").read_bytes())
    tester = pki.issue_client(ca, "tester")
    (work / "tester.crt").write_bytes(tester.cert_pem)
    (work / "tester.key").write_bytes(tester.key_pem)
    tester_pw = pki.new_password()
    fleet = Fleet(out, broker_dir, port, (work / "tester.crt", work / "tester.key", tester_pw),
                  (work / "tester.crt", work / "tester.key"), inventory,
                  pki.mosquitto_hash(tester_pw))
    fleet.install_broker_files(work)
    confd = broker_root / "conf.d"
    confd.mkdir()
    shutil.copy(out / "broker" / "officesec.conf", confd / "officesec.conf")
    data = broker_root / "data"
    data.mkdir()
    data.chmod(0o777)
    main_conf = broker_root / "mosquitto.conf"
    main_conf.write_text(f"pid_file {data}/mosquitto.pid\npersistence false\n"
                         f"persistence_location {data}/\nlog_dest stderr\n"
                         f"log_type error\nlog_type warning\ninclude_dir {confd}\n")
    web = free_port()
    stack = Stack(fleet, work, web)
    log = (work / "mosquitto.log").open("wb")
    stack.procs["mosquitto"] = subprocess.Popen([MOSQUITTO, "-c", str(main_conf)],
                                                stdout=log, stderr=log)

    def accepting() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return False
        return True

    wait_for(accepting, 10, "mosquitto to listen")
    _spawn(stack, "guard", ["guard", "--config", str(_guard_config(fleet))], {
        "OFFICESEC_GUARD__LISTEN_PORT": str(web),
        "OFFICESEC_STORE__PATH": str(work / "guard" / "guard.sqlite3"),
        "OFFICESEC_SECURITY__LOCKOUT_ATTEMPTS": str(LOCKOUT_ATTEMPTS),
        "OFFICESEC_SECURITY__HTTP_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "OFFICESEC_SECURITY__HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "OFFICESEC_SECURITY__HTTP_MAX_CONNECTIONS_PER_CLIENT": str(MAX_PER_CLIENT),
        "OFFICESEC_SECURITY__OFFICE_RATE": str(OFFICE_RATE),
        "OFFICESEC_SECURITY__OFFICE_BURST": str(OFFICE_BURST),
        "OFFICESEC_SECURITY__SSE_PER_SESSION": "2",
        "OFFICESEC_ESCALATION__AFTER_S": "600",
    })
    _spawn(stack, "o-02", ["run", "--config", str(fleet.bundle("o-02") / "office.toml")],
           {"OFFICESEC_STORAGE__PATH": str(work / "o-02.sqlite3")})

    def guard_up() -> bool:
        assert stack.procs["guard"].poll() is None, stack.log("guard")
        try:
            return httpx.get(stack.url + "/healthz", timeout=1).json()["status"] == "ok"
        except (httpx.HTTPError, ValueError):
            return False

    wait_for(guard_up, 30, "the guard station")
    wait_for(lambda: any(o["id"] == "o-02" and o["online"] for o in stack.get("/api/offices")),
             30, "o-02 online at the guard")
    return stack, broker_root


def stop(stack: Stack, broker_root: Path) -> None:
    for client in stack.clients.values():
        client.close()
    for name in ("o-02", "guard", "mosquitto"):
        proc = stack.procs.get(name)
        if proc is None:
            continue
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    shutil.rmtree(broker_root, ignore_errors=True)


def strict_json(text: str) -> Any:
    """json.loads that refuses NaN/Infinity (what a browser's JSON.parse does)."""
    def refuse(value: str) -> Any:
        raise ValueError(f"non-standard JSON constant {value}")
    return json.loads(text, parse_constant=refuse)
