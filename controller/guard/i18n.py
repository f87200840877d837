"""The station's language: one gettext catalog (Babel) for pages, API errors and notifications.

German is the default (`[guard] language`), English the alternative; msgids are
English. One catalog per language in `locales/LANG/LC_MESSAGES/messages.po`,
shipped with its compiled `messages.mo` (a test fails when the .mo is stale or a
string is untranslated). A request's texts follow the language set for its
context (`use()`); work outside a request (escalation notifications, fault
titles) names its language and asks `translator(language)`.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar
from pathlib import Path

from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locales"
LANGUAGES = ("de", "en")
DEFAULT = "de"
_current: ContextVar[str] = ContextVar("officesec_language", default=DEFAULT)


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark only"
    """Mark a string for extraction; it is translated where it is shown."""
    return message


@functools.cache
def translations(language: str) -> Translations:
    """The compiled catalog; a missing one is an error, never a silent English page."""
    found = Translations.load(str(LOCALE_DIR), [language])
    if not isinstance(found, Translations) or type(found) is NullTranslations:
        raise RuntimeError(f"no compiled catalog for language {language!r} in {LOCALE_DIR}")
    return found


def translator(language: str) -> Translations:
    """The catalog of `language` (an unknown one gets the default, German)."""
    return translations(language if language in LANGUAGES else DEFAULT)


def use(language: str) -> None:
    """Translate what is produced from now on (in this context) into `language`."""
    _current.set(language if language in LANGUAGES else DEFAULT)


def current() -> str:
    """The language of this context."""
    return _current.get()


def gettext(message: str) -> str:
    """The message in the current language."""
    return str(translations(_current.get()).ugettext(message))


def ngettext(singular: str, plural: str, n: int) -> str:
    """Singular or plural, in the current language."""
    return str(translations(_current.get()).ungettext(singular, plural, n))


_ = gettext
