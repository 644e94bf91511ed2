"""What a user sent besides text, as the services see it (no aiogram types)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AudioFile:
    """A voice message, an audio file or a round video message: a Telegram file to fetch."""

    file_id: str
    seconds: int
    size: int | None  # bytes, when Telegram says
    file_name: str  # with the extension the transcription server goes by (.ogg, .mp3, .mp4)
