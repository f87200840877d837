"""POST a JSON body to a webhook (pager gateway, alarm receiving centre); blocking, for a thread."""

from __future__ import annotations

import urllib.error
import urllib.request


def post_json(url: str, payload: bytes, timeout: float) -> str | None:
    """POST JSON; None on a 2xx answer, else the error text."""
    request = urllib.request.Request(url, data=payload, method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "officesec-guard"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            if 200 <= response.status < 300:
                return None
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))[:200]
