"""Guard station configuration (TOML + ``OFFICESEC_<SECTION>__<KEY>`` overrides)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from controller.guard.db import is_postgres, redact_url
from controller.guard.escalation_config import EscalationCfg
from controller.settings import (
    LogCfg,
    MqttCfg,
    OfficeIdStr,
    ReadableFile,
    Section,
    Settings,
    Text,
    build,
    raise_problems,
    read_toml,
)

GuardId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,32}$")]


class GuardCfg(Section):
    """Identity and web listener of this guard station."""

    id: GuardId = "guard-1"
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(8080, ge=0, le=65535)
    tls_cert: ReadableFile | None = None
    tls_key: ReadableFile | None = None
    allow_plain_http_remote: bool = False
    demo: bool = False
    # --- console (#15, engineer C): language and clock of every page -------------------
    # several stations share the offices' states (MQTT 5 `$share`; PostgreSQL store): share.py
    ingest_group: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None
    language: Literal["de", "en"] = "de"
    timezone: Annotated[str, StringConstraints(max_length=64)] | None = None  # None: the host's

    @model_validator(mode="after")
    def _timezone(self) -> GuardCfg:
        if self.timezone is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415

            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise_problems([f"timezone: unknown IANA time zone {self.timezone!r} "
                                "(for example Europe/Berlin)"])
        return self
    # --- end of console keys -------------------------------------------------------------

    @model_validator(mode="after")
    def _tls(self) -> GuardCfg:
        problems = []
        if (self.tls_cert is None) != (self.tls_key is None):
            problems.append("tls_cert: tls_cert and tls_key must be given together")
        loopback = self.listen_host in ("127.0.0.1", "::1", "localhost")
        if self.tls_cert is None and not loopback and not self.allow_plain_http_remote:
            problems.append("listen_host: plain HTTP is only served on loopback; configure "
                            "tls_cert/tls_key or set allow_plain_http_remote = true")
        raise_problems(problems)
        return self


class StoreCfg(Section):
    """Where events and alarms are kept, and for how long."""

    path: str = "/var/lib/officesec/guard.sqlite3"
    url: str | None = Field(None, min_length=1, max_length=2000)
    """`postgresql://…`: a PostgreSQL store shared by several stations (then `path` is unused)."""
    retention_days: float = Field(365, ge=1, le=3650)

    @model_validator(mode="after")
    def _url(self) -> StoreCfg:
        if self.url is not None and not is_postgres(self.url):
            got = redact_url(self.url)[:60]
            raise_problems([f"url: must start with postgresql:// (got {got!r}); leave it out"
                            " for the embedded SQLite store at `path`"])
        return self

    @property
    def target(self) -> str:
        """What `Store` opens: the PostgreSQL URL when given, else the SQLite file."""
        return self.url or self.path


class GuardSecurityCfg(Section):
    """Command signing, sessions, login throttling and the budgets against floods.

    Every key is documented in docs/guard-station.md (section "[security]").
    """

    signing_key: ReadableFile | None = None
    command_timeout_s: float = Field(5, ge=0.5, le=60)
    session_max_age_s: int = Field(12 * 3600, ge=300, le=7 * 24 * 3600)
    session_idle_s: int = Field(1800, ge=60, le=7 * 24 * 3600)
    lockout_attempts: int = Field(5, ge=1, le=100)
    lockout_s: float = Field(300, ge=1, le=86400)
    sse_per_session: int = Field(4, ge=1, le=64)
    office_rate: float = Field(100, ge=1, le=100_000)
    office_burst: float = Field(1000, ge=1, le=1_000_000)
    alarm_rate: float = Field(20, ge=1, le=10_000)
    alarm_burst: float = Field(200, ge=1, le=100_000)
    max_unknown_offices: int = Field(1000, ge=0, le=100_000)
    http_header_timeout_s: float = Field(10, ge=1, le=300)
    http_max_connections: int = Field(512, ge=8, le=100_000)
    http_max_connections_per_client: int = Field(64, ge=4, le=100_000)
    trust_forwarded_for: bool = False

    @model_validator(mode="after")
    def _ages(self) -> GuardSecurityCfg:
        if self.session_idle_s > self.session_max_age_s:
            raise_problems(["session_idle_s: must not be longer than session_max_age_s"])
        return self


ARGON2_MIN_MEMORY_KIB = 19456
ARGON2_MIN_TIME = 2
_ARGON2 = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$")


def argon2_problem(value: str) -> str | None:
    """Why a password hash is too weak for the guard station (None when it is fine).

    argon2id only, with at least OWASP's minimum (19 MiB memory, 2 passes): a
    weaker hash leaked with the config is cracked in hours instead of years.
    """
    match = _ARGON2.match(value)
    if not match:
        return "must be an argon2id hash ($argon2id$v=19$m=...,t=...,p=...$salt$hash); " \
               "make one with `officesec hash-password`"
    memory, passes, lanes = (int(g) for g in match.groups())
    if memory < ARGON2_MIN_MEMORY_KIB or passes < ARGON2_MIN_TIME or lanes < 1:
        return (f"argon2id parameters too weak (m={memory}, t={passes}); need at least "
                f"m={ARGON2_MIN_MEMORY_KIB} and t={ARGON2_MIN_TIME}: make a new hash with "
                "`officesec hash-password`")
    return None


class UserCfg(Section):
    """A dashboard user; the password is stored only as an argon2id hash.

    Roles: `viewer` reads everything and changes nothing, `guard` handles
    alarms, `admin` also locks down, releases doors and runs drills.
    """

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._@-]{1,64}$")]
    # the JSON Schema gets the pattern; the validator below gives the helpful message
    password_hash: str = Field(json_schema_extra={"pattern": r"^\$argon2id\$"})
    role: Literal["viewer", "guard", "admin"] = "guard"

    @model_validator(mode="after")
    def _strong(self) -> UserCfg:
        problem = argon2_problem(self.password_hash)
        if problem:
            raise_problems([f"password_hash: {problem}"])
        return self


class ApiTokenCfg(Section):
    """A script's API token; only its SHA-256 is kept (`officesec api-token` makes both)."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._@-]{1,64}$")]
    user: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._@-]{1,64}$")]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class FaultsCfg(Section):
    """When a technical condition becomes a fault alarm."""

    missing_after_s: float = Field(60, ge=1, le=86400)
    events_missing_after_s: float = Field(30, ge=1, le=3600)
    ack_resend_s: float = Field(5, ge=0.5, le=600)


# ------------------------------------------------------------------------------------------
# Console keys (#15, engineer C): floor plans and site instructions
# ------------------------------------------------------------------------------------------


class FloorCfg(Section):
    """A floor plan (SVG or PNG) for one site/building/floor; offices sit on it at x, y."""

    site: Text
    building: Text = ""
    floor: Text = ""
    plan: ReadableFile

    @model_validator(mode="after")
    def _plan_type(self) -> FloorCfg:
        if Path(self.plan).suffix.lower() not in (".svg", ".png"):
            raise_problems([f"plan: {self.plan!r} must be an .svg or .png file"])
        return self


class InstructionCfg(Section):
    """What a guard must know for alarms of a site, building or office (shown with them)."""

    site: Text
    building: Text = ""
    office: OfficeIdStr | None = None
    text: Annotated[str, StringConstraints(min_length=1, max_length=4000)]


# ------------------------------------------------------------------------------------------


class RosterOffice(Section):
    """An office the guard expects to see; never seen means missing."""

    id: OfficeIdStr
    site: Text = ""
    building: Text = ""
    floor: Text = ""
    room: Text = ""
    label: Text = ""
    neighbors: list[OfficeIdStr] = Field(default_factory=list, max_length=16)
    # --- console (#15, engineer C): the room's place on its floor's plan, 0..1 from top left
    x: float | None = Field(None, ge=0, le=1)
    y: float | None = Field(None, ge=0, le=1)


class SelfTestCfg(Section):
    """Scheduled end-to-end drills of every office (0 = off)."""

    interval_h: float = Field(0, ge=0, le=24 * 30)
    answer_within_s: float = Field(10, gt=0, le=300)


class GuardConfig(Settings):
    """The whole guard station configuration."""

    guard: GuardCfg = GuardCfg()
    mqtt: MqttCfg = MqttCfg()
    store: StoreCfg = StoreCfg()
    security: GuardSecurityCfg = GuardSecurityCfg()
    users: list[UserCfg] = Field(default_factory=list)
    api_tokens: list[ApiTokenCfg] = Field(default_factory=list)
    escalation: EscalationCfg = EscalationCfg()
    faults: FaultsCfg = FaultsCfg()
    offices: list[RosterOffice] = Field(default_factory=list)
    roster_file: ReadableFile | None = None
    selftest: SelfTestCfg = SelfTestCfg()
    log: LogCfg = LogCfg()
    # --- console (#15, engineer C) ---
    floors: list[FloorCfg] = Field(default_factory=list, max_length=500)
    instructions: list[InstructionCfg] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _unique(self) -> GuardConfig:
        problems = []
        if self.guard.ingest_group is not None:
            if not is_postgres(self.store.url):
                problems.append("guard.ingest_group: stations that share the heartbeats need "
                                "one shared store: set store.url = \"postgresql://…\"")
            if self.mqtt.protocol != "5":
                problems.append("guard.ingest_group: shared subscriptions need MQTT 5: set "
                                "mqtt.protocol = \"5\"")
        ids = [o.id for o in self.offices]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            problems.append(f"offices: office ids listed twice: {', '.join(dupes)}")
        names = [u.name for u in self.users]
        if len(set(names)) != len(names):
            problems.append("users: a user name is listed twice")
        for i, token in enumerate(self.api_tokens):
            if token.user not in names:
                problems.append(f"api_tokens.{i}.user: no [[users]] entry named {token.user!r}")
        hashes = [t.sha256 for t in self.api_tokens]
        if len(set(hashes)) != len(hashes):
            problems.append("api_tokens: the same token is listed twice")
        raise_problems(problems)
        return self

    def roster(self) -> list[RosterOffice]:
        """Offices from `[[offices]]` plus the roster file (TOML with `[[offices]]`)."""
        offices = list(self.offices)
        if self.roster_file:
            data = read_toml(Path(self.roster_file))
            extra = build(_Roster, data)
            known = {o.id for o in offices}
            offices.extend(o for o in extra.offices if o.id not in known)
        return offices


class _Roster(Settings):
    offices: list[RosterOffice] = Field(default_factory=list)


def load_guard_config(path: Path) -> GuardConfig:
    """Load and validate a guard config file (with environment overrides)."""
    return build(GuardConfig, read_toml(path))


def is_guard_config(data: dict[str, object]) -> bool:
    """A file with a `[guard]` table (or users/roster) is a guard config."""
    return "guard" in data or "users" in data or "offices" in data
