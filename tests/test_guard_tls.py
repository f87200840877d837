"""HTTPS on the guard station, and the MQTT 3.1.1 persistent session."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.broker import Mosquitto
from tests.guard_proc import GuardProc, wait_for
from tests.office_sim import OfficeSim


def _self_signed(workdir: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    workdir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = workdir / "web.crt", workdir / "web.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_secure_cookies_and_hsts(tmp_path: Path, broker: Mosquitto) -> None:
    cert, key = _self_signed(tmp_path / "tls")
    guard = GuardProc(tmp_path / "guard", broker.port,
                      guard={"tls_cert": str(cert), "tls_key": str(key)})
    guard.url = guard.url.replace("http://", "https://")
    guard.client = httpx.Client(base_url=guard.url, verify=_ctx(cert), timeout=15,
                                auth=("alice", "alice-pw"))
    guard.start(wait=False)
    try:
        wait_for(lambda: _ready(guard.url, cert), timeout=20, what="https up")
        resp = httpx.get(guard.url + "/login", verify=_ctx(cert))
        assert resp.status_code == 200
        assert resp.headers["strict-transport-security"].startswith("max-age=")
        assert "Secure" in resp.headers["set-cookie"]
        assert guard.client.get("/api/offices").status_code == 200
    finally:
        guard.close()


def _ctx(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def _ready(url: str, cert: Path) -> bool:
    try:
        return httpx.get(url + "/healthz", verify=_ctx(cert), timeout=1).json()["status"] == "ok"
    except (httpx.HTTPError, ValueError, KeyError):
        return False


def test_mqtt_311_session_keeps_what_came_while_down(tmp_path: Path,
                                                     persistent_broker: Mosquitto) -> None:
    guard = GuardProc(tmp_path / "guard", persistent_broker.port, mqtt={"protocol": "3.1.1"})
    guard.start()
    sim = OfficeSim(persistent_broker.port)
    try:
        sim.event("controller_started")
        wait_for(lambda: len(guard.get("/api/events")) == 1, what="first event")
        assert guard.stop() == 0
        for _ in range(5):
            sim.event("door_opened")
        guard.start()
        wait_for(lambda: len(guard.get("/api/events")) == 6, what="6 events")
        assert sorted(e["seq"] for e in guard.get("/api/events")) == [1, 2, 3, 4, 5, 6]
    finally:
        sim.close()
        guard.close()
