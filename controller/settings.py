"""The shared config base: strict sections, TOML + environment, `key.path: message` errors.

Every section forbids unknown keys (a typo is an error, never ignored). Any key
can be overridden by ``OFFICESEC_<SECTION>__<KEY>``. Errors come back as
``section.key: message`` lines so an installer can fix them all in one go.

pydantic-settings is imported only when a config is loaded (`build`, `Settings`),
never by importing this module: the office daemon gets an already validated
snapshot and must not carry it (issue #18).
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from controller.errors import ConfigError
from controller.protocol.messages import OFFICE_ID_PATTERN

ENV_PREFIX = "OFFICESEC_"
OfficeIdStr = Annotated[str, StringConstraints(pattern=OFFICE_ID_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=200)]


class Section(BaseModel):
    """Base of every config section: frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_readable(problems: list[str], key: str, value: str | None) -> None:
    if value is None:
        return
    path = Path(value)
    if not path.is_file():
        problems.append(f"{key}: file {value} does not exist")
    elif not os.access(path, os.R_OK):
        problems.append(f"{key}: file {value} is not readable")


def _readable_file(value: str) -> str:
    problems: list[str] = []
    check_readable(problems, "file", value)
    if problems:
        raise ValueError(problems[0].removeprefix("file: "))
    return value


ReadableFile = Annotated[str, AfterValidator(_readable_file)]
"""A path that must name an existing, readable file (TLS material, secrets, keys)."""


def raise_problems(problems: list[str]) -> None:
    if problems:
        raise ValueError("\n".join(problems))


def split_endpoint(entry: str) -> tuple[str, int]:
    """`HOST:PORT` or `[IPv6]:PORT` -> (host, port); ValueError says what is wrong."""
    host, sep, port = entry.strip().rpartition(":")
    if not sep or not host:
        raise ValueError("expected HOST:PORT")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError("an IPv6 address needs [brackets]")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("an IPv6 address needs [brackets], e.g. [::1]:1883")
    if not host or any(c.isspace() for c in host):
        raise ValueError("host is empty or contains spaces")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port!r} is not a number 1..65535")
    return host, int(port)


class MqttCfg(Section):
    """How to reach the broker; secrets come from files, never from this file."""

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    hosts: list[Annotated[str, StringConstraints(max_length=300)]] | None = Field(
        None, min_length=1, max_length=16)
    """Brokers to fail over between, in order (`HOST:PORT`, `[v6]:PORT`); replaces host/port."""
    prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_/-]{0,63}$")] = (
        "officesec")
    protocol: Literal["5", "3.1.1"] = "5"
    keepalive_s: int = Field(5, ge=2, le=300)
    client_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    username: Annotated[str, StringConstraints(max_length=64)] | None = None
    password_file: ReadableFile | None = None
    tls_ca: ReadableFile | None = None
    tls_cert: ReadableFile | None = None
    tls_key: ReadableFile | None = None
    tls_insecure_skip_hostname: bool = False
    reconnect_min_s: float = Field(0.5, gt=0, le=60)
    reconnect_max_s: float = Field(10.0, gt=0, le=600)

    @model_validator(mode="after")
    def _files(self) -> MqttCfg:
        problems: list[str] = []
        if (self.tls_cert is None) != (self.tls_key is None):
            problems.append("tls_cert: tls_cert and tls_key must be given together")
        if self.tls_cert is not None and self.tls_ca is None:
            problems.append("tls_ca: a client certificate needs tls_ca as well")
        if self.password_file is not None and self.username is None:
            problems.append("username: password_file is set but username is not")
        if self.reconnect_max_s < self.reconnect_min_s:
            problems.append("reconnect_max_s: must not be below reconnect_min_s")
        if self.hosts is not None:
            if {"host", "port"} & self.model_fields_set:
                problems.append("hosts: give either hosts or host/port, not both")
            for i, entry in enumerate(self.hosts):
                try:
                    split_endpoint(entry)
                except ValueError as exc:
                    problems.append(f"hosts: entry {i + 1} ({entry!r:.60}): {exc}")
            if len(set(self.hosts)) != len(self.hosts):
                problems.append("hosts: lists a broker twice")
        raise_problems(problems)
        return self

    def endpoints(self) -> list[tuple[str, int]]:
        """The brokers to try, in order: `hosts` if given, else the one `host`/`port`."""
        if self.hosts is None:
            return [(self.host, self.port)]
        return [split_endpoint(h) for h in self.hosts]

    def read_password(self) -> str | None:
        """The broker password from its file (first line), or None."""
        if self.password_file is None:
            return None
        return Path(self.password_file).read_text(encoding="utf-8").splitlines()[0].strip()


class LogCfg(Section):
    """Logging: JSON off a terminal unless forced."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    json_logs: bool | None = Field(None, alias="json")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Root(Section):
    """Base of a whole config file (the schema); `build` puts the environment layer on top.

    A plain model, so that a process can validate a config snapshot with the one
    schema without importing pydantic-settings.
    """


@functools.cache
def _settings_class() -> type[BaseModel]:
    from pydantic_settings import (  # noqa: PLC0415 - only where a config file is loaded
        BaseSettings,
        PydanticBaseSettingsSource,
        SettingsConfigDict,
    )

    class Settings(BaseSettings):
        """Shared settings behaviour: TOML file, then environment overrides on top."""

        model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__",
                                          extra="forbid", frozen=True)

        @classmethod
        def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                       init_settings: PydanticBaseSettingsSource,
                                       env_settings: PydanticBaseSettingsSource,
                                       dotenv_settings: PydanticBaseSettingsSource,
                                       file_secret_settings: PydanticBaseSettingsSource,
                                       ) -> tuple[PydanticBaseSettingsSource, ...]:
            """Environment over the TOML data passed in as init values."""
            return (env_settings, init_settings)

    Settings.__module__, Settings.__qualname__ = __name__, "Settings"
    return Settings


if TYPE_CHECKING:
    # for the type checker `Settings` is pydantic-settings' base; at run time it is the
    # class `_settings_class` builds on first access (PEP 562), with the behaviour above
    from pydantic_settings import BaseSettings

    Settings = BaseSettings
else:

    def __getattr__(name: str) -> Any:
        if name == "Settings":
            return _settings_class()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _with_environment(model: type[BaseModel]) -> type[BaseModel]:
    """`model` with the environment layer: the same fields, validators and strictness."""
    settings = _settings_class()
    if issubclass(model, settings):
        return model
    return type(model.__name__, (settings, model), {"__module__": model.__module__,
                                                    "__doc__": model.__doc__})


# ------------------------------------------------------------------- loading

S = TypeVar("S", bound=BaseModel)
_VALUE_ERROR = re.compile(r"^(?:Value error, )?([a-z_]+): (.*)$", re.DOTALL)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; every failure becomes one clear ConfigError line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, not a config file"]) from None
    except PermissionError:
        raise ConfigError([f"{path}: config file is not readable (permission denied)"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file: {exc.strerror}"]) from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None


def format_errors(exc: ValidationError) -> list[str]:
    """One `key.path: message` line per problem; cross-field messages name their key."""
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        loc = [str(part) for part in err["loc"]]
        msg = str(err["msg"])
        if err["type"] == "value_error":
            for line in msg.removeprefix("Value error, ").splitlines():
                match = _VALUE_ERROR.match(line)
                if match:
                    lines.append(".".join([*loc, match.group(1)]) + ": " + match.group(2))
                else:
                    lines.append(".".join(loc) + ": " + line)
            continue
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not allowed)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        where = ".".join(loc) or "(top level)"
        value = err.get("input")
        hide = err["type"] == "missing" or isinstance(value, dict)
        shown = "" if hide else f" (got {value!r:.60})"
        lines.append(f"{where}: {msg}{shown}")
    return lines


def build(model: type[S], data: dict[str, Any]) -> S:
    """Validate TOML data plus environment overrides into a `Root` or `Settings` model.

    The result is an instance of `model` (of its environment-aware subclass for a `Root`).
    """
    try:
        return _with_environment(model)(**data)  # type: ignore[return-value]
    except ValidationError as exc:
        raise ConfigError(format_errors(exc)) from None


# ------------------------------------------------------------------ file modes
# State files 0600, directories we create 0700, set in code: the stores hold alarm
# history and sessions, and their modes must not depend on how the process was started
# (a shell with umask 022, a container, a test), only on systemd's UMask=0077.

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> None:
    """Create `path` (and missing parents) as 0700; an existing directory is left alone.

    Existing directories may be shared (/var/lib, /tmp): narrowing them is not ours to do.
    """
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
        directory.chmod(0o700)


def private_sqlite(path: str) -> None:
    """Create an SQLite file as 0600 before SQLite does, and narrow an existing one.

    SQLite creates its -wal and -shm files with the main file's mode, so they follow.
    """
    if path == ":memory:" or path.startswith("file:"):
        return
    file = Path(path)
    private_dir(file.parent)
    fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for name in (path, *(path + side for side in SQLITE_SIDE_FILES)):
        if os.path.exists(name) and (os.stat(name).st_mode & 0o077):
            os.chmod(name, 0o600)
