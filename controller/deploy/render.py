"""Text of every generated file: office and guard configs, roster, broker ACL and config.

Pure functions from validated inventory and settings to strings, so the
output is deterministic and a re-run with the same input writes nothing new.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from controller.deploy.inventory import FleetCfg, InventoryOffice
from controller.errors import ConfigError
from controller.protocol.messages import Topics
from controller.protocol.names import STATES_ACCOUNT_SUFFIX

CA, CERT, KEY, PASSWORD, PUBKEY = ("ca.crt", "client.crt", "client.key", "mqtt-password",
                                   "guard-signing.pub")
SIGNING_KEY, ROSTER, GUARD_CONF, OFFICE_CONF = ("guard-signing.key", "roster.toml", "guard.toml",
                                                "office.toml")
SERVER_CERT, SERVER_KEY, CRL, PASSWD, ACL = ("server.crt", "server.key", "crl.pem", "passwd",
                                             "acl")
BROKER_CONF = "officesec.conf"
# keys provision owns; an inventory override of them is an error, not silently lost
OWNED = {"mqtt": ("host", "port", "prefix", "username", "password_file", "tls_ca", "tls_cert",
                  "tls_key"),
         "security": ("guard_public_key",), "homeassistant": ("prefix",)}
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


# ---------------------------------------------------------------- TOML writer

def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else json.dumps(name, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # JSON escapes are valid TOML escapes; TOML also forbids a raw DEL
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def dump_toml(data: Mapping[str, Any], header: str = "") -> str:
    """Serialise plain config data (scalars, lists, tables, arrays of tables) to TOML."""
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    _emit(out, data, [])
    return "\n".join(out).strip() + "\n"


def _emit(out: list[str], data: Mapping[str, Any], path: list[str]) -> None:
    data = {k: v for k, v in data.items() if v is not None}  # TOML has no null: leave it out
    for k, v in data.items():
        if not isinstance(v, dict) and not _is_table_array(v):
            out.append(f"{_key(k)} = {_value(v)}")
    for k, v in data.items():
        full = [*path, _key(k)]
        if isinstance(v, dict):
            out += ["", f"[{'.'.join(full)}]"]
            _emit(out, v, full)
        elif _is_table_array(v):
            for item in v:
                out += ["", f"[[{'.'.join(full)}]]"]
                _emit(out, item, full)


# ------------------------------------------------------------------- configs

def _join(directory: str, name: str) -> str:
    return f"{directory.rstrip('/')}/{name}"


def merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge of config tables; `extra` wins."""
    merged = dict(base)
    for k, v in extra.items():
        merged[k] = merge(merged[k], v) if isinstance(v, dict) and isinstance(
            merged.get(k), dict) else v
    return merged


def office_config(entry: InventoryOffice, fleet: FleetCfg, defaults: Mapping[str, Any],
                  base: str) -> dict[str, Any]:
    """The office's config data; files are referenced under `base` (its dir on the Pi)."""
    problems = [f"{entry.where}: {section}.{key}: set by provision, remove it from the inventory"
                for layer in (defaults, entry.overrides)
                for section, keys in OWNED.items()
                for key in keys if key in layer.get(section, {})]
    if problems:
        raise ConfigError(problems)
    office = entry.office.model_dump()
    data: dict[str, Any] = {"office": office}
    data = merge(data, defaults)
    data = merge(data, entry.overrides)
    mqtt = {"host": fleet.broker_host, "port": fleet.broker_port, "prefix": fleet.prefix,
            "username": entry.office.id, "password_file": _join(base, PASSWORD),
            "tls_ca": _join(base, CA), "tls_cert": _join(base, CERT), "tls_key": _join(base, KEY)}
    data["mqtt"] = merge(data.get("mqtt", {}), mqtt)
    data["security"] = merge(data.get("security", {}),
                             {"guard_public_key": _join(base, PUBKEY)})
    if data.get("homeassistant", {}).get("discovery"):  # the ACL allows only the fleet's prefix
        data["homeassistant"] = merge(data["homeassistant"],
                                      {"prefix": fleet.homeassistant_prefix})
    order = ["office", "mqtt", "hardware", "door", "alarm", "security", "storage",
             "homeassistant", "log"]
    return {k: data[k] for k in sorted(data, key=lambda k: order.index(k) if k in order else 99)}


def roster(offices: Sequence[InventoryOffice]) -> dict[str, Any]:
    """The guard's roster: every office it must expect, with its location."""
    return {"offices": [e.office.model_dump() for e in offices]}


def guard_config(existing: Mapping[str, Any], fleet: FleetCfg, base: str) -> dict[str, Any]:
    """The guard config: provision's keys over whatever the operator added (users, web...)."""
    data = dict(existing)
    data.pop("offices", None)  # the roster file is the single source of the roster
    data["guard"] = merge(data.get("guard", {}), {"id": fleet.guard_id})
    data["mqtt"] = merge(data.get("mqtt", {}), {
        "host": fleet.broker_host, "port": fleet.broker_port, "prefix": fleet.prefix,
        "username": fleet.guard_id, "password_file": _join(base, PASSWORD),
        "tls_ca": _join(base, CA), "tls_cert": _join(base, CERT), "tls_key": _join(base, KEY)})
    data["security"] = merge(data.get("security", {}), {"signing_key": _join(base, SIGNING_KEY)})
    data["roster_file"] = _join(base, ROSTER)
    return data


# -------------------------------------------------------------------- broker

def acl(offices: Sequence[InventoryOffice], fleet: FleetCfg) -> str:
    """Mosquitto ACL: allow-list per office (%u) and a guard that may only command.

    Offices write only their own status topics, read only their own commands,
    their own simulated inputs and their neighbours' alarms. The guard reads
    everything under the prefix and writes only `cmd` and its own topics.
    """
    t = Topics(fleet.prefix)
    me = "%u"
    lines = [
        "# officesec broker ACL, generated by `officesec provision`: do not edit by hand.",
        "# Mosquitto ACLs are allow-lists: whatever is not listed is denied.",
        "",
        "# every office (username = office id)",
        f"pattern readwrite {t.availability(me)}",
        f"pattern readwrite {t.state(me)}",
        f"pattern readwrite {t.event(me)}",
        f"pattern readwrite {t.alarm(me)}",
        f"pattern readwrite {t.sim_output(me)}",
        f"pattern read {t.cmd(me)}",
        f"pattern read {t.sim_input(me, '#')}",
        "# Home Assistant discovery (only used with homeassistant.discovery = true)",
        f"pattern write {fleet.homeassistant_prefix}/device/officesec_{me}/config",
        f"pattern read {fleet.homeassistant_prefix}/status",
        "",
        "# the guard station",
        f"user {fleet.guard_id}",
        *_not_an_office(fleet.guard_id, fleet),
        f"topic read {fleet.prefix}/#",
        f"topic write {t.cmd('+')}",
        f"topic readwrite {fleet.prefix}/guard/{fleet.guard_id}/#",
        "",
        "# the guard station's share of the states (`[guard] ingest_group`): read-only",
        f"user {fleet.guard_id}{STATES_ACCOUNT_SUFFIX}",
        *_not_an_office(fleet.guard_id + STATES_ACCOUNT_SUFFIX, fleet),
        f"topic read {t.all_offices('state')}",
    ]
    if fleet.homeassistant_user is not None:
        ha = fleet.homeassistant_prefix
        lines += ["", "# Home Assistant: reads office status, writes only its birth message",
                  f"user {fleet.homeassistant_user}",
                  *_not_an_office(fleet.homeassistant_user, fleet), f"topic read {ha}/#",
                  f"topic write {ha}/status", f"topic read {t.all_offices('state')}",
                  f"topic read {t.all_offices('event')}",
                  f"topic read {t.all_offices('availability')}"]
    for entry in offices:
        if entry.office.neighbors:
            lines += ["", f"# neighbours of {entry.office.id}", f"user {entry.office.id}"]
            lines += [f"topic read {t.alarm(n)}" for n in entry.office.neighbors]
    return "\n".join(lines) + "\n"


def _not_an_office(user: str, fleet: FleetCfg) -> list[str]:
    """The office patterns apply to every user: deny them to accounts that are not offices.

    Otherwise the guard or Home Assistant could pose as an office named after
    themselves. In Mosquitto a user's `deny` is checked before any pattern.
    """
    office_root = Topics(fleet.prefix).availability(user).removesuffix("/availability")
    return [f"topic deny {office_root}/#",
            f"topic deny {fleet.homeassistant_prefix}/device/officesec_{user}/config"]


def passwd(hashes: Mapping[str, str]) -> str:
    """Mosquitto password file: one `user:$7$...` line per user, sorted."""
    return "".join(f"{user}:{hashes[user]}\n" for user in sorted(hashes))


def broker_conf(fleet: FleetCfg, base: str) -> str:
    """The conf.d snippet: one TLS listener, certificate AND password, ACL, persistence.

    It leaves pid_file, persistence_location and log_dest to Debian's main
    mosquitto.conf (repeating a string option there is a startup error).
    """
    return f"""# officesec broker, generated by `officesec provision`.
# Install as /etc/mosquitto/conf.d/officesec.conf (see docs/install.md).

# security settings below apply to every listener, so none is left open by mistake
per_listener_settings false
allow_anonymous false
password_file {_join(base, PASSWD)}
acl_file {_join(base, ACL)}

# alarms survive a broker restart; a short autosave bounds what a power cut loses
persistence true
autosave_interval 10
# the guard's persistent session keeps its queue through an outage: 100000 messages
# are about half an hour of 50 offices' 1 s heartbeats (plus every event); the guard
# repairs anything beyond that from the offices' outboxes (seq gaps -> resend)
persistent_client_expiration 14d
max_queued_messages 100000
max_inflight_messages 100
# alarms are tiny and must not wait for Nagle
set_tcp_nodelay true
# no legitimate payload is near this; larger packets are refused unread
max_packet_size 131072

listener {fleet.broker_port}
protocol mqtt
cafile {_join(base, CA)}
certfile {_join(base, SERVER_CERT)}
keyfile {_join(base, SERVER_KEY)}
crlfile {_join(base, CRL)}
require_certificate true
use_identity_as_username false
# the client id is the user name: no account can take over another's session
# (one connection per office; a second one closes the first)
use_username_as_clientid true
tls_version tlsv1.2
"""
