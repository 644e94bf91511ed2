"""The images plugin's pure parts: the caption cut to Telegram's limit, and its settings
(OPENAI_IMAGE_MODEL by that very name, "off", the size's form)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.plugins.images import CAPTION_LIMIT, DEFAULT_MODEL, ImagesSettings, caption_of


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_a_short_prompt_is_the_caption_as_it_is() -> None:
    assert caption_of("  a red fox  ") == "a red fox"


@pytest.mark.parametrize("letter", ["a", "ж", "🦊"])
def test_a_long_prompt_is_cut_to_telegrams_caption_limit_in_utf16_units(letter: str) -> None:
    caption = caption_of(letter * 3000)
    assert caption.endswith("…")
    assert CAPTION_LIMIT - 2 <= utf16(caption) <= CAPTION_LIMIT


def test_the_model_is_read_from_openai_image_model(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ImagesSettings(_env_file=None).model_name == DEFAULT_MODEL
    monkeypatch.setenv("OPENAI_IMAGE_MODEL", "dall-e-3")
    monkeypatch.setenv("IMAGES_SIZE", "1792x1024")
    settings = ImagesSettings(_env_file=None)
    assert (settings.model_name, settings.size, settings.off) == ("dall-e-3", "1792x1024", False)
    monkeypatch.setenv("OPENAI_IMAGE_MODEL", "OFF")
    assert ImagesSettings(_env_file=None).off


def test_a_size_not_width_by_height_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGES_SIZE", "big")
    with pytest.raises(ValidationError):
        ImagesSettings(_env_file=None)


async def test_a_picture_by_url_is_downloaded_within_its_size_cap() -> None:
    from aiohttp import web

    from app.plugins.images import download

    async def small(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 100)

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000)

    app = web.Application()
    app.router.add_get("/small", small)
    app.router.add_get("/big", big)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        assert await download(f"http://127.0.0.1:{port}/small", 5, limit=1000) == b"x" * 100
        with pytest.raises(ValueError, match="too large"):
            await download(f"http://127.0.0.1:{port}/big", 5, limit=1000)
    finally:
        await runner.cleanup()
