"""The one error handler: whatever a handler, filter or middleware raises ends in one sentence
to the user (or an answered button) and one log line that names no user's text.

Included as the last router: aiogram's ErrorsMiddleware (the dispatcher's first update
middleware) hands every exception to the routers' error handlers, and one that returns
anything but UNHANDLED counts as handled, so aiogram logs no "Cause exception while process
update" with `str(exception)` and a traceback after it. That string may quote anything (an
SQL error its values, a ValueError the text it could not parse), so ours is not logged
above DEBUG.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType

from aiogram import Bot, Router
from aiogram.types import ErrorEvent, Update, User
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from app.i18n import DEFAULT_LOCALE, locale_for
from app.services.identity import IdentityService

log = logging.getLogger(__name__)

# How long the language look-up may take: the database may be what failed.
LANGUAGE_LOOKUP_TIMEOUT = 2.0


async def on_error(
    error: ErrorEvent,
    bot: Bot,
    i18n: I18n,
    users: IdentityService,
    event_from_user: User | None = None,
) -> bool:
    """Never raises: what goes wrong while telling the user is logged, and that is all."""
    exc, update = error.exception, error.update
    handler, line = origin(exc.__traceback__)
    log.error(
        "Update %s failed in %s: %s (raised at %s)",
        update.update_id,
        handler,
        type(exc).__name__,
        line,
    )
    log.debug("Update %s failed", update.update_id, exc_info=exc)
    try:
        locale = await _locale(users, event_from_user)
        with i18n.context(), i18n.use_locale(locale):
            await _tell(bot, update)
    except Exception as reply_error:  # noqa: BLE001 - the handler of last resort never raises
        log.warning(
            "The user was not told that update %s failed: %s",
            update.update_id,
            type(reply_error).__name__,
        )
    return True


async def _tell(bot: Bot, update: Update) -> None:
    if update.callback_query is not None:
        # The button stops spinning; an alert, because a toast is easily missed.
        try:
            await bot.answer_callback_query(
                update.callback_query.id,
                text=_("Something went wrong on my side; please try again."),
                show_alert=True,
            )
        except Exception as exc:  # noqa: BLE001 - e.g. the handler answered it before it failed
            log.info("Callback of update %s not answered: %s", update.update_id, type(exc).__name__)
    message = update.message or update.edited_message
    if message is None:
        return
    if message.text and not message.text.startswith("/"):
        # A chat message is stored as the model is asked, whatever the answer does after:
        # /retry answers it.
        text = _("Something went wrong on my side; your message is kept, /retry answers it again.")
    else:
        text = _("Something went wrong on my side; please try again.")
    await bot.send_message(message.chat.id, text, parse_mode=None)


async def _locale(users: IdentityService, tg_user: User | None) -> str:
    """The user's language. The middleware that knew it has exited by now (error handlers get
    the update's data, not the message's), so the choice in /settings is read again."""
    if tg_user is None:
        return DEFAULT_LOCALE
    try:
        async with asyncio.timeout(LANGUAGE_LOOKUP_TIMEOUT):
            chosen = await users.chosen_language(tg_user.id)
    except Exception:  # noqa: BLE001 - the database may be what failed: Telegram's language
        chosen = None
    return locale_for(chosen, tg_user.language_code)


def origin(trace: TracebackType | None) -> tuple[str, str]:
    """The handler (or filter) an exception came out of, and the innermost line of our code
    (or of the handler's package) on its way: enough to find the bug, without the message."""
    handler, ours = "a middleware", {"app"}
    line = innermost = "?"
    called = False  # the previous frame was aiogram calling a handler or a filter
    while trace is not None:
        frame = trace.tb_frame
        module = str(frame.f_globals.get("__name__", "?"))
        if called:
            handler = f"{module}.{frame.f_code.co_qualname}"
            ours.add(module.split(".", 1)[0])
        called = module == "aiogram.dispatcher.event.handler" and frame.f_code.co_name == "call"
        innermost = f"{module}:{trace.tb_lineno}"
        if module.split(".", 1)[0] in ours:
            line = innermost
        trace = trace.tb_next
    return handler, line if line != "?" else innermost


def create_router() -> Router:
    router = Router(name=__name__)
    router.errors.register(on_error)
    return router
