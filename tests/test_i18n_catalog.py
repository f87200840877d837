"""The console's catalogs are complete (#15): CI fails on an untranslated or stale string."""

from __future__ import annotations

import ast
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from controller.guard import i18n as core
from controller.guard.web import i18n

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "controller" / "guard" / "locales"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _po(lang: str) -> Any:
    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=lang)


def _ids(catalog: Any) -> set[str]:
    return {str(m.id[0] if isinstance(m.id, tuple | list) else m.id) for m in catalog if m.id}


@pytest.fixture(scope="module")
def pot(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """What the sources use today (the same extraction .ci/i18n.py runs)."""
    sys.path.insert(0, str(ROOT / ".ci"))
    from i18n import EXTRACT  # type: ignore[import-not-found]

    out = tmp_path_factory.mktemp("pot") / "messages.pot"
    pybabel = str(Path(sys.executable).parent / "pybabel")
    subprocess.run([pybabel, *EXTRACT, "-o", str(out), "."], cwd=ROOT, check=True,
                   capture_output=True)
    with out.open("rb") as fh:
        return read_po(fh)


@pytest.fixture(scope="module")
def extracted(pot: Any) -> set[str]:
    return _ids(pot)


@pytest.mark.parametrize("lang", core.LANGUAGES)
def test_every_string_of_the_console_is_in_the_catalog(extracted: set[str], lang: str):
    missing = sorted(extracted - _ids(_po(lang)))
    assert missing == [], f"not in {lang}/messages.po (run .ci/i18n.py, then translate)"


@pytest.mark.parametrize("lang", core.LANGUAGES)
def test_every_entry_is_translated_and_keeps_its_placeholders(lang: str):
    bad = []
    for m in _po(lang):
        if not m.id:
            continue
        strings = list(m.string) if isinstance(m.string, tuple | list) else [m.string]
        ids = list(m.id) if isinstance(m.id, tuple | list) else [m.id]
        if m.fuzzy or not all(strings):
            bad.append(f"untranslated or fuzzy: {ids[0]!r}")
            continue
        wanted = set(PLACEHOLDER.findall(ids[0]))
        for text in strings:
            if set(PLACEHOLDER.findall(text)) != wanted:
                bad.append(f"placeholders differ: {ids[0]!r} -> {text!r}")
    assert bad == []


@pytest.mark.parametrize("lang", core.LANGUAGES)
def test_the_shipped_mo_is_compiled_from_the_po(lang: str):
    buf = io.BytesIO()
    write_mo(buf, _po(lang))
    fresh = {repr(m.id): repr(m.string) for m in read_mo(io.BytesIO(buf.getvalue())) if m.id}
    with (LOCALES / lang / "LC_MESSAGES" / "messages.mo").open("rb") as fh:
        shipped = {repr(m.id): repr(m.string) for m in read_mo(fh) if m.id}
    assert shipped == fresh, "stale messages.mo: run .ci/i18n.py"


def test_german_is_german_and_the_scripts_get_the_same_catalog():
    core.use("de")
    assert core.gettext("Acknowledge") == "Quittieren"
    assert core.ngettext("{n} open", "{n} open", 3) == "{n} offen"
    js = i18n.js_catalog("de")
    assert js["I am going too"] == "Ich komme auch"
    assert js["{n} new alarm \u2014 show"] == ["{n} neuer Alarm \u2013 anzeigen",
                                              "{n} neue Alarme \u2013 anzeigen"]
    assert "Log in" not in js  # only what a script uses is sent to the page
    assert js["Simulated hardware"] == "Simulierte Hardware"  # the demo's panel, too
    core.use("en")
    assert core.gettext("Acknowledge") == "Acknowledge"
    core.use("de")


def test_a_missing_catalog_is_an_error_not_an_english_page(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path):
    monkeypatch.setattr(core, "LOCALE_DIR", tmp_path)
    core.translations.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="no compiled catalog"):
            core.translations("de")
    finally:
        monkeypatch.undo()
        core.translations.cache_clear()


def test_the_extractor_reads_every_script_to_its_end(pot: Any):
    """Babel's JS lexer can stop early (a regex literal with a quote): nothing is then
    extracted from the rest of that file, silently. A plain scan must find nothing more."""
    call = re.compile(r'(?<![\w.])_\("((?:[^"\\]|\\.)*)"')
    scripts = [*(ROOT / "controller" / "guard" / "web" / "static").glob("*.js"),
               *(ROOT / "controller" / "demo" / "static").glob("*.js")]  # the simulator panel
    missed = []
    for path in sorted(scripts):
        rel = str(path.relative_to(ROOT))
        here = {str(m.id[0] if isinstance(m.id, tuple | list) else m.id) for m in pot
                if m.id and any(name == rel for name, _line in m.locations)}
        for literal in call.findall(path.read_text(encoding="utf-8")):
            text = json.loads(f'"{literal}"')  # JS and JSON escapes agree here
            if text not in here:
                missed.append(f"{path.name}: {text}")
    assert missed == []


def _literal_text(node: ast.AST) -> bool:
    """A text written in the source and never passed through the catalog."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and any(c.isalpha() for c in node.value)
    if isinstance(node, ast.JoinedStr):
        return any(_literal_text(v) for v in node.values if isinstance(v, ast.Constant))
    if isinstance(node, ast.BinOp):  # "limit: " + _("not an integer") is translated
        return _literal_text(node.left) and _literal_text(node.right)
    return False


def test_no_error_text_for_people_bypasses_the_catalog():
    """`{"error": "..."}`, `error(status, "...")` and the 400/422 exceptions of the web API and
    the guard's actions take their text from the catalog (`_()`), in the station's language."""
    guard = ROOT / "controller" / "guard"
    sources = [*(guard / "web").glob("*.py"), guard / "actions.py",
               ROOT / "controller" / "demo" / "web.py"]
    found = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            texts: list[ast.AST] = []
            if isinstance(node, ast.Dict):
                texts = [v for k, v in zip(node.keys, node.values, strict=True)
                         if isinstance(k, ast.Constant) and k.value == "error"]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("BadRequestError", "UnprocessableError", "error")):
                texts = node.args[-1:] if node.func.id != "error" else node.args[1:2]
            found += [f"{path.name}:{t.lineno}" for t in texts if _literal_text(t)]
    assert found == []


def test_every_event_type_has_words_in_both_languages():
    from controller.guard.web.event_words import MISSING, event_words

    assert not MISSING, MISSING  # a new event type needs its words
    core.use("de")
    words = event_words()
    assert words["door_opened"] == "Tür geöffnet" and words["door_released"] == "Tür freigegeben"
    core.use("en")
    assert event_words()["door_forced"] == "door forced open"
    core.use("de")
