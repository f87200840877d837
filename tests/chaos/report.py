"""Run the chaos suite and render docs/reliability.md from the figures it records.

    .venv/bin/python -m tests.chaos.report                 # full size (about 20 minutes)
    .venv/bin/python -m tests.chaos.report --size ci       # the CI sizes (about 3 minutes)
    .venv/bin/python -m tests.chaos.report --set OFFICESEC_CHAOS_PARTITION_S=120

Each chaos test appends one JSON line of figures to $OFFICESEC_CHAOS_RESULTS;
pytest's JUnit XML gives the outcome and duration of every test. Nothing in the
document is typed by hand: a test that fails leaves a gap and a FAILED line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import machine as bench_machine
from tests.chaos.report_render import render
from tests.chaos.support import RESULTS_ENV, SIZES

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "reliability.md"
TESTS = ["tests/chaos", "tests/test_machine_props.py"]


def run(size: str, overrides: dict[str, str], workdir: Path) -> tuple[Path, Path, float]:
    """Run pytest with the chosen sizes; return (results JSONL, JUnit XML, seconds)."""
    results, junit = workdir / "results.jsonl", workdir / "junit.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFICESEC_CHAOS_")}
    for name, (ci, full) in SIZES.items():
        env[name] = str(int(full if size == "full" else ci))
    env.update(overrides)
    env[RESULTS_ENV] = str(results)
    began = time.monotonic()
    subprocess.run([sys.executable, "-m", "pytest", *TESTS, "-p", "no:cacheprovider", "-q",
                    "-o", "timeout=0", f"--junitxml={junit}"], cwd=ROOT, env=env, check=False)
    return results, junit, time.monotonic() - began


def sizes_used(overrides: dict[str, str], size: str) -> dict[str, int]:
    out = {}
    for name, (ci, full) in SIZES.items():
        out[name] = int(overrides.get(name, full if size == "full" else ci))
    return out


def outcomes(junit: Path) -> list[dict[str, Any]]:
    """One entry per test case: name, seconds, outcome and the failure message."""
    tree = ET.parse(junit)  # noqa: S314 - written by our own pytest run a moment ago
    cases = []
    for case in tree.iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "FAILED", "error": "ERROR", "skipped": "skipped"}[tag]
                message = " ".join((node.get("message") or "").split())[:240]
        cases.append({"name": f"{case.get('classname', '')}::{case.get('name', '')}",
                      "seconds": float(case.get("time") or 0), "outcome": outcome,
                      "message": message})
    return cases


def machine() -> str:
    """The benchmarks' one-line machine description, plus the kernel."""
    return f"{bench_machine()}, Linux {platform.release()}"


# --------------------------------------------------------------- rendering


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["full", "ci"], default="full")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override one size, e.g. OFFICESEC_CHAOS_PARTITION_S=120")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="keep results.jsonl, junit.xml and run.json in DIR")
    parser.add_argument("--render-only", type=Path, default=None, metavar="DIR",
                        help="do not run; render from what --keep left in DIR")
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.set)
    unknown = set(overrides) - set(SIZES)
    if unknown:
        parser.error(f"unknown size variable: {sorted(unknown)[0]}")
    if args.render_only is not None:
        workdir = args.render_only
        meta = json.loads((workdir / "run.json").read_text())
    else:
        workdir = args.keep or Path(tempfile.mkdtemp(prefix="officesec-chaos-"))
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "results.jsonl").unlink(missing_ok=True)
        _results, _junit, seconds = run(args.size, overrides, workdir)
        meta = {"size": args.size, "sizes": sizes_used(overrides, args.size),
                "seconds": seconds, "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "where": machine()}
        (workdir / "run.json").write_text(json.dumps(meta))
    results_path, junit = workdir / "results.jsonl", workdir / "junit.xml"
    results = [json.loads(line) for line in results_path.read_text().splitlines()
               if line.strip()] if results_path.exists() else []
    cases = outcomes(junit) if junit.exists() else []
    text = render(results, cases, size=meta["size"], sizes=meta["sizes"],
                  seconds=meta["seconds"], when=meta["when"], where=meta["where"])
    args.out.write_text(text, encoding="utf-8")
    if args.keep is None and args.render_only is None:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"wrote {args.out}")
    return 0 if cases and all(c["outcome"] in ("passed", "skipped") for c in cases) else 1


if __name__ == "__main__":
    raise SystemExit(main())
