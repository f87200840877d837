"""Helpers for test_deploy.py: a provisioned fleet's files and an MQTT 5 probe client."""

from __future__ import annotations

import os
import pwd
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from controller.protocol.messages import Topics

T = Topics("officesec")


def wait_for(pred: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Fleet:
    out: Path
    broker_dir: Path
    port: int
    tester: tuple[Path, Path, str]  # cert, key, password of a simulator-only account
    revoked: tuple[Path, Path]  # o-20's certificate and key before `--rotate o-20`
    inventory: Path
    tester_hash: str
    broker: subprocess.Popen[bytes] | None = None

    def install_broker_files(self, work: Path) -> None:
        """Stage DIR/broker plus the test-only simulator account, install, as the docs say."""
        staged = work / f"broker-staged-{time.monotonic_ns()}"
        shutil.copytree(self.out / "broker", staged)
        with (staged / "passwd").open("a") as fh:
            fh.write(f"tester:{self.tester_hash}\n")
        with (staged / "acl").open("a") as fh:
            fh.write(f"\nuser tester\ntopic write {T.sim_input('+', '#')}\n"
                     "topic read officesec/#\n")
        _install_broker_files(staged, self.broker_dir)

    def bundle(self, office: str) -> Path:
        if office == "guard-1-states":  # the guard's second account: the guard's files
            return self.out / "guard"
        if office in ("guard-1", "homeassistant"):
            return self.out / office.removesuffix("-1")
        return self.out / "offices" / office

    def password(self, office: str) -> str:
        return (self.bundle(office) / "mqtt-password").read_text().strip()


def _install_broker_files(src: Path, dst: Path) -> None:
    """What docs/install.md tells the installer to do on the broker host."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        shutil.copy(f, dst / f.name)
    try:
        mosq = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    if os.geteuid() != 0:
        return
    os.chown(dst, 0, mosq.pw_gid)
    dst.chmod(0o750)
    for f in dst.iterdir():
        os.chown(f, 0, mosq.pw_gid)
        f.chmod(0o640)



class Client:
    """A paho MQTT 5 client that records CONNACK, PUBACK reason codes and messages."""

    def __init__(self, fleet: Fleet, user: str, *, password: str | None = None,
                 cert: tuple[Path, Path] | None = None, use_cert: bool = True,
                 client_id: str | None = None) -> None:
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2,
                             client_id=client_id or f"test-{user}-{time.time()}",
                             protocol=MQTTProtocolVersion.MQTTv5)
        if user == "tester":
            cert = cert or (fleet.tester[0], fleet.tester[1])
            password = password or fleet.tester[2]
        else:
            cert = cert or (fleet.bundle(user) / "client.crt", fleet.bundle(user) / "client.key")
            password = password if password is not None else fleet.password(user)
        self.c.username_pw_set(user, password)
        self.c.tls_set(ca_certs=str(fleet.out / "pki" / "ca.crt"),
                       certfile=str(cert[0]) if use_cert else None,
                       keyfile=str(cert[1]) if use_cert else None,
                       cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.connack: Any = None
        self.connected = threading.Event()
        self.closed = threading.Event()
        self.pubacks: dict[int, Any] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = lambda *_a: self.closed.set()
        self.c.on_publish = lambda _c, _u, mid, rc, _p: self.pubacks.__setitem__(mid, rc)
        self.c.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        self.port = fleet.port

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.connack = rc
        self.connected.set()

    def connect(self) -> Any:
        """CONNACK reason code, or the exception that stopped the TLS/TCP handshake."""
        try:
            self.c.connect("127.0.0.1", self.port, keepalive=10)
        except (OSError, ssl.SSLError) as exc:
            return exc
        self.c.loop_start()
        deadline = time.monotonic() + 10
        while not self.connected.is_set() and time.monotonic() < deadline:
            if self.closed.wait(0.05) and not self.connected.is_set():
                # TLS 1.3: a refused client certificate closes the link after connect()
                self.c.loop_stop()
                return ConnectionResetError("closed by the broker before CONNACK")
        return self.connack if self.connected.is_set() else TimeoutError("no CONNACK")

    def publish(self, topic: str, payload: bytes = b"x", retain: bool = False) -> int:
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        wait_for(lambda: info.mid in self.pubacks, 10, f"PUBACK for {topic}")
        return int(self.pubacks[info.mid].value)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()
