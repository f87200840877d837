"""Maintain the console's catalogs: extract, merge, compile (run from the repository root).

    .venv/bin/python .ci/i18n.py

Translate new entries in controller/guard/locales/de/LC_MESSAGES/messages.po
(and copy the English msgid into en), then run it again: it compiles the .mo files
that are shipped. tests/test_i18n_catalog.py fails while an entry is missing,
untranslated, fuzzy, or a .mo is stale.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "controller" / "guard" / "locales"
POT = LOCALES / "messages.pot"
PYBABEL = str(Path(sys.executable).parent / "pybabel")
EXTRACT = ["extract", "-F", ".ci/babel.cfg", "-k", "_", "-k", "ngettext:1,2", "-k", "N_",
           "--no-wrap", "--sort-by-file", "--omit-header"]


def run(*args: str) -> None:
    subprocess.run([PYBABEL, *args], check=True, cwd=ROOT)


def main() -> None:
    run(*EXTRACT, "-o", str(POT), ".")
    for lang in ("de", "en"):
        po = LOCALES / lang / "LC_MESSAGES" / "messages.po"
        if po.exists():
            run("update", "--no-wrap", "--no-fuzzy-matching", "-i", str(POT), "-d", str(LOCALES),
                "-l", lang)
        else:
            run("init", "--no-wrap", "-i", str(POT), "-d", str(LOCALES), "-l", lang)
    run("compile", "-d", str(LOCALES))


if __name__ == "__main__":
    main()
