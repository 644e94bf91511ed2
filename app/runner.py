"""Running the bot: logging, the token check, polling until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import sys

from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

from app.config import Settings
from app.db.engine import create_engine
from app.db.migrate import upgrade
from app.factory import create_bot, create_dispatcher

log = logging.getLogger("app")


def configure_logging(level: int) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Libraries log request URLs (with the bot token in them) and bodies at DEBUG/INFO.
    for noisy in ("httpx", "httpx2", "openai", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    logging.getLogger("aiogram.event").setLevel(max(level, logging.INFO))


async def run(settings: Settings) -> int:
    try:
        dp = create_dispatcher(settings)
    except ValueError as exc:  # an unusable model window, found before anything starts
        print(f"Cannot start: {exc}.", file=sys.stderr)
        return 2
    bot = create_bot(settings)
    try:
        me = await bot.get_me()
    except TelegramUnauthorizedError:
        await bot.session.close()
        print(
            "Cannot start: Telegram rejected TELEGRAM_BOT_TOKEN; copy the token from @BotFather "
            "into .env again.",
            file=sys.stderr,
        )
        return 1
    except TelegramNetworkError as exc:
        await bot.session.close()
        print(
            f"Cannot start: the Telegram Bot API at {settings.telegram.api_url} cannot be "
            f"reached ({exc}); check the network or TELEGRAM_API_URL.",
            file=sys.stderr,
        )
        return 1
    log.info("Starting @%s with model %s", me.username, settings.openai.model)
    await dp.start_polling(bot, allowed_updates=dp.resolve_used_update_types())
    log.info("Stopped")
    return 0


async def migrate(settings: Settings) -> int:
    engine = create_engine(settings.database.url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    print("Database is at the latest schema.")
    return 0
