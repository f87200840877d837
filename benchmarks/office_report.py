"""The Markdown report of bench_office.py: tables, ratios and the targets of issue #18."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, TABLE_HEAD, Stats, machine

RESULTS = ROOT / "benchmarks" / "results" / "office.md"
RESULTS_LOAD = ROOT / "benchmarks" / "results" / "office-load.md"
ANALYSIS_MARKER = "<!-- analysis: kept when the benchmark rewrites this file -->"
FLOOR_FACTOR = 1.3  # issue #18: officesec p50 <= 1.3x the bare relay floor
START_S = 1.0  # issue #18: start -> `online` within 1 s
IDLE_CPU_PCT = 1.0  # issue #18: idle CPU < 1 %
LABELS = {
    "floor": "floor: sim topic -> broker -> paho relay -> broker -> sub",
    "officesec": "officesec: sim press -> broker -> `officesec run` -> broker -> sub",
    "mqtt-io": "mqtt-io: sim press -> broker -> mqtt-io (gpiozero mock) -> broker -> sub",
}


def scheduling() -> str:
    """How this run was scheduled (inherited by the broker and every measured process)."""
    if os.sched_getscheduler(0) == os.SCHED_FIFO:
        return f"SCHED_FIFO priority {os.sched_getparam(0).sched_priority}"
    return f"SCHED_OTHER, nice {os.nice(0)}"


def launcher() -> str:
    """The command prefix that reproduces this run's scheduling."""
    if os.sched_getscheduler(0) == os.SCHED_FIFO:
        return f"chrt -f {os.sched_getparam(0).sched_priority} "
    return f"nice -n {os.nice(0)} " if os.nice(0) else ""


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _load(avg: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in avg)


def report(res: dict[str, Any], args: str) -> str:
    """The results file's generated part."""
    st: dict[str, Stats] = res["stats"]
    split: dict[str, Stats] = res["split"]
    idle: dict[str, dict[str, float]] = res["idle"]
    after: dict[str, dict[str, float]] = res["after"]
    off, peer, floor = st["officesec"], st["mqtt-io"], st["floor"]
    oi, pi = idle["officesec"], idle["mqtt-io"]
    start = res["started"]
    busy = max(res["load_start"][0], res["load_end"][0]) > 1.0
    lines = [
        "# Office benchmark" + (" under load (a second process burns one core)"
                                if res["load"] else ""),
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}",
        f"- command: `{launcher()}.venv/bin/python -m benchmarks.bench_office {args}".rstrip()
        + "`",
        f"- peer: {res['peer']} (its own venv under benchmarks/.cache/)",
        f"- scheduling of the whole run (broker, programs, clients): {scheduling()}; "
        f"officesec environment: {res['env'] or 'unchanged'}",
        f"- load average (1/5/15 min) at the start: {_load(res['load_start'])}, at the end: "
        f"{_load(res['load_end'])}"
        + (" — **the machine was busy** (shared with other jobs): compare the rows of this "
           "run with each other, not with other runs" if busy else ""),
        f"- presses per path: {res['presses']}, interleaved in rounds; every answer checked "
        "(officesec: `presses` counts up by one, nothing lost or doubled); exit codes on "
        f"SIGTERM: {res['exit_codes']}",
        "",
        "## Press -> answer latency (loopback, one Mosquitto, two broker hops each)",
        "",
        TABLE_HEAD,
        *(st[k].row(LABELS[k]) for k in ("floor", "officesec", "mqtt-io")),
        "",
        "The same presses split at the first hop (the subscriber also taps the sim topic; "
        "from the tap seeing the press to the same client seeing the answer) — what a real "
        "button costs after the edge reaches the program:",
        "",
        TABLE_HEAD,
        *(split[k].row(f"{k} + 1 hop") for k in ("floor", "officesec", "mqtt-io")),
        "",
        "## Idle footprint",
        "",
        f"Over {oi['seconds']:.0f} s, 2 s after each program was up; memory in MiB.",
        "",
        "| process | VmRSS | USS | PSS | shared | peak RSS | CPU % | RSS after presses |",
        "|---|---|---|---|---|---|---|---|",
        *(f"| {k} | {idle[k]['rss']:.1f} | {idle[k]['uss']:.1f} | {idle[k]['pss']:.1f} | "
          f"{idle[k]['shared']:.1f} | {idle[k]['hwm']:.1f} | {idle[k]['cpu_pct']:.2f} | "
          f"{after[k]['rss']:.1f} |" for k in ("officesec", "mqtt-io", "floor")),
        "",
        f"Start -> retained `online`: officesec {start['officesec']:.3f} s; "
        f"(mqtt-io start -> retained `running`: {start['mqtt-io']:.3f} s).",
        "",
        "## Ratios and the targets of issue #18",
        "",
        "| target | measured | |",
        "|---|---|---|",
        f"| officesec p50 <= mqtt-io p50 | {off.p50:.3f} / {peer.p50:.3f} ms = "
        f"{off.p50 / peer.p50:.2f}x | {verdict(off.p50 <= peer.p50)} |",
        f"| officesec p99 <= mqtt-io p99 | {off.p99:.3f} / {peer.p99:.3f} ms = "
        f"{off.p99 / peer.p99:.2f}x | {verdict(off.p99 <= peer.p99)} |",
        f"| officesec p50 <= {FLOOR_FACTOR}x floor p50 | {off.p50:.3f} / {floor.p50:.3f} ms = "
        f"{off.p50 / floor.p50:.2f}x | {verdict(off.p50 <= FLOOR_FACTOR * floor.p50)} |",
        f"| idle VmRSS <= mqtt-io's | {oi['rss']:.1f} / {pi['rss']:.1f} MiB = "
        f"{oi['rss'] / pi['rss']:.2f}x | {verdict(oi['rss'] <= pi['rss'])} |",
        f"| (USS, private memory) | {oi['uss']:.1f} / {pi['uss']:.1f} MiB = "
        f"{oi['uss'] / pi['uss']:.2f}x | {verdict(oi['uss'] <= pi['uss'])} |",
        f"| idle CPU < {IDLE_CPU_PCT:.0f} % | {oi['cpu_pct']:.2f} % | "
        f"{verdict(oi['cpu_pct'] < IDLE_CPU_PCT)} |",
        f"| start -> `online` <= {START_S:.0f} s | {start['officesec']:.3f} s | "
        f"{verdict(start['officesec'] <= START_S)} |",
        "",
        f"For comparison: mqtt-io / floor p50 = {peer.p50 / floor.p50:.2f}x, "
        f"officesec / floor p99 = {off.p99 / floor.p99:.2f}x, "
        f"mqtt-io / floor p99 = {peer.p99 / floor.p99:.2f}x.",
        "",
    ]
    return "\n".join(lines)


def write_results(target: Path, text: str) -> None:
    """Replace the generated part; keep the hand-written analysis below the marker."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.read_text(encoding="utf-8") if target.exists() else ""
    _head, marker, analysis = old.partition(ANALYSIS_MARKER)
    target.write_text(text + "\n" + ANALYSIS_MARKER + analysis if marker else text,
                      encoding="utf-8")
