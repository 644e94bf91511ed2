"""Access requests: /start offers strangers a "Request access" button; admins approve or deny."""

from __future__ import annotations

import contextlib
import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import CommandStart
from aiogram.types import CallbackQuery, Message
from aiogram.types import User as TelegramUser
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.access import Requester
from app.domain.users import UserContext
from app.i18n import locale_for
from app.keyboards.callbacks import AccessAsk, AccessDecision
from app.services.access_requests import (
    AccessRequestService,
    Admin,
    Asked,
    AskResult,
    Decided,
    DecisionResult,
)
from app.views import access
from app.views.dialog import Screen

log = logging.getLogger(__name__)


async def stranger_start(
    message: Message,
    user: UserContext,
    session: AsyncSession,
    access_requests: AccessRequestService,
) -> None:
    if user.blocked:
        screen = access.blocked_start(user.first_name, user.id)
    elif (since := await access_requests.pending_since(session, user.id)) is not None:
        screen = access.pending_start(user.first_name, user.id, since)
    elif not await access_requests.admins(session):
        screen = access.no_admins_start(user.first_name, user.id)
    else:
        screen = access.stranger_start(user.first_name, user.id)
    await message.answer(screen.text, reply_markup=screen.markup)


async def ask(
    callback: CallbackQuery,
    user: UserContext,
    session: AsyncSession,
    access_requests: AccessRequestService,
    bot: Bot,
    i18n: I18n,
) -> None:
    result = await access_requests.ask(session, user.id)
    if result.outcome is not Asked.CREATED:
        await callback.answer(_refusal(result), show_alert=True)
        return
    assert result.request_id is not None
    await session.commit()  # the request exists before any admin can press a button on it
    requester = _requester(callback.from_user)
    notices = await _notify_admins(bot, i18n, result.admins, requester, result.request_id)
    await access_requests.remember_notices(session, result.request_id, notices)
    text = access.request_sent() if notices else access.admins_unreachable()
    if callback.message is not None:
        with contextlib.suppress(TelegramBadRequest):
            await bot.edit_message_reply_markup(
                chat_id=user.id, message_id=callback.message.message_id, reply_markup=None
            )
    await bot.send_message(user.id, text)
    await callback.answer()


def _refusal(result: AskResult) -> str:
    if result.outcome is Asked.PENDING and result.since is not None:
        return access.request_pending(result.since)
    if result.outcome is Asked.TOO_SOON and result.retry_at is not None:
        return access.too_soon(result.retry_at)
    if result.outcome is Asked.HAS_ACCESS:
        return access.already_allowed()
    if result.outcome is Asked.BLOCKED:
        return access.blocked()
    return access.no_admins()


async def _notify_admins(
    bot: Bot, i18n: I18n, admins: tuple[Admin, ...], requester: Requester, request_id: int
) -> list[tuple[int, int]]:
    """Each admin gets the request in their own language; one who never started the bot (or
    blocked it) is skipped, and the others still get it."""
    notices: list[tuple[int, int]] = []
    for admin in admins:
        with i18n.use_locale(locale_for(admin.language, admin.telegram_language)):
            screen = access.request_notice(requester, request_id)
        try:
            sent = await bot.send_message(admin.id, screen.text, reply_markup=screen.markup)
        except TelegramAPIError as exc:
            log.warning(
                "Could not tell admin %s of access request %s: %s", admin.id, request_id, exc
            )
            continue
        notices.append((admin.id, sent.message_id))
    return notices


async def decide(
    callback: CallbackQuery,
    callback_data: AccessDecision,
    user: UserContext,
    session: AsyncSession,
    access_requests: AccessRequestService,
    bot: Bot,
    i18n: I18n,
) -> None:
    result = await access_requests.decide(
        session, callback_data.request_id, user.id, callback_data.approve
    )
    if result.outcome is Decided.GONE:
        await callback.answer(access.request_gone(), show_alert=True)
        return
    if result.outcome is Decided.ALREADY:
        await callback.answer(
            access.already_decided(result.status, result.decided_by), show_alert=True
        )
    else:
        await session.commit()
        await _tell_requester(bot, i18n, result)
        await callback.answer()
    admins = {admin.id: admin for admin in await access_requests.admins(session)}
    notices = set(result.notices)
    if callback.message is not None:
        notices.add((user.id, callback.message.message_id))
    for chat_id, message_id in sorted(notices):
        await _update_notice(bot, i18n, admins.get(chat_id), chat_id, message_id, result)


async def _tell_requester(bot: Bot, i18n: I18n, result: DecisionResult) -> None:
    requester = result.requester
    assert requester is not None
    with i18n.use_locale(locale_for(result.requester_language, requester.language_code)):
        text = access.approved() if result.retry_at is None else access.denied(result.retry_at)
    try:
        await bot.send_message(requester.id, text)
    except TelegramAPIError as exc:
        log.warning("Could not tell user %s the decision: %s", requester.id, exc)


async def _update_notice(
    bot: Bot,
    i18n: I18n,
    admin: Admin | None,
    chat_id: int,
    message_id: int,
    result: DecisionResult,
) -> None:
    assert result.requester is not None and result.status is not None
    locale = locale_for(admin.language, admin.telegram_language) if admin else i18n.current_locale
    with i18n.use_locale(locale):
        screen: Screen = access.decided_notice(result.requester, result.status, result.decided_by)
    try:
        await bot.edit_message_text(text=screen.text, chat_id=chat_id, message_id=message_id)
    except TelegramAPIError as exc:
        # Already showing the outcome ("not modified"), deleted, or too old: nothing to fix.
        log.debug("Access request notice %s/%s not updated: %s", chat_id, message_id, exc)


def _requester(tg_user: TelegramUser) -> Requester:
    return Requester(
        tg_user.id, tg_user.first_name, tg_user.last_name, tg_user.username, tg_user.language_code
    )


def create_router() -> Router:
    """For users without access: /start with the request button, and the button."""
    router = Router(name=__name__)
    router.message.register(stranger_start, CommandStart())
    router.callback_query.register(ask, AccessAsk.filter())
    return router


def create_admin_router() -> Router:
    """For admins: Approve and Deny. (The right is checked where the routers are assembled.)"""
    router = Router(name=__name__ + ".decisions")
    router.callback_query.register(decide, AccessDecision.filter())
    return router
