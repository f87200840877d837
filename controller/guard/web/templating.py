"""The one Jinja2 environment for every page: autoescaping, the i18n extension, the language.

`env=` replaces Starlette's own environment, so autoescaping must be switched on
here (a bare Environment has it off).
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from starlette.templating import Jinja2Templates

from controller.guard import i18n
from controller.guard.web.i18n import console_context

TEMPLATE_DIR = Path(__file__).parent / "templates"
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                          autoescape=jinja2.select_autoescape(),
                          extensions=["jinja2.ext.i18n"])
_env.install_gettext_callables(gettext=i18n.gettext, ngettext=i18n.ngettext,  # type: ignore[attr-defined]
                               newstyle=True)
templates = Jinja2Templates(env=_env, context_processors=[console_context])
