"""The baseline for bench/load.py: the least an aiogram bot streaming OpenAI answers does.

History in a dict per user, one message sent at the first text and edited once with the
final text. Configured by TELEGRAM_BOT_TOKEN, TELEGRAM_API_URL, OPENAI_API_KEY,
OPENAI_BASE_URL and OPENAI_MODEL; polls, or with WEBHOOK_URL (and WEBHOOK_LISTEN,
WEBHOOK_PATH, WEBHOOK_SECRET, named as the app's) serves webhooks with aiogram's aiohttp
handler. Stops (exit 0) on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from openai import AsyncOpenAI

dp = Dispatcher()
client = AsyncOpenAI()  # reads OPENAI_API_KEY and OPENAI_BASE_URL
history: dict[int, list[Any]] = {}


@dp.message(F.text)
async def answer(message: Message) -> None:
    turns = history.setdefault(message.chat.id, [])
    turns.append({"role": "user", "content": message.text})
    stream = await client.chat.completions.create(
        model=os.environ["OPENAI_MODEL"], messages=turns, stream=True
    )
    text, first, sent = "", "", None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
            if sent is None:
                sent = await message.answer(text)
                first = text
    if sent is not None and text != first:
        await sent.edit_text(text)
    turns.append({"role": "assistant", "content": text})


def create_bot() -> Bot:
    api = TelegramAPIServer.from_base(
        os.environ.get("TELEGRAM_API_URL", "https://api.telegram.org")
    )
    return Bot(os.environ["TELEGRAM_BOT_TOKEN"], session=AiohttpSession(api=api))


async def main() -> None:
    await dp.start_polling(create_bot())  # returns on SIGTERM/SIGINT


def serve_webhook(url: str) -> None:
    """aiogram's own webhook recipe: setWebhook at start-up, updates handled in background."""
    bot = create_bot()
    secret = os.environ["WEBHOOK_SECRET"]

    async def register(bot: Bot) -> None:
        await bot.set_webhook(url, secret_token=secret)

    dp.startup.register(register)
    app = web.Application()
    SimpleRequestHandler(dp, bot, secret_token=secret).register(
        app, path=os.environ.get("WEBHOOK_PATH", "/telegram")
    )
    setup_application(app, dp, bot=bot)
    host, _, port = os.environ.get("WEBHOOK_LISTEN", "127.0.0.1:8080").rpartition(":")
    web.run_app(app, host=host, port=int(port), access_log=None, print=None)  # stops on SIGTERM


if __name__ == "__main__":
    if webhook_url := os.environ.get("WEBHOOK_URL"):
        serve_webhook(webhook_url)
    else:
        asyncio.run(main())
