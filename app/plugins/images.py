"""The images plugin (built in): `/image <description>` (or `/image` alone, then the
description), and a `generate_image` tool the model may call. Pictures come from the
OpenAI-compatible images endpoint (OPENAI_IMAGE_MODEL, IMAGES_SIZE) and are sent as photos;
each one is checked against the user's budget first and recorded as usage after.

Both need the plugin's right "images", which admins grant: a picture costs several times
what a chat answer does, so it is not every user's by default.

Everything of the bot comes from `app.plugins.api` and from the services the bot hands
built-in plugins (`spending`: budget check and usage rows; `budget_refusal`: the sentence
for a user over a limit)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import openai
from aiogram import Bot, F, Router
from aiogram.enums import ChatAction
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command as CommandFilter
from aiogram.filters import CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from pydantic import AliasChoices, Field, field_validator
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

RIGHT = "images"
DEFAULT_MODEL = "gpt-image-1"
# Telegram's limits: a caption's characters, and a photo a bot uploads.
CAPTION_LIMIT = 1024
PHOTO_LIMIT = 10 * 1024 * 1024
# A chat action shows for 5 seconds: renewed while the picture is made.
ACTION_EVERY = 4.5
# Codes of a prompt refused by the server's safety system (gpt-image-1, DALL·E).
MODERATION_CODES = frozenset({"moderation_blocked", "content_policy_violation"})


class ImagesSettings(PluginSettings):
    """OPENAI_IMAGE_MODEL (next to the bot's other OPENAI_ models) and the IMAGES_ settings."""

    model_config = SettingsConfigDict(env_prefix="IMAGES_", env_file=".env", extra="ignore")

    # The images model; None: gpt-image-1 (OpenAI's); "off": no /image and no tool.
    model: str | None = Field(default=None, validation_alias=AliasChoices("OPENAI_IMAGE_MODEL"))
    # What the endpoint is asked for: WIDTHxHEIGHT, or "auto".
    size: str = Field(default="1024x1024", pattern=r"^(auto|\d{2,5}x\d{2,5})$")
    # Seconds a picture may take (gpt-image-1 takes up to a minute at high quality).
    timeout: float = Field(default=120.0, gt=0, le=600)

    @field_validator("model", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def off(self) -> bool:
        return (self.model or "").strip().lower() == "off"

    @property
    def model_name(self) -> str:
        return (self.model or DEFAULT_MODEL).strip()


class ImageDialog(StatesGroup):
    typing_prompt = State()


class Refused(Exception):
    """The picture is not made: `why` says which ("budget", "group_budget", "moderation",
    "failed", "send"); `reached` is the limit for the two budgets."""

    def __init__(self, why: str, reached: Any = None) -> None:
        super().__init__(why)
        self.why, self.reached = why, reached


def _units(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def caption_of(prompt: str, limit: int = CAPTION_LIMIT) -> str:
    """The prompt as the photo's caption: cut with an ellipsis to Telegram's limit."""
    prompt = prompt.strip()
    if _units(prompt) <= limit:
        return prompt
    cut = prompt[: limit - 1]
    while _units(cut) > limit - 1:
        cut = cut[:-1]
    return cut.rstrip() + "…"


def preview_of(prompt: str, limit: int = 60) -> str:
    return caption_of(" ".join(prompt.split()), limit)


@contextlib.asynccontextmanager
async def uploading(bot: Bot, chat_id: int, thread_id: int | None, log: Any) -> AsyncIterator[None]:
    """The chat shows "sending a photo" while the picture is made; a failing action only
    ends the action, never the picture."""

    async def keep() -> None:
        while True:
            try:
                await bot.send_chat_action(
                    chat_id, ChatAction.UPLOAD_PHOTO, message_thread_id=thread_id
                )
            except Exception as exc:  # noqa: BLE001 - a chat action is not essential
                log.info("Chat action failed: %s", type(exc).__name__)
                return
            await asyncio.sleep(ACTION_EVERY)

    task = asyncio.create_task(keep())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def download(url: str, seconds: float, limit: int = PHOTO_LIMIT) -> bytes:
    """A picture a server returned as a URL, at most `limit` bytes, within `seconds`."""
    client_timeout = aiohttp.ClientTimeout(total=seconds)
    async with (
        aiohttp.ClientSession(timeout=client_timeout) as session,
        session.get(url) as response,
    ):
        response.raise_for_status()
        if (response.content_length or 0) > limit:
            raise ValueError("the picture is too large")
        data = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            data += chunk
            if len(data) > limit:
                raise ValueError("the picture is too large")
        return bytes(data)


@dataclass(slots=True)
class Painter:
    """Makes a picture for a user and sends it to a chat: budget, endpoint, usage, photo."""

    context: PluginContext
    settings: ImagesSettings

    async def paint(
        self, bot: Bot, *, user_id: int, chat_id: int, thread_id: int | None, prompt: str
    ) -> None:
        """Raises Refused when no photo was sent, saying why."""
        spending = self.context.services.get("spending")
        # Groups and supergroups have negative ids: there the group's budget counts too.
        group_id = chat_id if chat_id < 0 else None
        if spending is not None:
            reached = await spending.over_limit(user_id)
            if reached is not None:
                raise Refused("budget", reached)
            if group_id is not None:
                reached = await spending.group_over_limit(group_id, user_id)
                if reached is not None:
                    raise Refused("group_budget", reached)
        log = self.context.log
        model = self.settings.model_name
        async with uploading(bot, chat_id, thread_id, log):
            try:
                response = await self.context.llm.images.generate(
                    model=model,
                    prompt=prompt,
                    size=self.settings.size,
                    n=1,
                    timeout=self.settings.timeout,
                )
            except openai.BadRequestError as exc:
                if exc.code in MODERATION_CODES:
                    log.info("The images endpoint refused a prompt (%s)", exc.code)
                    raise Refused("moderation") from exc
                log.warning("The images endpoint answered 400 (%s)", exc.code)
                raise Refused("failed") from exc
            except openai.OpenAIError as exc:
                log.warning("The images endpoint failed: %s", type(exc).__name__)
                raise Refused("failed") from exc
            pictures = response.data or []
            if spending is not None:
                usage = response.usage
                await spending.record(
                    user_id,
                    model,
                    prompt_tokens=usage.input_tokens if usage is not None else 0,
                    completion_tokens=usage.output_tokens if usage is not None else 0,
                    images=len(pictures),
                    group_id=group_id,
                )
            data = await self._bytes_of(pictures[0] if pictures else None)
            try:
                await bot.send_photo(
                    chat_id,
                    BufferedInputFile(data, "image.png"),
                    caption=caption_of(prompt),
                    message_thread_id=thread_id,
                )
            except TelegramAPIError as exc:
                log.warning("The picture could not be sent: %s", type(exc).__name__)
                raise Refused("send") from exc

    async def _bytes_of(self, picture: Any) -> bytes:
        try:
            if picture is not None and picture.b64_json:
                return base64.b64decode(picture.b64_json, validate=True)
            if picture is not None and picture.url:
                return await download(picture.url, self.settings.timeout)
        except (binascii.Error, ValueError, aiohttp.ClientError, TimeoutError) as exc:
            self.context.log.warning("The picture could not be read: %s", type(exc).__name__)
            raise Refused("failed") from exc
        self.context.log.warning("The images endpoint answered without a picture")
        raise Refused("failed")


def refusal_text(context: PluginContext, refused: Refused) -> str:
    """What the user of /image is told."""
    tell: Callable[..., str] | None = context.services.get("budget_refusal")
    spending = context.services.get("spending")
    if refused.why in ("budget", "group_budget") and tell is not None and spending is not None:
        return tell(refused.reached, spending.currency, group=refused.why == "group_budget")
    if refused.why == "moderation":
        return _(
            "The image service refused this description (its safety system blocked it). "
            "Try describing the picture differently."
        )
    if refused.why == "send":
        return _("The picture was made but could not be sent. Try again later.")
    return _("The picture could not be made: the image service failed. Try again later.")


# What the model reads when the tool made no picture.
TOOL_REFUSALS = {
    "budget": "The user has reached their budget limit: no image was made. Tell them.",
    "group_budget": "This group has reached its budget limit: no image was made. Tell them.",
    "moderation": (
        "The image service's safety system refused this prompt: no image was made. Do not "
        "retry the same prompt."
    ),
    "send": "The image was made but could not be sent to the chat.",
    "failed": "The image service failed: no image was made.",
}


def _router(context: PluginContext, painter: Painter) -> Router:
    router = Router(name="images")

    async def paint(message: Message, bot: Bot, prompt: str) -> None:
        if message.from_user is None:
            return
        try:
            await painter.paint(
                bot,
                user_id=message.from_user.id,
                chat_id=message.chat.id,
                thread_id=message.message_thread_id if message.is_topic_message else None,
                prompt=prompt,
            )
        except Refused as refused:
            await message.answer(refusal_text(context, refused))

    @router.message(StateFilter(None), CommandFilter("image"))
    async def image(message: Message, command: CommandObject, bot: Bot, state: FSMContext) -> None:
        prompt = (command.args or "").strip()
        if not prompt:
            await state.set_state(ImageDialog.typing_prompt)
            await message.answer(
                _("🎨 What should the picture show? Send a description, or /cancel.")
            )
            return
        await paint(message, bot, prompt)

    @router.message(StateFilter(ImageDialog.typing_prompt), F.text, ~F.text.startswith("/"))
    async def typed_prompt(message: Message, bot: Bot, state: FSMContext) -> None:
        # The dialog ends after the picture: the bot's FSM storage may write in the update's
        # own session, and an uncommitted write there would hold up the usage row's.
        try:
            await paint(message, bot, (message.text or "").strip())
        finally:
            await state.clear()

    @router.message(StateFilter(ImageDialog.typing_prompt))
    async def not_a_prompt(message: Message) -> None:
        await message.answer(_("Send the picture's description as text, or /cancel."))

    return router


def _tool(context: PluginContext, painter: Painter) -> Tool:
    async def run(tool_context: ToolContext, arguments: dict[str, Any]) -> str:
        prompt = arguments.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ToolError("prompt must be a non-empty description of the picture.")
        if context.bot is None:
            raise ToolError("The bot cannot send pictures now.")
        try:
            await painter.paint(
                context.bot,
                user_id=tool_context.user_id,
                chat_id=tool_context.chat_id,
                thread_id=tool_context.thread_id,
                prompt=prompt.strip(),
            )
        except Refused as refused:
            raise ToolError(TOOL_REFUSALS[refused.why]) from refused
        return "The image was sent to the user."

    return Tool(
        name="generate_image",
        description=(
            "Draw a picture from a description and send it to the user as a photo. Use it "
            "when the user asks for an image; describe the picture fully in English. The "
            "user sees the photo: do not describe it again in your answer."
        ),
        parameters={
            "type": "object",
            "properties": {"prompt": {"type": "string", "description": "What the picture shows."}},
            "required": ["prompt"],
            "additionalProperties": False,
        },
        run=run,
        right=RIGHT,
        # A picture takes up to a minute or two, longer than TOOLS_TIMEOUT's searches.
        timeout=painter.settings.timeout + 10,
        doing=lambda arguments: _("Drawing: {prompt}").format(
            prompt=preview_of(str(arguments.get("prompt") or ""))
        ),
    )


def plugin(context: PluginContext) -> Plugin:
    settings = context.settings(ImagesSettings)
    if settings.off:
        context.log.info("OPENAI_IMAGE_MODEL is off: no /image and no generate_image tool")
        return Plugin(name="images")
    painter = Painter(context, settings)

    async def start(context: PluginContext) -> None:
        if settings.model is None and "api.openai.com" not in str(context.llm.base_url):
            # INFO: the plugin is on by default, and most owners of local servers never
            # draw; its right keeps it from everyone until an admin grants it.
            context.log.info(
                "OPENAI_IMAGE_MODEL is not set: images use %s, which a server other than "
                "OpenAI's may not have. Set OPENAI_IMAGE_MODEL to a model the server has "
                "(or to off)",
                DEFAULT_MODEL,
            )

    return Plugin(
        name="images",
        routers=[_router(context, painter)],
        commands=[Command("image", __("Draw a picture from a description"), right=RIGHT)],
        tools=[_tool(context, painter)],
        rights={RIGHT: "Make pictures (/image, and the model's generate_image tool)"},
        on_startup=start,
    )
