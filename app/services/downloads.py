"""Files users send, fetched from Telegram: one way to do it for voice, images and
documents, and one way to tell the user when it fails."""

from __future__ import annotations

import io
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest

from app import texts

log = logging.getLogger(__name__)

# The public Bot API hands bots files of up to 20 MB (getFile); a self-hosted Bot API
# server (TELEGRAM_API_URL) allows more, so there the server's own answer decides.
PUBLIC_DOWNLOAD_LIMIT = 20 * 1024 * 1024


class DownloadFailed(Exception):
    """Telegram did not hand the file over; `too_big` when it said the file is too big."""

    def __init__(self, too_big: bool) -> None:
        self.too_big = too_big
        super().__init__("file is too big" if too_big else "download failed")


async def download(bot: Bot, file_id: str) -> bytes:
    """The file's bytes; raises DownloadFailed."""
    buffer = io.BytesIO()
    try:
        await bot.download(file_id, destination=buffer)
    except TelegramBadRequest as exc:
        # "file is too big": past what this Bot API server hands out.
        log.info("File not downloaded: %s", exc.message)
        raise DownloadFailed("too big" in exc.message.lower()) from exc
    except (TelegramAPIError, OSError, TimeoutError) as exc:
        log.warning("File not downloaded: %s", type(exc).__name__)
        raise DownloadFailed(False) from exc
    return buffer.getvalue()


async def download_or_tell(bot: Bot, chat_id: int, file_id: str, limit: int | None) -> bytes | None:
    """The file's bytes, or None once the user was told why there are none."""
    try:
        return await download(bot, file_id)
    except DownloadFailed as failed:
        text = texts.file_too_big(limit) if failed.too_big else texts.download_failed()
        await bot.send_message(chat_id, text)
        return None
