"""Credentials for the fleet: a private CA, TLS certificates, broker password hashes.

EC P-256 keys (accepted by Mosquitto, OpenSSL 3 and paho on every Pi OS).
Pure functions over bytes: the caller decides where anything is stored.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Pis without a real-time clock can boot a little in the past; backdating avoids
# "certificate not yet valid" before NTP has synchronised.
BACKDATE = dt.timedelta(days=1)
CA_DAYS = 20 * 365
CERT_DAYS = 10 * 365
# An expired CRL makes OpenSSL refuse every client: it is re-signed on every
# provision run and valid for as long as the certificates it covers.
CRL_DAYS = CERT_DAYS

PBKDF2_ITERATIONS = 101  # mosquitto_passwd's default for $7$
PBKDF2_SALT_BYTES = 12


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (file mode 0600 protects it)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """Parse a PEM private key; ValueError when it is not an EC key."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("not an EC private key")
    return key


def load_cert(pem: bytes) -> x509.Certificate:
    """Parse a PEM certificate (ValueError when malformed)."""
    return x509.load_pem_x509_certificate(pem)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "officesec"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str = "officesec fleet CA") -> Issued:
    """A self-signed CA that may only sign end-entity certificates and CRLs."""
    key = new_key()
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), key_pem(key))


def _sign_leaf(ca: Issued, common_name: str, usage: x509.ObjectIdentifier,
               alt_names: list[x509.GeneralName]) -> Issued:
    ca_cert, ca_key = load_cert(ca.cert_pem), load_key(ca.key_pem)
    key = new_key()
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Issued(cert.public_bytes(serialization.Encoding.PEM), key_pem(key))


def issue_client(ca: Issued, username: str) -> Issued:
    """A client certificate whose CN is the MQTT username."""
    return _sign_leaf(ca, username, ExtendedKeyUsageOID.CLIENT_AUTH, [])


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue_server(ca: Issued, hosts: list[str]) -> Issued:
    """The broker's certificate, valid for every name and address in `hosts`."""
    return _sign_leaf(ca, hosts[0], ExtendedKeyUsageOID.SERVER_AUTH,
                      [_general_name(h) for h in dict.fromkeys(hosts)])


def server_hosts(cert_pem: bytes) -> set[str]:
    """The DNS names and IP addresses a server certificate covers."""
    cert = load_cert(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = set(san.get_values_for_type(x509.DNSName))
    names.update(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return names


def leaf_is_sound(ca: Issued, leaf: Issued, common_name: str) -> bool:
    """True when the pair matches, the CA signed it, it names `common_name` and is not expiring.

    Lets a re-run heal half-written or foreign credentials instead of keeping them.
    """
    try:
        cert, key = load_cert(leaf.cert_pem), load_key(leaf.key_pem)
        ca_cert = load_cert(ca.cert_pem)
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    if cert.public_key() != key.public_key():
        return False
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cn or cn[0].value != common_name:
        return False
    return cert.not_valid_after_utc - _now() > dt.timedelta(days=90)


def serial_of(cert_pem: bytes) -> int:
    """The serial number of a PEM certificate."""
    return load_cert(cert_pem).serial_number


def make_crl(ca: Issued, revoked_serials: list[int]) -> bytes:
    """A CRL signed by the CA listing every revoked serial (PEM)."""
    ca_cert, ca_key = load_cert(ca.cert_pem), load_key(ca.key_pem)
    now = _now()
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
               .last_update(now - BACKDATE).next_update(now + dt.timedelta(days=CRL_DAYS)))
    for serial in sorted(set(revoked_serials)):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build())
    crl = builder.sign(ca_key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)


def crl_serials(crl_pem: bytes) -> list[int]:
    """The revoked serials listed in a PEM CRL."""
    return [entry.serial_number for entry in x509.load_pem_x509_crl(crl_pem)]


def new_password() -> str:
    """A random broker password (URL-safe, 192 bits)."""
    return secrets.token_urlsafe(24)


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """Mosquitto's ``$7$`` PBKDF2-SHA512 password hash, as mosquitto_passwd writes it."""
    salt = salt if salt is not None else secrets.token_bytes(PBKDF2_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    return (f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}"
            f"${base64.b64encode(digest).decode()}")


def mosquitto_verify(password: str, hashed: str) -> bool:
    """True when `hashed` (a ``$7$`` entry) is the hash of `password`."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except (ValueError, binascii.Error):
        return False
    if not 1 <= iterations <= 10_000_000:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)


def crl_is_current(ca: Issued, crl_pem: bytes, revoked: set[int]) -> bool:
    """True when the CRL is the CA's, lists exactly `revoked` and stays valid for a year."""
    try:
        crl = x509.load_pem_x509_crl(crl_pem)
        if not crl.is_signature_valid(load_cert(ca.cert_pem).public_key()):  # type: ignore[arg-type]
            return False
    except (ValueError, TypeError):
        return False
    listed = {entry.serial_number for entry in crl}
    nxt = crl.next_update_utc
    return listed == revoked and nxt is not None and nxt - _now() > dt.timedelta(days=365)
