"""The architecture as a test: boundaries (import-linter), no cycles, a pure state machine."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "controller"


def test_import_linter_contracts_are_kept():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("lint-imports is not installed (pip install -e '.[test]')")
    run = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def test_no_import_cycles_anywhere():
    graph = grimp.build_graph("controller", cache_dir=None)
    modules = sorted(graph.modules)
    # Tarjan's strongly connected components over the module graph
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.find_modules_directly_imported_by(node)):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            comp = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                comp.append(top)
                if top == node:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for module in modules:
        if module not in index:
            visit(module)
    # a package's __init__ importing its own submodule is not a cycle of ours
    real = [c for c in cycles if not all(m == c[0] or m.startswith(c[0] + ".") for m in c)]
    assert real == []


def test_state_machine_imports_only_the_standard_library_and_its_inputs():
    allowed_ours = {"controller.office.inputs", "controller.protocol.names",
                    "controller.office.machine_door"}
    names = PACKAGE / "protocol" / "names.py"
    for path in (PACKAGE / "office" / "machine.py", PACKAGE / "office" / "machine_door.py",
                 PACKAGE / "office" / "inputs.py", names):
        name = path.name
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                imported = [node.module or ""]
            else:
                continue
            for mod in imported:
                top = mod.split(".")[0]
                ok = top in sys.stdlib_module_names or top == "__future__" or (
                    mod in allowed_ours)
                assert ok, f"{name} imports {mod}"


def test_root_holds_only_the_shared_modules():
    root_modules = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert root_modules == ["__init__", "__main__", "cli", "errors", "logs", "mqttclient",
                            "sdnotify", "settings"]
    parts = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert parts == ["demo", "deploy", "guard", "office", "protocol"]


FORBIDDEN_IN_OFFICE = ("starlette", "uvicorn", "jinja2", "sse_starlette", "argon2")
FORBIDDEN_OURS_IN_OFFICE = ("controller.guard", "controller.demo", "controller.deploy")


def importtime_modules(stderr: str) -> set[str]:
    """Module names from `python -X importtime` output (`import time: self | cum | name`)."""
    found = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":  # the header line
                found.add(name)
    return found


def forbidden_in_office(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in FORBIDDEN_IN_OFFICE
                  or m.startswith(FORBIDDEN_OURS_IN_OFFICE))


def test_importtime_parser_sees_a_forbidden_import():
    """The check below can fail: a guard import in -X importtime output is found."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", "import starlette"],
                         capture_output=True, text=True, check=True, timeout=60)
    assert forbidden_in_office(importtime_modules(run.stderr)) == ["starlette"]


def test_office_process_does_not_import_the_web_or_guard_stack(broker, tmp_path):
    """`officesec run`, online and after a press, never loaded the guard, web or demo stack.

    Measured on the real process with `python -X importtime` (issue #18), so lazy
    imports at start-up or on the press path count too, not only module imports.
    """
    from tests.office_proc import OfficeProc
    from tests.probe import Probe

    office = OfficeProc(tmp_path, broker.port, "eg-101", log={"level": "warning"})
    probe = Probe(broker.host, broker.port, "officesec/office/eg-101/#").start()
    assert office.config.exists()
    logf = office.log.open("ab")
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "controller", "run",
                             "--config", str(office.config)], stdout=logf,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        probe.wait_for(lambda m: m.topic.endswith("/availability") and m.payload == b"online",
                       timeout=30)
        probe.publish("officesec/office/eg-101/sim/input/panic", "press")
        probe.wait_for(lambda m: m.topic.endswith("/event") and b'"panic"' in m.payload,
                       timeout=10)
        probe.publish("officesec/office/eg-101/sim/input/panic", "release")
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=10)
        logf.close()
        probe.stop()
    modules = importtime_modules(err)
    assert {"controller.office.daemon", "controller.office.link", "paho.mqtt.client"} <= modules
    assert forbidden_in_office(modules) == []


def test_every_file_the_architecture_doc_names_exists():
    import re

    text = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`([A-Za-z_/]+\.(?:py|js))`", text))
    missing = []
    for name in sorted(named):
        candidates = [ROOT / name, *PACKAGE.rglob(Path(name).name)]
        if not any(c.exists() and str(c).endswith(name) for c in candidates):
            missing.append(name)
    assert missing == []
    assert len(named) > 30
