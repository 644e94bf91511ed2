"""Answers spoken back: after the answer's text, the same answer as a voice message, for
users who chose so in /settings (always, or when their own message was spoken)."""

from __future__ import annotations

import io
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BufferedInputFile
from aiogram.utils.chat_action import ChatActionSender
from mutagen import MutagenError
from mutagen.oggopus import OggOpus
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.delivery.spoken import speakable
from app.domain.enums import VoiceReplies
from app.llm.chat import LLMError, TokenUsage
from app.llm.speech import Speaker
from app.memory.tokens import TokenCounter
from app.services.usage import UsageService

log = logging.getLogger(__name__)


def wants_voice(replies: VoiceReplies, spoken: bool) -> bool:
    return replies is VoiceReplies.ALWAYS or (replies is VoiceReplies.TO_VOICE and spoken)


class SpeechService:
    def __init__(
        self, speaker: Speaker, counter: TokenCounter, *, usage: UsageService | None = None
    ) -> None:
        self.speaker = speaker
        self.counter = counter
        self.usage = usage

    async def say(
        self,
        bot: Bot,
        session: AsyncSession,
        *,
        chat_id: int,
        user_id: int,
        answer: str,
        reply_to: int | None = None,
    ) -> bool:
        """Send `answer` (Markdown, already shown as text) as a voice message; False when
        there was nothing to say or it failed (logged, and the user told in one sentence:
        the text above is what counts)."""
        speech = speakable(answer)
        if not speech.text:
            return False
        async with ChatActionSender.record_voice(bot=bot, chat_id=chat_id):
            try:
                audio = await self.speaker.speak(speech.text)
            except LLMError as exc:
                log.warning("Speech failed for user %s (%s): %s", user_id, exc.kind, exc)
                await bot.send_message(chat_id, texts.speech_failed())
                return False
        if self.usage is not None:
            # /audio/speech reports no usage: the input is counted here (the audio is
            # priced by the owner per token of input in BUDGET_PRICES).
            usage = TokenUsage(self.counter.text(speech.text), 0)
            await self.usage.record(session, user_id=user_id, model=self.speaker.model, usage=usage)
            await session.commit()
        try:
            await bot.send_voice(
                chat_id,
                BufferedInputFile(audio, "answer.ogg"),
                duration=_duration(audio),
                caption=texts.spoken_first_part() if speech.cut else None,
                reply_to_message_id=reply_to,
            )
        except TelegramAPIError as exc:
            # e.g. the user's privacy settings refuse voice messages from bots.
            log.warning("Voice answer not sent to user %s: %s", user_id, type(exc).__name__)
            return False
        return True


def _duration(audio: bytes) -> int | None:
    """The voice message's length in whole seconds, read from its Ogg/Opus stream (Telegram
    shows it on the message); None when the server's audio is not Ogg/Opus."""
    try:
        info = OggOpus(io.BytesIO(audio)).info  # type: ignore[no-untyped-call]
    except MutagenError:
        return None
    return max(1, round(float(getattr(info, "length", 0) or 0)))
