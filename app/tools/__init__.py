"""What the model may call: the tools of the bot, of its plugins and of MCP servers, each
behind the right a user needs, run in one toolbox (app/tools/toolbox.py)."""

from __future__ import annotations

from app.tools.base import Tool


def builtin_tools() -> list[Tool]:
    """The bot's own tools, always there: the date and time, and a calculator."""
    from app.tools.calculator import CALCULATOR
    from app.tools.clock import CLOCK

    return [CLOCK, CALCULATOR]
