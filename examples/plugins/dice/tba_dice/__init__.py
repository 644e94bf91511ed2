"""An example plugin: /dice asks how many dice and how many sides (a two-step dialog with
its own StatesGroup), and the model gets a `roll_dice` tool behind a right of the plugin's
("dice", granted by admins in /users). Its texts have a Russian catalog of their own.

Everything comes from `app.plugins.api`; see docs/plugins.md."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command as CommandFilter
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from app.plugins.api import (
    Command,
    Plugin,
    PluginContext,
    PluginSettings,
    Tool,
    ToolContext,
    ToolError,
)

RIGHT = "dice"


class DiceSettings(PluginSettings):
    model_config = SettingsConfigDict(env_prefix="DICE_", env_file=".env", extra="ignore")

    # The most dice one roll may have.
    max_dice: int = Field(default=10, ge=1, le=100)


class DiceDialog(StatesGroup):
    typing_count = State()
    typing_sides = State()


def roll(count: int, sides: int, rng: random.Random | None = None) -> list[int]:
    rng = rng or random.SystemRandom()
    return [rng.randint(1, sides) for _ in range(count)]


def _number(text: str | None, low: int, high: int) -> int | None:
    try:
        value = int((text or "").strip())
    except ValueError:
        return None
    return value if low <= value <= high else None


def plugin(context: PluginContext) -> Plugin:
    settings = context.settings(DiceSettings)
    router = Router(name="dice")

    @router.message(CommandFilter("dice"))
    async def start(message: Message, state: FSMContext) -> None:
        await state.set_state(DiceDialog.typing_count)
        await message.answer(
            _("🎲 How many dice? Send a number from 1 to {most}, or /cancel.").format(
                most=settings.max_dice
            )
        )

    @router.message(StateFilter(DiceDialog.typing_count), F.text, ~F.text.startswith("/"))
    async def typed_count(message: Message, state: FSMContext) -> None:
        count = _number(message.text, 1, settings.max_dice)
        if count is None:
            await message.answer(
                _("That is not a number from 1 to {most}.").format(most=settings.max_dice)
            )
            return
        await state.update_data(count=count)
        await state.set_state(DiceDialog.typing_sides)
        await message.answer(_("How many sides? From 2 to 1000."))

    @router.message(StateFilter(DiceDialog.typing_sides), F.text, ~F.text.startswith("/"))
    async def typed_sides(message: Message, state: FSMContext) -> None:
        sides = _number(message.text, 2, 1000)
        if sides is None:
            await message.answer(_("That is not a number from 2 to 1000."))
            return
        count = int((await state.get_data()).get("count", 1))
        await state.clear()
        rolled = roll(count, sides)
        await message.answer(
            _("🎲 {rolled} (total {total})").format(
                rolled=", ".join(map(str, rolled)), total=sum(rolled)
            )
        )

    async def roll_tool(tool_context: ToolContext, arguments: dict[str, Any]) -> str:
        count, sides = arguments.get("count", 1), arguments.get("sides", 6)
        if not isinstance(count, int) or not 1 <= count <= settings.max_dice:
            raise ToolError(f"count must be a whole number from 1 to {settings.max_dice}.")
        if not isinstance(sides, int) or not 2 <= sides <= 1000:
            raise ToolError("sides must be a whole number from 2 to 1000.")
        rolled = roll(count, sides)
        return f"Rolled {count}d{sides}: {', '.join(map(str, rolled))} (total {sum(rolled)})"

    tool = Tool(
        name="roll_dice",
        description="Roll dice fairly: `count` dice with `sides` sides each.",
        parameters={
            "type": "object",
            "properties": {
                "count": {"type": "integer", "minimum": 1, "maximum": settings.max_dice},
                "sides": {"type": "integer", "minimum": 2, "maximum": 1000},
            },
            "required": ["count", "sides"],
            "additionalProperties": False,
        },
        run=roll_tool,
        right=RIGHT,
        doing=lambda arguments: _("Rolling the dice"),
    )
    return Plugin(
        name="dice",
        routers=[router],
        commands=[Command("dice", __("Roll dice"))],
        tools=[tool],
        rights={RIGHT: "Roll dice (the dice plugin's tool)"},
        locales=Path(__file__).parent / "locales",
    )
