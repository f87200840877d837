"""What every signed-in page's template gets: user, CSRF token, instructions, floor plans."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from controller.guard.web.auth import User, csrf_token

if TYPE_CHECKING:
    from controller.guard.service import GuardService


def page_context(request: Request, user: User) -> dict[str, Any]:
    """The common context; pages add their own keys."""
    service: GuardService = request.app.state.service
    cfg = service.cfg
    instructions = [{"site": i.site, "building": i.building, "office": i.office, "text": i.text}
                    for i in cfg.instructions]
    floors = [{"site": f.site, "building": f.building, "floor": f.floor,
               "url": f"/plans/{index}"} for index, f in enumerate(cfg.floors)]
    positions = {o.id: [o.x, o.y] for o in cfg.roster() if o.x is not None and o.y is not None}
    return {"user": user, "csrf": csrf_token(request), "demo": bool(cfg.guard.demo),
            "instructions": instructions, "plans": {"floors": floors, "positions": positions}}
