"""Voice messages, audio files and round video messages: transcribed, the transcript shown
back, then answered like a typed message and stored as a spoken turn."""

from __future__ import annotations

from pathlib import PurePath

from aiogram import Bot, F, Router
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import MessageSource
from app.domain.media import AudioFile
from app.domain.users import Preferences, UserContext
from app.handlers.chat import answer_within_budget
from app.services.chat import ChatService
from app.services.voice import VoiceService
from app.views.voice import transcript_quote

# What /audio/transcriptions reads, by the extension of the file name it is given.
AUDIO_EXTENSIONS = frozenset(
    {"flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"}
)
BY_MIME = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "m4a",
    "audio/x-m4a": "m4a",
    "audio/aac": "m4a",
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/webm": "webm",
}


def audio_of(message: Message) -> AudioFile | None:
    if message.voice is not None:  # always Ogg/Opus
        voice = message.voice
        return AudioFile(voice.file_id, voice.duration, voice.file_size, "voice.ogg")
    if message.video_note is not None:  # always MPEG-4
        note = message.video_note
        return AudioFile(note.file_id, note.duration, note.file_size, "video_note.mp4")
    if message.audio is not None:
        audio = message.audio
        name = audio.file_name or ""
        extension = PurePath(name).suffix.lstrip(".").lower()
        if extension not in AUDIO_EXTENSIONS:
            extension = BY_MIME.get((audio.mime_type or "").lower(), "mp3")
            name = f"audio.{extension}"
        return AudioFile(audio.file_id, audio.duration, audio.file_size, name)
    return None


async def voice_message(
    message: Message,
    bot: Bot,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    chat: ChatService,
    voice: VoiceService,
) -> None:
    audio = audio_of(message)
    assert audio is not None  # the filter let only these in
    chat_id = message.chat.id

    async def answer() -> None:
        transcript = await voice.transcribe(
            bot,
            session,
            chat_id=chat_id,
            user_id=user.id,
            preferences=preferences,
            audio=audio,
        )
        if transcript is None:
            return
        await message.reply(transcript_quote(transcript))
        await chat.reply(
            bot,
            session,
            chat_id=chat_id,
            user_id=user.id,
            preferences=preferences,
            text=transcript,
            draft_id=message.message_id,
            telegram_message_id=message.message_id,
            source=MessageSource.VOICE,
        )

    await answer_within_budget(bot, chat_id, answer())


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(voice_message, F.voice | F.audio | F.video_note)
    return router
