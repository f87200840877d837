"""`officesec provision INVENTORY --out DIR`: configs and credentials for a whole fleet.

Idempotent: secrets already in DIR are kept, new offices are added, `--rotate`
re-issues one identity (new password, new certificate, old one revoked).
Everything is generated and validated in a staging directory next to DIR
before any file in DIR is replaced, each by an atomic rename.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.deploy import pki
from controller.deploy import render as r
from controller.deploy.inventory import FleetCfg, Inventory, fleet_settings, load_inventory
from controller.errors import EXIT_FAILURE, EXIT_OK, ConfigError, print_problems
from controller.guard.guard_config import load_guard_config
from controller.office.office_config import load_office_config
from controller.protocol.names import STATES_ACCOUNT_SUFFIX
from controller.protocol.signing import keygen
from controller.settings import read_toml

PRIVATE, PUBLIC = 0o600, 0o644
FLEET = "fleet.toml"
LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass
class Plan:
    """Every file to have in DIR (relative path -> bytes, mode) and what changed."""

    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    rotated: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def put(self, rel: str, content: bytes | str, mode: int = PUBLIC) -> None:
        """Add a file to the plan."""
        self.files[rel] = (content.encode() if isinstance(content, str) else content, mode)


class _Existing:
    """Read-only view of what an earlier run left in DIR."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def read(self, rel: str) -> bytes | None:
        try:
            return (self.out / rel).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError([f"{self.out / rel}: cannot read: {exc.strerror}"]) from None

    def pair(self, cert: str, key: str) -> pki.Issued | None:
        cert_pem, key_pem = self.read(cert), self.read(key)
        if cert_pem is None or key_pem is None:
            return None
        return pki.Issued(cert_pem, key_pem)

    def toml(self, rel: str) -> dict[str, Any]:
        return read_toml(self.out / rel) if (self.out / rel).is_file() else {}


def _ca(old: _Existing) -> pki.Issued:
    pair = old.pair("pki/ca.crt", "pki/ca.key")
    if pair is None:
        if old.read("pki/ca.crt") or old.read("pki/ca.key"):
            raise ConfigError([f"{old.out}/pki: ca.crt or ca.key is missing; restore it from "
                               "your backup (a new CA would lock out every installed office)"])
        return pki.make_ca()
    try:
        matches = pki.load_cert(pair.cert_pem).public_key() == pki.load_key(
            pair.key_pem).public_key()
    except ValueError:
        matches = False
    if not matches:
        raise ConfigError([f"{old.out}/pki: ca.crt and ca.key are unreadable or do not belong "
                           "together; restore them from your backup"])
    return pair


def _signing_keys(old: _Existing) -> tuple[bytes, bytes]:
    private, public = old.read(f"guard/{r.SIGNING_KEY}"), old.read(f"guard/{r.PUBKEY}")
    if private and public:
        return private, public
    if private or public:
        raise ConfigError([f"{old.out}/guard: only one half of the signing key pair exists; "
                           "restore the other or remove both to create a new pair"])
    with tempfile.TemporaryDirectory() as tmp:
        priv_path, pub_path = keygen(Path(tmp) / "keys")
        return priv_path.read_bytes(), pub_path.read_bytes()


@dataclass
class _Run:
    """One provisioning run: the inputs every step needs."""

    inv: Inventory
    out: Path
    rotate: list[str]
    old: _Existing
    fleet: FleetCfg
    defaults: dict[str, Any]
    plan: Plan = field(default_factory=Plan)
    revoked: set[int] = field(default_factory=set)
    passwords: dict[str, str] = field(default_factory=dict)

    def where(self, setting: str, rel: str) -> str:
        """Directory the files of `rel` live in on the target ("" = right here)."""
        return setting or str((self.out / rel).resolve())

    def identity(self, ca: pki.Issued, user: str, bundle: str) -> None:
        """Keep or (re-)issue one client's certificate and password."""
        old, plan, rotate = self.old, self.plan, user in self.rotate
        pair = old.pair(f"{bundle}/{r.CERT}", f"{bundle}/{r.KEY}")
        raw = old.read(f"{bundle}/{r.PASSWORD}")
        password = raw.decode(errors="replace").strip() if raw else ""
        sound = pair is not None and pki.leaf_is_sound(ca, pair, user) and \
            pki.serial_of(pair.cert_pem) not in self.revoked
        if pair is None or rotate or not sound:
            if pair is not None and sound:
                self.revoked.add(pki.serial_of(pair.cert_pem))
            (plan.rotated if rotate else plan.repaired if pair else plan.added).append(user)
            pair = pki.issue_client(ca, user)
        if rotate or len(password) < 16:
            password = pki.new_password()
        plan.put(f"{bundle}/{r.CERT}", pair.cert_pem)
        plan.put(f"{bundle}/{r.KEY}", pair.key_pem, PRIVATE)
        plan.put(f"{bundle}/{r.PASSWORD}", password + "\n", PRIVATE)
        plan.put(f"{bundle}/{r.CA}", ca.cert_pem)
        self.passwords[user] = password

    def build(self) -> None:
        """Decide every file's content from the inventory and what DIR already holds."""
        inv, fleet, plan, old = self.inv, self.fleet, self.plan, self.old
        ids = [e.office.id for e in inv.offices]
        problems = [f"{e.where}: id {e.office.id} is the guard station's id (fleet.guard_id)"
                    for e in inv.offices if e.office.id == fleet.guard_id]
        problems += [f"{e.where}: id {e.office.id} is the guard station's second account "
                     "(fleet.guard_id + \"-states\")" for e in inv.offices
                     if e.office.id == fleet.guard_id + STATES_ACCOUNT_SUFFIX]
        problems += [f"{e.where}: id {e.office.id} is the Home Assistant account "
                     "(fleet.homeassistant_user)"
                     for e in inv.offices if e.office.id == fleet.homeassistant_user]
        problems += [f"--rotate {rid}: no such office in the inventory" for rid in self.rotate
                     if rid not in ids and rid not in (fleet.guard_id, fleet.homeassistant_user)]
        if problems:
            raise ConfigError(problems)
        ca = _ca(old)
        crl_pem = old.read("pki/crl.pem")
        self.revoked = set(pki.crl_serials(crl_pem)) if crl_pem else set()
        private, public = _signing_keys(old)
        for entry in inv.offices:
            oid = entry.office.id
            bundle = f"offices/{oid}"
            self.identity(ca, oid, bundle)
            plan.put(f"{bundle}/{r.PUBKEY}", public)
            plan.put(f"{bundle}/{r.OFFICE_CONF}", r.dump_toml(
                r.office_config(entry, fleet, self.defaults, self.where(fleet.office_dir, bundle)),
                f"office {oid}, generated by `officesec provision`; edit the inventory instead"))
        self.identity(ca, fleet.guard_id, "guard")
        # the station's shared-subscription session (`[guard] ingest_group`): same password
        self.passwords[fleet.guard_id + STATES_ACCOUNT_SUFFIX] = self.passwords[fleet.guard_id]
        if fleet.homeassistant_user is not None:
            self.identity(ca, fleet.homeassistant_user, "homeassistant")
        plan.put(f"guard/{r.SIGNING_KEY}", private, PRIVATE)
        plan.put(f"guard/{r.PUBKEY}", public)
        plan.put(f"guard/{r.ROSTER}", r.dump_toml(r.roster(inv.offices),
                                                  "offices the guard station expects (generated)"))
        plan.put(f"guard/{r.GUARD_CONF}", r.dump_toml(
            r.guard_config(old.toml(f"guard/{r.GUARD_CONF}"), fleet,
                           self.where(fleet.guard_dir, "guard")),
            "guard station; provision rewrites [mqtt], roster_file and security.signing_key\n"
            "and keeps everything else (users, escalation, web listener)"))
        if fleet.broker_host == FleetCfg.model_fields["broker_host"].default:
            plan.notes.append(f"fleet.broker_host is the placeholder {fleet.broker_host!r}: set "
                              f"it in {self.out / FLEET} (or the inventory's [fleet]) and run "
                              "provision again")
        offices_dir = self.out / "offices"
        plan.retired = sorted(p.name for p in offices_dir.glob("*")
                              if p.is_dir() and p.name not in ids) if offices_dir.is_dir() else []
        self.broker(ca, crl_pem)
        plan.put("pki/ca.crt", ca.cert_pem)
        plan.put("pki/ca.key", ca.key_pem, PRIVATE)
        plan.put(FLEET, r.dump_toml({"fleet": fleet.model_dump(), "defaults": self.defaults},
                                    "fleet settings in effect (the inventory's [fleet] wins)"))

    def broker(self, ca: pki.Issued, crl_pem: bytes | None) -> None:
        """Server certificate, CRL, password hashes, ACL and the conf.d snippet."""
        fleet, plan = self.fleet, self.plan
        hosts = list(dict.fromkeys([fleet.broker_host, *fleet.broker_alt_names, *LOOPBACK]))
        server = self.old.pair(f"broker/{r.SERVER_CERT}", f"broker/{r.SERVER_KEY}")
        if server is None or not pki.leaf_is_sound(ca, server, fleet.broker_host) or \
                pki.server_hosts(server.cert_pem) != set(hosts):
            server = pki.issue_server(ca, hosts)
        hashes: dict[str, str] = {}
        for line in (self.old.read(f"broker/{r.PASSWD}") or b"").decode(
                errors="replace").splitlines():
            user, _, hashed = line.partition(":")
            hashes[user] = hashed
        for user, password in self.passwords.items():
            if not pki.mosquitto_verify(password, hashes.get(user, "")):
                hashes[user] = pki.mosquitto_hash(password)
        hashes = {u: h for u, h in hashes.items() if u in self.passwords}
        if crl_pem is None or not pki.crl_is_current(ca, crl_pem, self.revoked):
            crl_pem = pki.make_crl(ca, sorted(self.revoked))
        plan.put("pki/crl.pem", crl_pem)
        plan.put(f"broker/{r.CRL}", crl_pem)
        plan.put(f"broker/{r.SERVER_CERT}", server.cert_pem)
        plan.put(f"broker/{r.SERVER_KEY}", server.key_pem, PRIVATE)
        plan.put(f"broker/{r.CA}", ca.cert_pem)
        plan.put(f"broker/{r.PASSWD}", r.passwd(hashes), PRIVATE)
        plan.put(f"broker/{r.ACL}", r.acl(self.inv.offices, fleet))
        plan.put(f"broker/{r.BROKER_CONF}",
                 r.broker_conf(fleet, self.where(fleet.broker_dir, "broker")))

    def validate(self, staging: Path) -> None:
        """Load every generated config (paths pointed into staging) as the daemons will."""
        problems: list[str] = []
        for entry in self.inv.offices:
            bundle = staging / "offices" / entry.office.id
            probe = bundle / ".validate.toml"
            probe.write_text(r.dump_toml(
                r.office_config(entry, self.fleet, self.defaults, str(bundle))))
            try:
                load_office_config(probe)
            except ConfigError as exc:
                problems += [f"{entry.where}: {line}" for line in exc.problems]
            probe.unlink()
        probe = staging / "guard" / ".validate.toml"
        data = read_toml(staging / "guard" / r.GUARD_CONF)
        probe.write_text(r.dump_toml(r.guard_config(data, self.fleet, str(staging / "guard"))))
        try:
            load_guard_config(probe).roster()
        except ConfigError as exc:
            problems += [f"guard/{r.GUARD_CONF}: {line}" for line in exc.problems]
        probe.unlink()
        if problems:
            raise ConfigError(problems)


def _stage(plan: Plan, staging: Path) -> None:
    for rel, (content, mode) in plan.files.items():
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        path.chmod(mode)


def _commit(plan: Plan, staging: Path, out: Path) -> int:
    """Move changed files into DIR, each by one atomic rename; secrets before the broker."""
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    out.chmod(0o700)  # it holds the CA key
    order = sorted(plan.files, key=lambda rel: (rel.startswith("broker/"), rel))
    written = 0
    for rel in order:
        content, mode = plan.files[rel]
        target = out / rel
        if target.is_file() and target.read_bytes() == content and \
                (target.stat().st_mode & 0o777) == mode:
            continue
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.replace(staging / rel, target)
        written += 1
    for directory in [out, *(d for d in out.rglob("*") if d.is_dir() and not d.is_symlink())]:
        if directory.stat().st_mode & 0o077:
            directory.chmod(0o700)  # keys and passwords: whatever the umask or an older run did
    return written


def provision(inventory: Path, out: Path, rotate: list[str]) -> tuple[Plan, int]:
    """Validate, generate, stage and commit; raises ConfigError before writing anything."""
    inv = load_inventory(inventory)
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    # one run at a time per directory: a second run waits, then sees the first one's secrets
    lock = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = _Existing(out)
        saved = old.toml(FLEET)
        fleet = fleet_settings(saved.get("fleet", {}), inv.fleet)
        run = _Run(inv, out, rotate, old, fleet,
                   r.merge(saved.get("defaults", {}), inv.defaults))
        run.build()
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=parent))
        try:
            _stage(run.plan, staging)
            run.validate(staging)
            return run.plan, _commit(run.plan, staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        os.close(lock)  # releases the lock


def main(args: argparse.Namespace) -> int:
    """CLI entry: exit 2 for a bad inventory (nothing written), 1 for I/O failures."""
    out: Path = args.out
    try:
        plan, written = provision(args.inventory, out, list(args.rotate))
    except ConfigError as exc:
        return print_problems(exc, tail="nothing was written")
    except OSError as exc:
        print(f"provision failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    offices = sum(1 for rel in plan.files if rel.endswith(f"/{r.OFFICE_CONF}"))
    print(f"{out}: {offices} offices; {written} files written")
    for label, names in (("new", plan.added), ("rotated", plan.rotated),
                         ("re-issued (were missing or invalid)", plan.repaired)):
        if names:
            print(f"  {label}: {', '.join(names)}")
    if plan.retired:
        print(f"  not in the inventory any more, removed from the broker: "
              f"{', '.join(plan.retired)} (their bundles are left in {out}/offices)")
    for note in plan.notes:
        print(f"NOTE: {note}")
    print(f"next: copy {out}/offices/ID/ to each Pi, {out}/broker/ to the broker, "
          f"{out}/guard/ to the guard station (docs/install.md)")
    return EXIT_OK
