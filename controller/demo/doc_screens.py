"""The screenshots in docs/, taken from a running demo so they show the real product.

`python -m controller.demo.doc_screens docs/` starts `officesec demo`
(German, Europe/Berlin), raises several alarms through the simulated hardware
(two panics, one of them acknowledged, a forced door that is then held open, a
drill), and photographs the console at 1920x1080 and 1366x768, the installer
view, the floor plan tab, and the incident report as the browser prints it (A4, print CSS). The
report is also printed to PDF exactly as "Als PDF speichern" would, and the
page count is returned so a report that spills onto a second page is noticed.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
from pathlib import Path
from typing import Any

from controller.demo.screenshot import CHROMIUM_ARGS, start_demo

SIZES = ((1920, 1080), (1366, 768))
REPORT_NOTE = "Kunde wurde laut und bedrohte die Mitarbeiterin; Polizei nahm ihn mit."


def _logins(text: str) -> tuple[str, dict[str, str]]:
    url = re.search(r"dashboard: (\S+)", text)
    users = dict(re.findall(r"login:\s+(\w+) / (\S+)", text))
    if url is None or {"admin", "guard"} - set(users):
        raise RuntimeError("unexpected demo output:\n" + text)
    return url.group(1), users


def _login(browser: Any, url: str, user: str, password: str, size: tuple[int, int]) -> Any:
    page = browser.new_page(viewport={"width": size[0], "height": size[1]}, locale="de-DE",
                            timezone_id="UTC")  # the station's zone must win over the browser's
    page.goto(url)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#live.on")
    return page


def _post(page: Any, path: str, body: dict[str, Any] | None = None) -> Any:
    """A POST from inside the page (its session and CSRF token), as the console sends it."""
    return page.evaluate("""async ([path, body]) => {
        const csrf = document.getElementById("page").dataset.csrf;
        const r = await fetch(path, {method: "POST", credentials: "same-origin",
          headers: {"X-CSRF-Token": csrf, "Content-Type": "application/json"},
          body: JSON.stringify(body || {})});
        return r.json();
      }""", [path, body])


def _press(page: Any, office: str, name: str = "panic") -> None:
    page.locator(f'.office[data-office="{office}"] [data-sim="{name}"]').click()


def _alarms(page: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = page.evaluate(
        "async () => (await fetch('/api/alarms?open=true')).json()")
    return result


def _raise_alarms(page: Any) -> str:
    """Two panics (one acknowledged, with a responder), a forced door, a drill; the first id."""
    _press(page, "eg-101")
    page.wait_for_selector(".qrow")
    page.wait_for_timeout(1500)
    _press(page, "eg-104")
    page.locator('.office[data-office="eg-103"] [data-sim="door"]').click()  # no release: forced
    _post(page, "/api/offices/eg-106/test")
    page.locator(".qrow").nth(3).wait_for(timeout=20000)
    first = next(a for a in _alarms(page) if a["office"] == "eg-101")
    _post(page, f"/api/alarms/{first['alarm_id']}/ack")
    _post(page, f"/api/alarms/{first['alarm_id']}/respond")
    page.wait_for_timeout(4000)  # the tickers run, the door is now held open too
    return str(first["alarm_id"])


def take_docs(out: Path, chromium: str, pdf: Path | None = None) -> int:
    """Write the docs' screenshots into `out` (the report's PDF to `pdf`); its page count."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (optional dependency)

    proc, lines = start_demo(6)
    try:
        url, users = _logins("\n".join(lines))
        out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = _login(browser, url, "guard", users["guard"], SIZES[0])
            alarm_id = _raise_alarms(page)
            # the pointer left on the office grid freezes its order (mis-click guard): move it
            # away, as a guard's hand would, so the shot shows problems first
            page.mouse.move(1, 1)
            for width, height in SIZES:
                page.set_viewport_size({"width": width, "height": height})
                page.wait_for_timeout(1200)
                page.screenshot(path=str(out / f"console-de-{width}x{height}.png"))
            page.set_viewport_size({"width": 1366, "height": 1000})
            page.click("#tab-plan")
            page.locator("#plan-view .plan-marker.st-alarm").first.wait_for()
            page.locator("#plan-view .plan").first.screenshot(path=str(out / "console-de-plan.png"),
                                                              animations="disabled")
            page.click("#tab-list")
            admin = _login(browser, url, "admin", users["admin"], (1366, 768))
            admin.goto(url.rstrip("/") + "/installer")
            admin.wait_for_selector('#controllers tr[data-office="eg-101"]')
            admin.wait_for_timeout(800)
            admin.screenshot(path=str(out / "installer-de.png"), full_page=True)
            _post(page, f"/api/alarms/{alarm_id}/resolve",
                  {"outcome": "police", "note": REPORT_NOTE})
            report = _login(browser, url, "guard", users["guard"], (794, 1123))  # A4 at 96 dpi
            report.goto(url.rstrip("/") + f"/alarms/{alarm_id}")
            report.wait_for_selector(".timeline tbody tr")
            report.emulate_media(media="print")
            report.screenshot(path=str(out / "report-de.png"), full_page=True)
            printed = report.pdf(format="A4", prefer_css_page_size=True)
            if pdf is not None:
                pdf.write_bytes(printed)
            browser.close()
        return len(re.findall(rb"/Type\s*/Page[^s]", printed))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    """Command line entry; 0 when every screenshot was written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("docs"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--pdf", type=Path, help="also save the printed report as this PDF")
    args = parser.parse_args(argv)
    try:
        pages = take_docs(args.out, args.chromium, args.pdf)
    except (RuntimeError, OSError) as exc:
        print(f"screenshots failed: {exc}", file=sys.stderr)
        return 1
    print(f"wrote the screenshots into {args.out}; the report prints on {pages} A4 page(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
