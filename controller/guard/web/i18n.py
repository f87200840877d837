"""The console's side of the catalog: the scripts' part as JSON, and the page context.

The scripts get the entries that occur in a `.js` file as JSON, so that the
page and its scripts speak with one catalog (controller/guard/i18n.py). Every
request is switched to the configured `[guard] language` by
`LanguageMiddleware`, so API errors are in it too, not only the pages.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from babel.messages.pofile import read_po

from controller.guard import i18n
from controller.guard.i18n import N_

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import ASGIApp, Receive, Scope, Send

# Texts that other modules hand to the templates (the login page's errors)
MARKED = (N_("Wrong user name or password."), N_("The form expired. Please try again."),
          N_("Enter user name and password."))


@functools.cache
def js_catalog(language: str) -> dict[str, Any]:
    """`{msgid: text | [singular, plural]}` for every entry used by a script."""
    path = i18n.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
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


def console_context(request: Request) -> dict[str, Any]:
    """Template context for every page: language, time zone, catalog for the scripts.

    Runs as a Jinja2 context processor, so the login page gets it too; it also
    switches this request's translations to the configured language.
    """
    service = getattr(request.app.state, "service", None)
    guard = getattr(getattr(service, "cfg", None), "guard", None)
    i18n.use(str(getattr(guard, "language", i18n.DEFAULT) or i18n.DEFAULT))
    language = i18n.current()
    return {"lang": language, "timezone": str(getattr(guard, "timezone", "") or ""),
            "js_catalog": js_catalog(language)}


class LanguageMiddleware:
    """Sets the station's language for everything a request produces (pages, API errors)."""

    def __init__(self, app: ASGIApp, *, language: str) -> None:
        """`language`: the station's `[guard] language`."""
        self.app = app
        self.language = language

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Switch this request's context, then hand on."""
        i18n.use(self.language)
        await self.app(scope, receive, send)
