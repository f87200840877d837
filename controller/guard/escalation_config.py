"""The `[escalation]` section: when an unacknowledged alarm escalates and whom it notifies.

Split out of guard_config.py (it is the largest section). Notification URLs
are Apprise URLs; they may hold secrets, so problems name the key, never the URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, StringConstraints, model_validator

from controller.settings import ReadableFile, Section, raise_problems

NotifyUrl = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9+.-]*://",
                                             max_length=2000)]


def _url_file(path: str | None) -> list[str]:
    """Notification URLs from a secrets file: one per line, `#` comments, blank lines."""
    if path is None:
        return []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


class _Notifies(Section):
    """`notify` (URLs in the config) plus `notify_file` (URLs with secrets, from a file)."""

    notify: list[NotifyUrl] = Field(default_factory=list, max_length=20)
    notify_file: ReadableFile | None = None
    _file_urls: list[str] = PrivateAttr(default_factory=list)

    def urls(self) -> list[str]:
        """Every notification URL of this level."""
        return [*self.notify, *self._file_urls]

    def _load_urls(self, key: str) -> list[str]:
        """Read `notify_file`; problems named by key (never with the URL: it holds secrets)."""
        try:
            self._file_urls = _url_file(self.notify_file)
        except (OSError, UnicodeDecodeError) as exc:
            return [f"{key}notify_file: cannot read: {exc.__class__.__name__}"]
        problems = _bad_urls(f"{key}notify", self.notify)
        for problem in _bad_urls("x", self._file_urls):
            index, text = problem[2:].split(":", 1)
            problems.append(f"{key}notify_file: URL {int(index) + 1}:{text}")
        return problems


class EscalationLevel(_Notifies):
    """A further escalation step: who is told when an alarm is still unacknowledged."""

    after_s: float = Field(ge=1, le=86400)
    fault_after_s: float | None = Field(None, ge=1, le=86400)


class EscalationCfg(_Notifies):
    """What happens when nobody acknowledges an alarm in time.

    The first level is `after_s` (panics, drills) / `fault_after_s` (fault
    alarms) with `notify`; `levels` add later steps (the site manager after
    two minutes...). Notification URLs are Apprise URLs (mailto, Matrix,
    Teams, ntfy, json:// ...); they may hold secrets and are never logged.
    """

    after_s: float = Field(30, ge=1, le=3600)
    fault_after_s: float = Field(120, ge=1, le=86400)
    webhook_url: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = None
    webhook_on_test: bool = False
    webhook_timeout_s: float = Field(5, gt=0, le=60)
    notify_on_test: bool = False
    notify_timeout_s: float = Field(10, gt=0, le=120)
    notify_retries: int = Field(3, ge=0, le=10)
    levels: list[EscalationLevel] = Field(default_factory=list, max_length=10)
    console_url: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = None
    language: Literal["de", "en"] | None = None  # None: the station's `[guard] language`

    @model_validator(mode="after")
    def _order(self) -> EscalationCfg:
        problems = self._load_urls("")
        for i, level in enumerate(self.levels):
            problems += level._load_urls(f"levels.{i}.")
            if not level.urls():
                problems.append(f"levels.{i}.notify: a level needs notify or notify_file")
        last = self.after_s
        for i, level in enumerate(self.levels):
            if level.after_s <= last:
                problems.append(f"levels.{i}.after_s: must be later than the level before "
                                f"({last:g} s)")
            last = level.after_s
        steps = self.steps(fault=True)
        for i in range(1, len(steps)):
            if steps[i] <= steps[i - 1]:
                problems.append(f"levels.{i - 1}.fault_after_s: must be later than the level "
                                f"before ({steps[i - 1]:g} s)")
        raise_problems(problems)
        return self

    def level_urls(self, level: int) -> list[str]:
        """The notification URLs of escalation level `level` (1-based)."""
        return self.urls() if level == 1 else self.levels[level - 2].urls()

    def steps(self, *, fault: bool) -> list[float]:
        """Seconds after receipt at which each level fires, level 1 first.

        A level without `fault_after_s` comes as long after the level before
        for faults as it does for panics.
        """
        if not fault:
            return [self.after_s, *(lv.after_s for lv in self.levels)]
        out, prev_panic = [self.fault_after_s], self.after_s
        for lv in self.levels:
            out.append(lv.fault_after_s if lv.fault_after_s is not None
                       else out[-1] + (lv.after_s - prev_panic))
            prev_panic = lv.after_s
        return out


def _bad_urls(key: str, urls: list[str]) -> list[str]:
    """Every URL Apprise does not understand, named by its key (never printed: secrets)."""
    if not urls:
        return []
    import apprise  # noqa: PLC0415 - only needed when notifications are configured

    return [f"{key}.{i}: Apprise does not understand this URL (scheme "
            f"{url.split('://', 1)[0]!r}); see https://github.com/caronc/apprise/wiki"
            for i, url in enumerate(urls) if not apprise.Apprise().add(url)]
