"""Take docs/screenshot-alarm.png: a demo with an active alarm, as a guard sees it.

`python -m controller.demo.screenshot [--out FILE]` starts `officesec demo`,
logs in, presses a simulated panic button and photographs the dashboard, so the
picture in the docs always shows the real product. Needs Playwright (a test
dependency) and a Chromium (Debian's `/usr/bin/chromium` by default).
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
BANNER_TIMEOUT_S = 60.0


def start_demo(offices: int) -> tuple[subprocess.Popen[str], list[str]]:
    """Start `officesec demo`; (its process, its output so far) once it is ready."""
    proc = subprocess.Popen([sys.executable, "-m", "controller", "demo", "--offices",
                             str(offices)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None  # noqa: S101 - PIPE was requested
        lines.extend(line.rstrip("\n") for line in proc.stdout)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + BANNER_TIMEOUT_S
    while not any("Press Ctrl-C" in line for line in lines):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the demo did not start:\n" + "\n".join(lines))
        time.sleep(0.1)
    return proc, lines


def take(out: Path, chromium: str, offices: int) -> None:
    """Run the demo, raise an alarm in office 2 and save a screenshot of the dashboard."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (optional dependency)

    proc, lines = start_demo(offices)
    text = "\n".join(lines)
    try:
        url = re.search(r"dashboard: (\S+)", text)
        login = re.search(r"login:\s+admin / (\S+)", text)
        if url is None or login is None:
            raise RuntimeError("unexpected demo output:\n" + text)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(url.group(1))
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", login.group(1))
            page.click("button[type=submit]")
            page.wait_for_selector("#live.on")
            page.locator('.office[data-office="eg-102"] [data-sim="panic"]').click()
            page.wait_for_selector('.alarm-card[data-state="active"]')
            page.wait_for_timeout(4500)  # let the "time since raised" tick and the LEDs blink on
            page.locator('.office[data-office="eg-101"] .lamp.neighbor_led.on').wait_for()
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out))
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    """Command line entry; 0 when the screenshot was written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshot-alarm.png"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--offices", type=int, default=4)
    args = parser.parse_args(argv)
    try:
        take(args.out, args.chromium, args.offices)
    except (RuntimeError, OSError) as exc:
        print(f"screenshot failed: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
