"""Voice messages, audio files and round video messages: fetched from Telegram, transcribed,
paid for; the transcript is then answered like a typed message (app/handlers/voice.py)."""

from __future__ import annotations

import io
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.utils.chat_action import ChatActionSender
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.config import VoiceSettings
from app.domain.media import AudioFile
from app.llm.chat import LLMError
from app.llm.transcribe import Transcriber
from app.services.usage import BudgetRefused, UsageService

log = logging.getLogger(__name__)

# The public Bot API hands bots files of up to 20 MB (getFile); a self-hosted Bot API
# server (TELEGRAM_API_URL) allows more, so there the server's own answer decides.
PUBLIC_DOWNLOAD_LIMIT = 20 * 1024 * 1024


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
            reached = await self.usage.check(session, user_id)
            if reached is not None:
                raise BudgetRefused(reached, self.usage.currency)
        async with ChatActionSender.typing(bot=bot, chat_id=chat_id):
            data = await self._download(bot, chat_id, audio)
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

    async def _download(self, bot: Bot, chat_id: int, audio: AudioFile) -> bytes | None:
        buffer = io.BytesIO()
        try:
            await bot.download(audio.file_id, destination=buffer)
        except TelegramBadRequest as exc:
            # "file is too big": past what this Bot API server hands out.
            log.info("Audio not downloaded: %s", exc.message)
            if "too big" in exc.message.lower():
                await bot.send_message(chat_id, texts.file_too_big(self.download_limit))
            else:
                await bot.send_message(chat_id, texts.download_failed())
            return None
        except (TelegramAPIError, OSError, TimeoutError) as exc:
            log.warning("Audio not downloaded: %s", type(exc).__name__)
            await bot.send_message(chat_id, texts.download_failed())
            return None
        return buffer.getvalue()

    async def close(self) -> None:
        await self.transcriber.close()
