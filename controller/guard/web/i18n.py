"""The console's language: gettext catalogs (Babel) for templates, pages and scripts.

German is the default (`[guard] language`), English the alternative; msgids are
English. One catalog per language in `locales/LANG/LC_MESSAGES/messages.po`,
shipped with its compiled `messages.mo` (a test fails when the .mo is stale or a
string is untranslated). The scripts get the entries that occur in a `.js` file
as JSON, so that the page and its scripts speak with one catalog.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

if TYPE_CHECKING:
    from starlette.requests import Request

LOCALE_DIR = Path(__file__).parent / "locales"
LANGUAGES = ("de", "en")
DEFAULT = "de"
_current: ContextVar[str] = ContextVar("officesec_language", default=DEFAULT)


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark only"
    """Mark a string for extraction; it is translated where it is shown."""
    return message


# Texts that other modules hand to the templates (the login page's errors)
MARKED = (N_("Wrong user name or password."), N_("The form expired. Please try again."),
          N_("Enter user name and password."))


@functools.cache
def translations(language: str) -> Translations:
    """The compiled catalog; a missing one is an error, never a silent English page."""
    found = Translations.load(str(LOCALE_DIR), [language])
    if not isinstance(found, Translations) or type(found) is NullTranslations:
        raise RuntimeError(f"no compiled catalog for language {language!r} in {LOCALE_DIR}")
    return found


@functools.cache
def js_catalog(language: str) -> dict[str, Any]:
    """`{msgid: text | [singular, plural]}` for every entry used by a script."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    out: dict[str, Any] = {}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        if not any(str(name).endswith(".js") for name, _line in message.locations):
            continue
        if isinstance(message.id, tuple | list):
            strings = list(message.string) if message.string else []
            out[str(message.id[0])] = [str(s) for s in strings[:2]]
        else:
            out[str(message.id)] = str(message.string or "")
    return out


def use(language: str) -> None:
    """Translate what is rendered from now on (in this request's context) into `language`."""
    _current.set(language if language in LANGUAGES else DEFAULT)


def gettext(message: str) -> str:
    """The message in the current language."""
    return str(translations(_current.get()).ugettext(message))


def ngettext(singular: str, plural: str, n: int) -> str:
    """Singular or plural, in the current language."""
    return str(translations(_current.get()).ungettext(singular, plural, n))


def console_context(request: Request) -> dict[str, Any]:
    """Template context for every page: language, time zone, catalog for the scripts.

    Runs as a Jinja2 context processor, so the login page gets it too; it also
    switches this request's translations to the configured language.
    """
    service = getattr(request.app.state, "service", None)
    guard = getattr(getattr(service, "cfg", None), "guard", None)
    language = str(getattr(guard, "language", DEFAULT) or DEFAULT)
    use(language)
    return {"lang": _current.get(), "timezone": str(getattr(guard, "timezone", "") or ""),
            "js_catalog": js_catalog(_current.get())}
