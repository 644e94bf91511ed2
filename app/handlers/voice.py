"""Voice messages, audio files and round video messages: transcribed, the transcript shown
back, then answered like a typed message and stored as a spoken turn."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import MessageSource
from app.domain.media import AudioFile
from app.domain.users import Preferences, UserContext
from app.filters import Spoken
from app.handlers.chat import answer_within_budget, reply_and_speak
from app.services.chat import ChatService
from app.services.speech import SpeechService
from app.services.voice import VoiceService
from app.views.voice import transcript_quote


async def voice_message(
    message: Message,
    bot: Bot,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    chat: ChatService,
    voice: VoiceService,
    speech: SpeechService,
    audio: AudioFile,
) -> None:
    chat_id = message.chat.id

    async def answer() -> None:
        transcript = await voice.transcribe(
            bot,
            session,
            chat_id=chat_id,
            user_id=user.id,
            limited=preferences.limited,
            audio=audio,
        )
        if transcript is None:
            return
        await message.reply(transcript_quote(transcript))
        await reply_and_speak(
            message,
            bot,
            user,
            preferences,
            session,
            chat,
            speech,
            text=transcript,
            source=MessageSource.VOICE,
        )

    await answer_within_budget(bot, chat_id, answer())


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(voice_message, Spoken())
    return router
