"""The demo corridor's floor plan: an SVG with one room per office, and each room's x, y.

So the demo shows the console's "Grundriss" tab, an alarm's room blinking on its
plan and the plan in the printed report, like a site with `[[floors]]`.
"""

from __future__ import annotations

import math

WIDTH, HEIGHT = 900, 310
WALL, CORRIDOR = 4, 60


def corridor_plan(rooms: list[str], corridor_label: str = "Flur"
                  ) -> tuple[str, list[tuple[float, float]]]:
    """(SVG, each room's (x, y) in 0..1): rooms numbered round a corridor, left to right on top.

    The second half comes back right to left below, so neighbours stay next to each other.
    """
    per_side = max(1, math.ceil(len(rooms) / 2))
    room_w = (WIDTH - 2 * WALL) / per_side
    room_h = (HEIGHT - 2 * WALL - CORRIDOR) / 2
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">',
             f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#222"/>',
             f'<rect x="{WALL}" y="{WALL + room_h}" width="{WIDTH - 2 * WALL}" height="{CORRIDOR}" '
             'fill="#e4e2dc"/>',
             f'<text x="{WIDTH / 2}" y="{WALL + room_h + CORRIDOR / 2 + 5}" text-anchor="middle" '
             f'font-size="16" fill="#555">{corridor_label}</text>']
    places = []
    for i, _room in enumerate(rooms):
        side, col = divmod(i, per_side)
        col = col if side == 0 else per_side - 1 - col
        x = WALL + col * room_w
        y = WALL if side == 0 else WALL + room_h + CORRIDOR
        parts.append(f'<rect x="{x + 1:.1f}" y="{y + 1:.1f}" width="{room_w - 2:.1f}" '
                     f'height="{room_h - 2:.1f}" fill="#f6f6f1"/>')
        places.append((round((x + room_w / 2) / WIDTH, 3), round((y + room_h / 3) / HEIGHT, 3)))
    parts.append("</svg>")
    return "\n".join(parts), places
