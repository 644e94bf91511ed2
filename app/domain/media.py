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


@dataclass(frozen=True, slots=True)
class ImageFile:
    """An image a user sent, before it is fetched: a photo (its largest size) or an image
    sent as a file. Telegram gives a photo's size; a file's is known once it is fetched."""

    file_id: str
    file_unique_id: str
    size: int | None  # bytes, when Telegram says
    width: int | None = None
    height: int | None = None
    mime_type: str | None = None


@dataclass(frozen=True, slots=True)
class Picture:
    """An image of a stored user turn: its Telegram file, its size in pixels (its tokens
    are counted from it), and the format it is sent to the model in."""

    file_id: str
    file_unique_id: str
    width: int
    height: int
    mime_type: str = "image/jpeg"
    # A page of a scanned PDF (the file), rendered from it: counted from 0.
    page: int | None = None


@dataclass(frozen=True, slots=True)
class DocumentFile:
    """A file a user sent to be read (not an image): a Telegram file to fetch."""

    file_id: str
    file_unique_id: str
    size: int | None  # bytes, when Telegram says
    file_name: str
    mime_type: str | None
