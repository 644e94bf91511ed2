"""Today's date and the time in the user's time zone (set in /settings, or DEFAULT_TIMEZONE):
models know neither, and guess from their training data."""

from __future__ import annotations

from typing import Any

from aiogram.utils.i18n import gettext as _

from app.tools.base import Tool, ToolContext


async def _now(context: ToolContext, arguments: dict[str, Any]) -> str:
    now = context.now()
    return (
        f"{now:%A, %d %B %Y, %H:%M} ({context.timezone}, UTC{now:%z}); "
        f"ISO 8601: {now.isoformat(timespec='seconds')}"
    )


CLOCK = Tool(
    name="current_datetime",
    description=(
        "The current date, weekday and time in the user's time zone. Call it whenever the "
        "answer depends on today's date or the time (ages, deadlines, 'tomorrow', schedules)."
    ),
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
    run=_now,
    doing=lambda arguments: _("Checking the date and time"),
)
