"""The baseline for bench/load.py: the least an aiogram bot streaming OpenAI answers does.

History in a dict per user, one message sent at the first text and edited once with the
final text. Configured by TELEGRAM_BOT_TOKEN, TELEGRAM_API_URL, OPENAI_API_KEY,
OPENAI_BASE_URL and OPENAI_MODEL; stops (exit 0) on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message
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


async def main() -> None:
    api = TelegramAPIServer.from_base(
        os.environ.get("TELEGRAM_API_URL", "https://api.telegram.org")
    )
    bot = Bot(os.environ["TELEGRAM_BOT_TOKEN"], session=AiohttpSession(api=api))
    await dp.start_polling(bot)  # returns on SIGTERM/SIGINT


if __name__ == "__main__":
    asyncio.run(main())
