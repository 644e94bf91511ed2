"""Running the bot: logging, the token and database checks, then polling (or webhooks,
with WEBHOOK_URL: app/webhook.py) until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable

from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramNetworkError,
    TelegramUnauthorizedError,
)
from aiogram.types import User
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app import webhook
from app.config import Settings
from app.db.engine import create_engine
from app.db.exclusive import claim_sqlite_file
from app.db.migrate import upgrade
from app.delivery.errors import brief
from app.factory import close_resources, create_bot, create_dispatcher, resources_of

log = logging.getLogger("app")

# Seconds a database server may take to accept the first connection at start-up.
DATABASE_TIMEOUT = 15.0


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed, else asyncio's (None).

    Under load every database round trip and every streamed chunk waits its turn on the one
    loop; uvloop runs it with less work per turn (bench/load.py at 50 users)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def configure_logging(level: int) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    quiet_libraries(level)


def quiet_libraries(level: int) -> None:
    """Even at DEBUG, no library logs a secret or a user's text."""
    # Libraries log request URLs (with the bot token in them) and bodies at DEBUG/INFO, and
    # the database drivers every statement's values and rows (users' messages) at DEBUG.
    # The MCP SDK logs the messages it exchanges (the model's arguments, tools' results).
    for noisy in (
        "httpx",
        "httpx2",
        "openai",
        "aiohttp.access",
        "sqlalchemy",
        "aiosqlite",
        "mcp",
    ):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    logging.getLogger("aiogram.event").setLevel(max(level, logging.INFO))


async def run(settings: Settings) -> int:
    try:
        dp = create_dispatcher(settings)
    except ValueError as exc:  # an unusable model window, found before anything starts
        print(f"Cannot start: {exc}.", file=sys.stderr)
        return 2
    claim = claim_sqlite_file(settings.database.url)
    if isinstance(claim, str):
        await close_resources(resources_of(dp))
        print(f"Cannot start: {claim}", file=sys.stderr)
        return 1
    bot = create_bot(settings)
    try:
        me = await get_me(bot, settings.telegram.api_url)
        if isinstance(me, str):
            print(f"Cannot start: {me}", file=sys.stderr)
            return 1
        problem = await database_problem(resources_of(dp).engine)
        if problem is not None:
            print(f"Cannot start: {problem}", file=sys.stderr)
            return 1
        log.info("Starting @%s with model %s", me.username, settings.openai.model)
        if settings.webhook.url:
            code = await webhook.serve(settings, dp, bot)
            if code:
                return code
        else:
            await dp.start_polling(bot, allowed_updates=dp.resolve_used_update_types())
    finally:
        # A start-up that stops early runs no shutdown handlers: close what they would have
        # (after a normal stop they have, and closing again does nothing).
        await bot.session.close()
        await close_resources(resources_of(dp))
        claim.release()
    log.info("Stopped")
    return 0


async def get_me(bot: Bot, api_url: str) -> User | str:
    """The bot's own account: proof of a valid token and a Bot API server at `api_url`; else
    the sentence that says which setting to fix. (Anything else Telegram is asked at start-up
    is a nicety that may fail.)"""
    try:
        return await bot.get_me()
    except TelegramUnauthorizedError:
        return (
            "Telegram rejected TELEGRAM_BOT_TOKEN; copy the token from @BotFather into .env again."
        )
    except TelegramNetworkError as exc:
        return (
            f"the Telegram Bot API at {api_url} cannot be reached ({exc.message}); check the "
            "network or TELEGRAM_API_URL."
        )
    except (TelegramAPIError, ClientDecodeError) as exc:
        # An HTML page, another server's 404, a proxy's 502 (retried first): not a Bot API.
        return (
            f"TELEGRAM_API_URL ({api_url}) does not answer like a Telegram Bot API server "
            f"(getMe: {brief(exc)}); correct it, or leave it out for https://api.telegram.org."
        )


async def database_problem(engine: AsyncEngine) -> str | None:
    """None when the database answers; else the sentence that says to fix DATABASE_URL (a
    server that is down, a wrong host or password, a file in a folder we may not write)."""
    url = engine.url.render_as_string(hide_password=True)
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT), engine.connect():
            return None
    except (OSError, SQLAlchemyError, TimeoutError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else ""
        detail = f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
        return (
            f"the database at {url} cannot be used ({detail}); check DATABASE_URL and that "
            "its server runs."
        )


async def migrate(settings: Settings) -> int:
    engine = create_engine(settings.database.url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    print("Database is at the latest schema.")
    return 0
