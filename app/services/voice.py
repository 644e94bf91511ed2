"""Voice messages, audio files and round video messages: fetched from Telegram, transcribed,
paid for; the transcript is then answered like a typed message (app/handlers/voice.py)."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.utils.chat_action import ChatActionSender
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.config import VoiceSettings
from app.domain.media import AudioFile
from app.llm.chat import LLMError
from app.llm.transcribe import Transcriber
from app.services.downloads import PUBLIC_DOWNLOAD_LIMIT, download_or_tell
from app.services.usage import UsageService

log = logging.getLogger(__name__)


class VoiceService:
    def __init__(
        self,
        transcriber: Transcriber,
        settings: VoiceSettings,
        *,
        usage: UsageService | None = None,
        download_limit: int | None = PUBLIC_DOWNLOAD_LIMIT,
    ) -> None:
        self.transcriber = transcriber
        self.settings = settings
        self.usage = usage
        self.download_limit = download_limit

    async def transcribe(
        self,
        bot: Bot,
        session: AsyncSession,
        *,
        chat_id: int,
        user_id: int,
        limited: bool,
        audio: AudioFile,
    ) -> str | None:
        """The transcript, or None once the user was told why there is none (too long, too
        big, not downloadable, the server failed, nothing said). Raises BudgetRefused for a
        user over a limit, before anything is downloaded; the transcription's cost is
        recorded and committed, whatever happens to the answer after it."""
        limit = self.settings.max_seconds
        if audio.seconds > limit:
            await bot.send_message(chat_id, texts.voice_too_long(audio.seconds, limit))
            return None
        if self.download_limit is not None and (audio.size or 0) > self.download_limit:
            await bot.send_message(chat_id, texts.file_too_big(self.download_limit))
            return None
        if self.usage is not None and limited:
            await self.usage.refuse_over_limit(session, user_id)
        async with ChatActionSender.typing(bot=bot, chat_id=chat_id):
            data = await download_or_tell(bot, chat_id, audio.file_id, self.download_limit)
            if data is None:
                return None
            try:
                transcript = await self.transcriber.transcribe(data, audio.file_name, audio.seconds)
            except LLMError as exc:
                log.warning("Transcription failed for user %s (%s): %s", user_id, exc.kind, exc)
                await bot.send_message(chat_id, texts.transcription_failed(exc.kind))
                return None
        if self.usage is not None:
            await self.usage.record(
                session,
                user_id=user_id,
                model=self.transcriber.model,
                usage=transcript.usage,
                seconds=transcript.seconds,
            )
            await session.commit()
        if not transcript.text:
            await bot.send_message(chat_id, texts.nothing_heard())
            return None
        return transcript.text

    async def close(self) -> None:
        await self.transcriber.close()
