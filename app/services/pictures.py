"""The bytes of the images users send: fetched from Telegram, checked, kept for a while.

Where they live, and why: the database keeps each image's Telegram `file_id` and size
(`MessageImage`), and the bytes stay with Telegram, which hands a bot its files again at
any time. The database stays small however many photos a family sends, every replica can
fetch any image, and a restart loses nothing. A follow-up question ("and on the left?")
sends the image again, so the data URLs of recent images are kept here, in memory, up to
`cache_bytes`: the usual follow-up costs no download. Within one request each image is
fetched once, whatever number of turns carries it. When Telegram cannot hand an old image
over, the request goes with a note in its place (`Assembled.without_pictures_of`).
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from collections import OrderedDict
from collections.abc import Sequence

from aiogram import Bot
from PIL import Image, UnidentifiedImageError

from app.domain.documents import DocumentRefused, RenderedPage
from app.domain.media import DocumentFile, ImageFile, Picture
from app.services.downloads import DownloadFailed, download

log = logging.getLogger(__name__)

# The formats OpenAI's vision models take as they are (PNG, JPEG, WEBP, non-animated GIF);
# any other image Pillow reads (BMP, TIFF, an animated GIF, ...) is sent as PNG.
SENT_AS_IS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
# Pillow refuses images over twice this many pixels as decompression bombs; a photo of
# 50 megapixels is larger than any phone takes.
MAX_PIXELS = 50_000_000


class PictureRefused(Exception):
    """The image cannot be used: `reason` is "too_big", "unreadable" or "download"."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Pictures:
    """Fetches images from Telegram and keeps their data URLs, least recently used first out."""

    def __init__(self, *, cache_bytes: int = 64 * 1024 * 1024, download_limit: int | None) -> None:
        self.cache_bytes = cache_bytes
        self.download_limit = download_limit
        self._urls: OrderedDict[str, str] = OrderedDict()
        self._cached = 0

    async def receive(self, bot: Bot, images: Sequence[ImageFile]) -> list[Picture]:
        """The images a user just sent, fetched (at once) and checked; raises PictureRefused
        for the first that cannot be used. Their data is kept for the request that follows."""
        for image in images:
            if self.download_limit is not None and (image.size or 0) > self.download_limit:
                raise PictureRefused("too_big")
        return list(await asyncio.gather(*(self._receive(bot, image) for image in images)))

    async def _receive(self, bot: Bot, image: ImageFile) -> Picture:
        data = await self._download(bot, image.file_id)
        if data is None:
            raise PictureRefused("download")
        try:
            picture, url = await asyncio.to_thread(_prepare, data, image)
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
            log.info("An image was refused: %s", type(exc).__name__)
            raise PictureRefused("unreadable") from exc
        self._keep(picture.file_unique_id, url)
        return picture

    def keep_pages(self, file: DocumentFile, pages: Sequence[RenderedPage]) -> list[Picture]:
        """Pages of a scanned PDF, rendered, as the images of a turn: each a picture of the
        PDF's file with its page number, so that it can be rendered again from it."""
        pictures: list[Picture] = []
        for number, page in enumerate(pages):
            key = f"{file.file_unique_id}#{number}"
            url = f"data:image/png;base64,{base64.b64encode(page.png).decode('ascii')}"
            self._keep(key, url)
            pictures.append(
                Picture(file.file_id, key, page.width, page.height, "image/png", page=number)
            )
        return pictures

    async def data_urls(
        self, bot: Bot, pictures: Sequence[Picture]
    ) -> tuple[dict[str, str], set[str]]:
        """The data URL of each image by file_unique_id, fetching those not kept, each once;
        and the ids of those Telegram could not hand over (or that no longer read)."""
        urls: dict[str, str] = {}
        wanted: dict[str, Picture] = {}
        for picture in pictures:
            key = picture.file_unique_id
            url = self._urls.get(key)
            if url is not None:
                self._urls.move_to_end(key)
                urls[key] = url
            else:
                wanted.setdefault(key, picture)
        fetched = await asyncio.gather(*(self._refetch(bot, p) for p in wanted.values()))
        missing: set[str] = set()
        for key, url in zip(wanted, fetched, strict=True):
            if url is None:
                missing.add(key)
            else:
                urls[key] = url
                self._keep(key, url)
        return urls, missing

    async def _refetch(self, bot: Bot, picture: Picture) -> str | None:
        data = await self._download(bot, picture.file_id)
        if data is None:
            return None
        if picture.page is not None:
            # Imported here, as in app/services/documents.py: only scans need pdfium.
            from app.documents.render import render_pages

            try:
                rendered = await asyncio.to_thread(render_pages, data, picture.page + 1)
            except DocumentRefused:
                return None
            if len(rendered) <= picture.page:
                return None
            return await asyncio.to_thread(_encode, rendered[picture.page].png, "image/png")
        try:
            return await asyncio.to_thread(_encode, data, picture.mime_type)
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
            log.warning("A stored image no longer reads; it is left out of the request")
            return None

    async def _download(self, bot: Bot, file_id: str) -> bytes | None:
        try:
            return await download(bot, file_id)
        except DownloadFailed:
            return None

    def _keep(self, key: str, url: str) -> None:
        if key in self._urls:
            self._urls.move_to_end(key)
            return
        if len(url) > self.cache_bytes:
            return
        self._urls[key] = url
        self._cached += len(url)
        while self._cached > self.cache_bytes:
            _, dropped = self._urls.popitem(last=False)
            self._cached -= len(dropped)


def _prepare(data: bytes, image: ImageFile) -> tuple[Picture, str]:
    """Read the image (in a thread: decoding is CPU work): its size, and its data URL in a
    format the model takes."""
    with Image.open(io.BytesIO(data)) as opened:
        if opened.width * opened.height > MAX_PIXELS:
            raise ValueError("too many pixels")
        opened.verify()
    with Image.open(io.BytesIO(data)) as opened:
        mime = _sent_as(opened)
        picture = Picture(image.file_id, image.file_unique_id, opened.width, opened.height, mime)
    return picture, _encode(data, mime)


def _sent_as(image: Image.Image) -> str:
    mime = SENT_AS_IS.get(image.format or "")
    if mime is None or getattr(image, "is_animated", False):
        return "image/png"
    return mime


def _encode(data: bytes, mime: str) -> str:
    """A data URL of the image as `mime`: as it is when it already is one, else converted."""
    with Image.open(io.BytesIO(data)) as opened:
        if SENT_AS_IS.get(opened.format or "") != mime or getattr(opened, "is_animated", False):
            buffer = io.BytesIO()
            opened.seek(0)
            frame = opened.convert("RGBA" if "A" in opened.getbands() else "RGB")
            frame.save(buffer, format="PNG")
            data = buffer.getvalue()
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
