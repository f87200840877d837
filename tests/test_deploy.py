"""A provisioned fleet on a real, secured Mosquitto: what flows, and what is refused.

20 offices are provisioned; the broker runs with the generated conf.d snippet,
password file, ACL, server certificate and CRL, installed with the permissions
docs/install.md gives them (root:mosquitto, 0640). Two office daemons and the
guard station run from their generated configs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from controller.deploy import pki
from tests.broker import free_port
from tests.test_deploy_support import Client, Fleet, T, wait_for

REPO = Path(__file__).resolve().parent.parent
OFFICESEC = str(REPO / ".venv" / "bin" / "officesec")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
N_OFFICES = 20
pytestmark = [
    pytest.mark.skipif(not Path(MOSQUITTO).exists(), reason="mosquitto not installed"),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    work = tmp_path_factory.mktemp("deploy")
    # the broker runs as user mosquitto: its files live where that user can reach them
    broker_root = Path(tempfile.mkdtemp(prefix="officesec-deploy-"))
    broker_root.chmod(0o755)
    broker_dir = broker_root / "officesec"
    port = free_port()
    out = work / "fleet"
    out.mkdir()
    (out / "fleet.toml").write_text(
        f'[fleet]\nbroker_host = "127.0.0.1"\nbroker_port = {port}\noffice_dir = ""\n'
        f'guard_dir = ""\nbroker_dir = "{broker_dir}"\nhomeassistant_user = "homeassistant"\n'
        '[defaults.hardware]\npin_factory = "mock"\n[defaults.alarm]\nheartbeat_s = 0.5\n')
    rows = ["id,site,building,floor,room,label,neighbors"]
    for i in range(1, N_OFFICES + 1):
        nb = " ".join(f"o-{j:02d}" for j in (i - 1, i + 1) if 1 <= j <= N_OFFICES)
        rows.append(f"o-{i:02d},Jobcenter,Haus A,EG,{100 + i},Beratung {i},{nb}")
    inventory = work / "inventory.csv"
    inventory.write_text("\n".join(rows) + "\n")
    for extra in ([], ["--rotate", "o-20"]):
        if extra:
            old = work / "o-20-old"
            old.mkdir()
            for name in ("client.crt", "client.key"):
                shutil.copy(out / "offices" / "o-20" / name, old / name)
        res = subprocess.run([OFFICESEC, "provision", str(inventory), "--out", str(out), *extra],
                             capture_output=True, text=True, timeout=120, check=False)
        assert res.returncode == 0, res.stderr

    # a simulator account for this test only: it may press the mock buttons, nothing else
    ca = pki.Issued((out / "pki" / "ca.crt").read_bytes(), (out / "pki" / "ca.key").read_bytes())
    tester = pki.issue_client(ca, "tester")
    (work / "tester.crt").write_bytes(tester.cert_pem)
    (work / "tester.key").write_bytes(tester.key_pem)
    tester_pw = pki.new_password()
    fleet = Fleet(out, broker_dir, port, (work / "tester.crt", work / "tester.key", tester_pw),
                  (old / "client.crt", old / "client.key"), inventory,
                  pki.mosquitto_hash(tester_pw))
    fleet.install_broker_files(work)

    # a main config like Debian's /etc/mosquitto/mosquitto.conf, plus conf.d
    confd = broker_root / "conf.d"
    confd.mkdir()
    shutil.copy(out / "broker" / "officesec.conf", confd / "officesec.conf")
    data = broker_root / "data"
    data.mkdir()
    data.chmod(0o777)
    main_conf = broker_root / "mosquitto.conf"
    main_conf.write_text(f"pid_file {data}/mosquitto.pid\npersistence true\n"
                         f"persistence_location {data}/\nlog_dest stderr\n"
                         f"log_type error\nlog_type warning\ninclude_dir {confd}\n")
    log = (work / "mosquitto.log").open("wb")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(main_conf)], stdout=log, stderr=log)
    try:
        def accepting() -> bool:
            assert proc.poll() is None, (work / "mosquitto.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                return False
            return True

        wait_for(accepting, 10, "mosquitto to listen")
        fleet.broker = proc
        yield fleet
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        shutil.rmtree(broker_root, ignore_errors=True)


@pytest.fixture
def connect(fleet: Fleet) -> Iterator[Callable[..., Client]]:
    clients: dict[str, Client] = {}  # one connection per user: the broker allows no more

    def make(user: str) -> Client:
        if user not in clients:
            client = Client(fleet, user)
            rc = client.connect()
            assert not isinstance(rc, Exception) and not rc.is_failure, f"{user}: {rc}"
            clients[user] = client
        return clients[user]

    yield make
    for client in clients.values():
        client.close()


NOT_AUTHORIZED = 135


def test_office_writes_only_its_own_status_topics(connect: Callable[..., Client]) -> None:
    a = connect("o-05")
    assert a.publish(T.event("o-05")) < 0x80
    assert a.publish(T.sim_output("o-05")) < 0x80
    for topic in (T.state("o-06"), T.event("o-06"), T.alarm("o-06"), T.availability("o-06"),
                  T.cmd("o-05"), T.cmd("o-06"), T.sim_input("o-06", "panic"),
                  T.guard_availability("guard-1"), "officesec/anything", "elsewhere/x"):
        assert a.publish(topic) == NOT_AUTHORIZED, topic


def test_guard_commands_but_cannot_forge_office_messages(connect: Callable[..., Client]) -> None:
    guard = connect("guard-1")
    assert guard.publish(T.cmd("o-15")) < 0x80
    assert guard.publish(T.guard_availability("guard-1"), b"online", retain=True) < 0x80
    for topic in (T.event("o-15"), T.state("o-15"), T.alarm("o-15"), T.availability("o-15"),
                  T.sim_input("o-15", "panic"), T.guard_availability("guard-2"),
                  # the office patterns must not let it pose as an office named like itself
                  T.event("guard-1"), T.alarm("guard-1"), T.availability("guard-1")):
        assert guard.publish(topic) == NOT_AUTHORIZED, topic


def test_home_assistant_reads_status_and_writes_only_its_birth_message(
        connect: Callable[..., Client]) -> None:
    ha = connect("homeassistant")
    ha.c.subscribe("officesec/#", qos=1)
    time.sleep(0.3)
    assert ha.publish("homeassistant/status", b"online") < 0x80
    for topic in (T.cmd("o-04"), T.event("o-04"), T.sim_input("o-04", "panic"),
                  "homeassistant/device/officesec_o-04/config", T.event("homeassistant"),
                  T.alarm("homeassistant"), "homeassistant/device/officesec_homeassistant/config"):
        assert ha.publish(topic) == NOT_AUTHORIZED, topic
    connect("o-04").publish(T.event("o-04"), b"event")
    connect("guard-1").publish(T.cmd("o-04"), b"secret command")
    wait_for(lambda: (T.event("o-04"), b"event") in ha.messages, 10, "HA to see the event")
    time.sleep(0.3)
    assert (T.cmd("o-04"), b"secret command") not in ha.messages


def test_guard_states_account_reads_shared_states_beside_the_guard_and_nothing_else(
        connect: Callable[..., Client]) -> None:
    """`[guard] ingest_group`: the station's second session, on its own account (issue 19)."""
    guard = connect("guard-1")
    states = connect("guard-1-states")  # a second connection of its own: the guard stays on
    states.c.subscribe([(f"$share/officesec-ingest/{T.all_offices('state')}", 0),
                        (T.all_offices("event"), 1), (T.cmd("+"), 1)])
    time.sleep(0.3)
    connect("o-09").publish(T.state("o-09"), b"state")
    connect("o-09").publish(T.event("o-09"), b"event")
    guard.publish(T.cmd("o-09"), b"command")
    wait_for(lambda: (T.state("o-09"), b"state") in states.messages, 10, "the shared state")
    time.sleep(0.3)
    assert {t for t, _p in states.messages} == {T.state("o-09")}  # no events, no commands
    for topic in (T.cmd("o-09"), T.state("o-09"), T.event("guard-1-states"),
                  T.guard_availability("guard-1")):
        assert states.publish(topic) == NOT_AUTHORIZED, topic
    assert not guard.closed.is_set(), "the states session knocked the guard off"


def test_office_reads_own_cmd_and_neighbour_alarms_only(connect: Callable[..., Client]) -> None:
    reader = connect("o-10")
    reader.c.subscribe("officesec/#", qos=1)
    time.sleep(0.3)  # SUBACK; reads are filtered per message, not at subscribe time
    connect("o-09").publish(T.alarm("o-09"), b"neighbour alarm")
    connect("o-12").publish(T.alarm("o-12"), b"not a neighbour")
    connect("o-11").publish(T.event("o-11"), b"neighbour event")
    connect("guard-1").publish(T.cmd("o-10"), b"command for o-10")
    connect("guard-1").publish(T.cmd("o-11"), b"command for o-11")
    wait_for(lambda: len(reader.messages) >= 2, 10, "o-10 to receive its messages")
    time.sleep(0.5)  # anything it must not see would have arrived by now
    assert sorted(reader.messages) == [(T.alarm("o-09"), b"neighbour alarm"),
                                       (T.cmd("o-10"), b"command for o-10")]


def test_refused_without_certificate_with_wrong_password_or_revoked_cert(fleet: Fleet) -> None:
    no_cert = Client(fleet, "o-03", use_cert=False).connect()
    assert isinstance(no_cert, Exception) or no_cert.is_failure, no_cert
    wrong_pw = Client(fleet, "o-03", password="not-the-password").connect()
    # mosquitto 2.0 answers 135 (not authorised); 134 (bad user name or password) is also fine
    assert not isinstance(wrong_pw, Exception) and wrong_pw.value in (134, 135), wrong_pw
    unknown = Client(fleet, "o-99", password="whatever",
                     cert=(fleet.bundle("o-03") / "client.crt",
                           fleet.bundle("o-03") / "client.key")).connect()
    assert not isinstance(unknown, Exception) and unknown.is_failure, unknown
    # o-20 was rotated: its new password with its old (revoked) certificate is refused
    revoked = Client(fleet, "o-20", cert=fleet.revoked).connect()
    assert isinstance(revoked, Exception) or revoked.is_failure, revoked
    current = Client(fleet, "o-20")
    rc = current.connect()
    assert not isinstance(rc, Exception) and not rc.is_failure, rc
    current.close()


def test_no_account_can_take_over_another_ones_session(fleet: Fleet) -> None:
    victim = Client(fleet, "o-07", client_id="officesec-o-07")
    assert not victim.connect().is_failure
    try:
        # a compromised Pi claims the victim's client id: the broker uses its user name instead
        intruder = Client(fleet, "o-08", client_id="officesec-o-07")
        assert not intruder.connect().is_failure
        time.sleep(0.5)
        assert not victim.closed.is_set(), "o-07 was knocked off by o-08"
        intruder.close()
    finally:
        victim.close()


def test_selftest_passes_against_the_secured_broker(fleet: Fleet) -> None:
    res = subprocess.run([OFFICESEC, "selftest", "--config",
                          str(fleet.bundle("o-17") / "office.toml")],
                         capture_output=True, text=True, timeout=60, check=False)
    rows = dict(re.findall(r"^(\S+(?: \S+)?)\s+(PASS|FAIL|----)  ", res.stdout, re.MULTILINE))
    for name in ("config", "gpio", "broker", "subscribe", "round trip", "guard key",
                 "certificate"):
        assert rows.get(name) == "PASS", res.stdout
    assert res.returncode == sum(1 for v in rows.values() if v == "FAIL")


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    fh = log.open("wb")
    return subprocess.Popen([OFFICESEC, *args], env={**os.environ, **env}, stdout=fh, stderr=fh)


def test_alarm_flows_office_to_guard_and_ack_flows_back(fleet: Fleet, tmp_path: Path,
                                                        connect: Callable[..., Client]) -> None:
    guard_toml = fleet.bundle("guard-1") / "guard.toml"
    hashed = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash("pw-guard")
    guard_toml.write_text(guard_toml.read_text() + "\n[[users]]\nname = \"anna\"\n"
                          f"password_hash = \"{hashed}\"\nrole = \"guard\"\n")
    web = free_port()
    procs = [
        _start(["run", "--config", str(fleet.bundle(o) / "office.toml")],
               {"OFFICESEC_STORAGE__PATH": str(tmp_path / f"{o}.db")}, tmp_path / f"{o}.log")
        for o in ("o-01", "o-02")
    ]
    procs.append(_start(["guard", "--config", str(guard_toml)],
                        {"OFFICESEC_GUARD__LISTEN_PORT": str(web),
                         "OFFICESEC_STORE__PATH": str(tmp_path / "guard.db")},
                        tmp_path / "guard.log"))
    watcher = connect("tester")
    watcher.c.subscribe("officesec/#", qos=1)
    try:
        def online(office: str) -> bool:
            return (T.availability(office), b"online") in watcher.messages

        for office in ("o-01", "o-02"):
            wait_for(lambda o=office: online(o), 30, f"{office} online")  # type: ignore[misc]
        http = httpx.Client(base_url=f"http://127.0.0.1:{web}", auth=("anna", "pw-guard"),
                            timeout=10)

        def guard_sees_offices() -> bool:
            try:
                offices = http.get("/api/offices").json()
            except (httpx.HTTPError, ValueError):
                return False
            return len(offices) == N_OFFICES and all(
                o.get("availability") == "online" for o in offices if o["id"] in ("o-01", "o-02"))

        wait_for(guard_sees_offices, 30, "the guard to list the roster with o-01/o-02 online")

        assert watcher.publish(T.sim_input("o-01", "panic"), b"press") < 0x80
        watcher.publish(T.sim_input("o-01", "panic"), b"release")

        def open_alarm() -> dict[str, Any] | None:
            alarms = http.get("/api/alarms", params={"open": "true"}).json()
            return next((a for a in alarms if a["office"] == "o-01" and a["kind"] == "panic"), None)

        alarm = wait_for(open_alarm, 20, "the guard to show o-01's alarm")

        def sim_output(office: str) -> dict[str, bool] | None:
            outs = [json.loads(p) for t, p in watcher.messages if t == T.sim_output(office)]
            return outs[-1] if outs else None

        wait_for(lambda: (sim_output("o-02") or {}).get("neighbor_led"), 20,
                 "o-02's neighbour indicator")
        res = http.post(f"/api/alarms/{alarm['alarm_id']}/ack")
        assert res.status_code == 200, res.text
        wait_for(lambda: (sim_output("o-01") or {}).get("ack_led"), 20, "o-01's ack indicator")
        assert (sim_output("o-01") or {}).get("relay") is False
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in sorted(tmp_path.glob("*.log")):
            print(log.name, log.read_text()[-3000:])  # shown only when the test fails


def test_reload_applies_added_offices_and_rotated_passwords(fleet: Fleet, tmp_path: Path) -> None:
    """docs/install.md: re-run provision, install passwd + acl, `systemctl reload mosquitto`.

    Runs last in this module: it changes the shared broker's accounts.
    """
    old_password = fleet.password("o-14")
    fleet.inventory.write_text(fleet.inventory.read_text() + "o-21,Jobcenter,Haus B,1,201,Neu,\n")
    res = subprocess.run([OFFICESEC, "provision", str(fleet.inventory), "--out", str(fleet.out),
                          "--rotate", "o-14"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 0, res.stderr
    def accepted(user: str, **kw: Any) -> bool:
        client = Client(fleet, user, **kw)
        rc = client.connect()
        ok = not isinstance(rc, Exception) and not rc.is_failure
        client.close()
        return ok

    assert not accepted("o-21")  # not installed on the broker yet
    fleet.install_broker_files(tmp_path)
    assert fleet.broker is not None
    fleet.broker.send_signal(signal.SIGHUP)  # what `systemctl reload mosquitto` sends

    wait_for(lambda: accepted("o-21"), 10, "the new office to be accepted after SIGHUP")
    assert accepted("o-14")  # new password and new certificate
    assert not accepted("o-14", password=old_password)
