"""Webhook mode: Telegram posts updates to WEBHOOK_URL; we serve them with aiogram's aiohttp
handler, answer /healthz and /readyz, and stop cleanly on SIGTERM, leaving the webhook set."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import ClientDecodeError, TelegramAPIError, TelegramNetworkError
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.delivery.errors import brief
from app.factory import SHUTDOWN_GRACE, resources_of
from app.middlewares.placement import expect_placement

log = logging.getLogger(__name__)

# Seconds the answer to Telegram waits at most for an update to take its place in its user's
# order (one Redis round trip when all is well).
PLACEMENT_WAIT = 1.0
# Seconds /readyz waits for the database or Redis before calling it down.
PROBE_TIMEOUT = 2.0


class BackgroundRequestHandler(SimpleRequestHandler):
    """aiogram's handler answering Telegram 200 at once and handling the update in a task
    it keeps; here a failure there is logged (not left to "Task exception was never
    retrieved"), shutdown can wait for those tasks, and the bot session stays open for them."""

    async def _background_feed_update(self, bot: Bot, update: dict[str, Any]) -> None:
        try:
            await super()._background_feed_update(bot, update)
        except Exception as exc:  # noqa: BLE001 - the error handler saw it first; no text
            log.error("Update %s failed: %s", update.get("update_id"), type(exc).__name__)

    async def _handle_request_background(self, bot: Bot, request: web.Request) -> web.Response:
        """aiogram's, but answering once the update has its place in its user's order (or
        after PLACEMENT_WAIT): Telegram sends the next update after this answer, and that one
        cannot overtake this one on another process (app/middlewares/placement.py).

        A body that is not a JSON object gets 400 (aiogram's handler lets the decoding error
        become a 500 with a traceback in the log); only a request with the right secret gets
        this far, so it is a broken proxy or client, not Telegram."""
        try:
            update = await request.json(loads=bot.session.json_loads)
        except ValueError:
            update = None
        if not isinstance(update, dict):
            log.warning("A webhook request with the right secret had no update in its body")
            return web.json_response({"ok": False, "error": "not an update"}, status=400)
        placement, context = expect_placement()
        task = asyncio.create_task(self._background_feed_update(bot, update), context=context)
        self._background_feed_update_tasks.add(task)
        task.add_done_callback(self._background_feed_update_tasks.discard)
        waited: set[asyncio.Future[None]] = {placement, task}
        await asyncio.wait(waited, timeout=PLACEMENT_WAIT, return_when=asyncio.FIRST_COMPLETED)
        return web.json_response({}, dumps=bot.session.json_dumps)

    async def drain(self, grace: float) -> None:
        """Wait up to `grace` seconds for updates being handled, then cancel what is left."""
        pending = set(self._background_feed_update_tasks)
        if not pending:
            return
        log.info("Waiting up to %.0f s for %d update(s) in flight", grace, len(pending))
        _, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            log.warning("Cancelled %d update(s) still running after %.0f s", len(late), grace)
            await asyncio.wait(late, timeout=1.0)

    async def close(self) -> None:
        """The runner closes the bot session once everything has stopped."""


class Readiness:
    """What /readyz reports: the database and Redis answer, and the webhook is registered."""

    def __init__(self, engine: AsyncEngine, redis_url: str | None) -> None:
        self.engine = engine
        self.redis = (
            Redis.from_url(
                redis_url, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=PROBE_TIMEOUT
            )
            if redis_url
            else None
        )
        self.webhook_registered = False

    async def report(self) -> dict[str, str]:
        checks = {"database": await self._database()}
        if self.redis is not None:
            checks["redis"] = await self._redis()
        checks["webhook"] = "ok" if self.webhook_registered else "not registered"
        return checks

    async def _database(self) -> str:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT), self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (OSError, SQLAlchemyError, TimeoutError) as exc:
            return f"unreachable ({type(exc).__name__})"
        return "ok"

    async def _redis(self) -> str:
        assert self.redis is not None
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await self.redis.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return f"unreachable ({type(exc).__name__})"
        return "ok"

    async def handle(self, request: web.Request) -> web.Response:
        checks = await self.report()
        ready = all(value == "ok" for value in checks.values())
        return web.json_response({"ready": ready, **checks}, status=200 if ready else 503)

    async def close(self, _app: web.Application | None = None) -> None:
        if self.redis is not None:
            await self.redis.aclose()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"alive": True})


def build_application(
    settings: Settings, dp: Dispatcher, bot: Bot, readiness: Readiness
) -> web.Application:
    """The aiohttp app: the webhook at WEBHOOK_PATH (401 without the secret), /healthz, /readyz.
    On shutdown the updates in flight finish first, then the dispatcher's own shutdown."""
    secret = settings.webhook.secret
    assert secret is not None  # the settings require it with WEBHOOK_URL
    handler = BackgroundRequestHandler(
        dp, bot, handle_in_background=True, secret_token=secret.get_secret_value()
    )
    app = web.Application()

    async def drain(_app: web.Application) -> None:
        await handler.drain(SHUTDOWN_GRACE)

    # aiohttp runs these in order: our drain, then the dispatcher's shutdown (setup_application).
    app.on_shutdown.append(drain)
    setup_application(app, dp, bot=bot)
    handler.register(app, path=settings.webhook.path)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readiness.handle)
    app.on_cleanup.append(readiness.close)
    return app


async def set_webhook(bot: Bot, dp: Dispatcher, settings: Settings) -> str | None:
    """Register WEBHOOK_URL with Telegram; None on success, else the sentence to print."""
    webhook = settings.webhook
    assert webhook.url is not None and webhook.secret is not None
    try:
        await bot.set_webhook(
            webhook.url,
            secret_token=webhook.secret.get_secret_value(),
            allowed_updates=dp.resolve_used_update_types(),
            max_connections=webhook.max_connections,
        )
    except (TelegramAPIError, TelegramNetworkError, ClientDecodeError) as exc:
        return (
            f"Telegram did not accept WEBHOOK_URL ({webhook.url}) as the webhook "
            f"(setWebhook: {brief(exc)}); it must be a public https:// URL that reaches "
            "this bot."
        )
    return None


async def serve(settings: Settings, dp: Dispatcher, bot: Bot) -> int:
    """Serve webhooks until SIGTERM or SIGINT; 0 after a clean stop, 1 when start-up fails.
    The webhook stays registered on the way out: other replicas may still be serving it."""
    webhook = settings.webhook
    readiness = Readiness(resources_of(dp).engine, settings.redis.url)
    runner = web.AppRunner(
        build_application(settings, dp, bot, readiness), access_log=None, handle_signals=False
    )
    await runner.setup()  # the dispatcher's start-up: migrations, the command menu
    try:
        try:
            await web.TCPSite(runner, webhook.host, webhook.port).start()
        except OSError as exc:
            print(
                f"Cannot start: cannot listen on WEBHOOK_LISTEN ({webhook.listen}): "
                f"{exc.strerror or exc}; choose a free port.",
                file=sys.stderr,
            )
            return 1
        problem = await set_webhook(bot, dp, settings)
        if problem is not None:
            print(f"Cannot start: {problem}", file=sys.stderr)
            return 1
        readiness.webhook_registered = True
        log.info("Serving webhooks on %s%s for %s", webhook.listen, webhook.path, webhook.url)
        await _until_signalled()
        log.info("Stopping: no new updates; finishing the ones in flight")
    finally:
        # Closes the listener first, then runs the shutdown hooks (drain, dispatcher).
        await runner.cleanup()
    return 0


async def _until_signalled() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
