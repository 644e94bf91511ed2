"""A voice message sent where a dialog waits for text (a fact, a persona's description) is
transcribed and taken as that text, as if it had been typed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.fsm.context import FSMContext
from aiogram.types import Message, TelegramObject

from app.config import BudgetSettings
from app.domain.rights import Right
from app.domain.users import UserContext
from app.filters import audio_of
from app.fsm.hints import TAKES_SPOKEN_TEXT
from app.middlewares.preferences import budget_applies
from app.services.usage import BudgetRefused
from app.services.voice import VoiceService
from app.views.usage import budget_refusal
from app.views.voice import transcript_quote


class SpokenTextMiddleware(BaseMiddleware):
    """Outer message middleware, after the access, session and language ones and before any
    handler is chosen: the dialog step's own handler (registered for text) then gets a copy
    of the message with the transcript as its text, and handles it like typed text. Outside
    such a step a recording goes on as it is (app/handlers/voice.py answers it)."""

    def __init__(self, voice: VoiceService, budget: BudgetSettings) -> None:
        self.voice = voice
        self.budget = budget

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        audio = audio_of(event) if isinstance(event, Message) else None
        state: FSMContext | None = data.get("state")
        user: UserContext | None = data.get("user")
        if (
            audio is None
            or not isinstance(event, Message)
            or state is None
            or user is None
            or Right.CHAT not in user.rights  # transcription is for those who may chat
            or await state.get_state() not in TAKES_SPOKEN_TEXT
        ):
            return await handler(event, data)
        bot: Bot = data["bot"]
        try:
            transcript = await self.voice.transcribe(
                bot,
                data["session"],
                chat_id=event.chat.id,
                user_id=user.id,
                limited=budget_applies(user, self.budget),
                audio=audio,
            )
        except BudgetRefused as refused:
            await bot.send_message(event.chat.id, budget_refusal(refused.reached, refused.currency))
            return None
        if transcript is None:
            return None  # the user was told why; the dialog stays where it was
        await event.reply(transcript_quote(transcript))
        return await handler(event.model_copy(update={"text": transcript}), data)
