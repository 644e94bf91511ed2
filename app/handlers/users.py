"""/users, for admins: the users with their status, persona and usage; open one to allow or
block them, grant or revoke rights, choose their persona and set their budget.

Only admins reach this router (see app/handlers/__init__.py); every button names the user
it is about, and every change goes through UserAdminService, which checks it again.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.commands import CommandBook, remove_admin_menu, set_admin_menu
from app.config import Settings
from app.domain.enums import BudgetUnit
from app.domain.rights import Right
from app.domain.user_admin import Change, Note, UserAdminError, UserSummary
from app.domain.users import UserContext
from app.fsm.rights import end_dialog_without_right
from app.fsm.users import LimitData, UsersDialog
from app.i18n import locale_for
from app.keyboards.callbacks import UsersAction, UsersButton
from app.services.personas import PersonaService
from app.services.preferences import SettingInvalid, parse_limit
from app.services.user_admin import UserAdminService
from app.tools.toolbox import Toolbox
from app.views import dialog
from app.views import users as views
from app.views.dialog import Screen

log = logging.getLogger(__name__)


async def list_users(
    message: Message, session: AsyncSession, user_admin: UserAdminService, settings: Settings
) -> None:
    screen = await _page(session, user_admin, settings, 0)
    await message.answer(screen.text, reply_markup=screen.markup)


async def _page(
    session: AsyncSession, user_admin: UserAdminService, settings: Settings, page: int
) -> Screen:
    page = max(0, page)
    users, total = await user_admin.list_users(
        session, offset=page * views.PAGE_SIZE, limit=views.PAGE_SIZE
    )
    if not users and page > 0:  # the list shrank under an old button
        return await _page(session, user_admin, settings, 0)
    return views.user_list(users, total, page, settings.budget)


async def press(
    callback: CallbackQuery,
    callback_data: UsersButton,
    user: UserContext,
    session: AsyncSession,
    user_admin: UserAdminService,
    personas: PersonaService,
    settings: Settings,
    state: FSMContext,
    bot: Bot,
    i18n: I18n,
    toolbox: Toolbox,
    command_book: CommandBook,
) -> None:
    action, page = callback_data.action, callback_data.page
    if await state.get_state() == UsersDialog.typing_limit.state:
        await state.clear()  # a button instead of the typed limit: the typing is over
    if action is UsersAction.LIST:
        await dialog.answer_with(callback, bot, await _page(session, user_admin, settings, page))
        return
    if action is UsersAction.CLOSE:
        await dialog.answer_with(callback, bot, views.closed())
        return
    try:
        target = await user_admin.get(session, callback_data.user_id)
        screen = await _act(
            callback,
            callback_data,
            target,
            user,
            session,
            user_admin,
            personas,
            settings,
            state,
            bot,
            i18n,
            toolbox,
            command_book,
        )
    except (UserAdminError, ValueError) as exc:
        # Refused (an admin in ADMIN_IDS, the last admin), or a forged or outdated button.
        message = views.refused(exc) if isinstance(exc, UserAdminError) else texts.stale_button()
        await callback.answer(message, show_alert=True)
        return
    await dialog.answer_with(callback, bot, screen)


async def _act(
    callback: CallbackQuery,
    data: UsersButton,
    target: UserSummary,
    admin: UserContext,
    session: AsyncSession,
    user_admin: UserAdminService,
    personas: PersonaService,
    settings: Settings,
    state: FSMContext,
    bot: Bot,
    i18n: I18n,
    toolbox: Toolbox,
    command_book: CommandBook,
) -> Screen:
    """One button's action on `target`; the screen to show next."""
    uid, page, budget = target.id, data.page, settings.budget
    change: Change | None = None
    match data.action:
        case UsersAction.OPEN:
            return views.user_card(target, page, budget, tool_rights=toolbox.grantable())
        case UsersAction.ALLOW:
            change = await user_admin.allow(session, uid, by=admin.id)
            if change.changed:
                await _tell(bot, i18n, session, user_admin, uid)
        case UsersAction.BLOCK:
            change = await user_admin.block(session, uid, by=admin.id)
            await end_dialog_without_right(state, uid, change.user.rights)
            if Note.WAS_ADMIN in change.notes:
                await remove_admin_menu(bot, uid)
        case UsersAction.GRANT | UsersAction.REVOKE if data.value in toolbox.grantable():
            granted = data.action is UsersAction.GRANT
            change = await user_admin.set_tool_right(session, uid, data.value, granted)
        case UsersAction.GRANT:
            right = Right(data.value)
            change = await user_admin.grant(session, uid, right)
            if right is Right.CHAT and change.changed:
                await _tell(bot, i18n, session, user_admin, uid)
            elif right is Right.ADMIN and change.changed:
                await set_admin_menu(bot, i18n, uid, command_book)
        case UsersAction.REVOKE:
            right = Right(data.value)
            change = await user_admin.revoke(session, uid, right)
            await end_dialog_without_right(state, uid, change.user.rights)
            if right is Right.ADMIN and change.changed:
                await remove_admin_menu(bot, uid)
        case UsersAction.PERSONAS:
            return views.persona_choice(target, await personas.usable(session, admin), page)
        case UsersAction.SET_PERSONA:
            change = await user_admin.set_persona(session, uid, int(data.value))
        case UsersAction.BUDGET:
            return views.budget_screen(target, page, budget)
        case UsersAction.UNIT:
            unit = BudgetUnit(data.value)
            own = target.budget
            same = own is not None and own.unit is unit
            daily, monthly = (own.daily, own.monthly) if same and own else (None, None)
            await user_admin.set_budget(session, uid, unit, daily, monthly)
            return views.budget_screen(await user_admin.get(session, uid), page, budget)
        case UsersAction.DEFAULTS:
            await user_admin.set_budget(session, uid, None)
            return views.budget_screen(await user_admin.get(session, uid), page, budget)
        case UsersAction.LIMIT:
            menu_id = callback.message.message_id if callback.message else None
            limit = LimitData.model_validate(
                {"user_id": uid, "period": data.value, "page": page, "menu_id": menu_id}
            )  # a forged period fails here
            await state.set_state(UsersDialog.typing_limit)
            await state.set_data(limit.model_dump())
            unit = target.budget.unit if target.budget else budget.unit
            return views.ask_limit(target, data.value, unit, budget.currency)
        case _:
            raise ValueError(data.action)
    return views.user_card(
        change.user, page, budget, views.note(change), tool_rights=toolbox.grantable()
    )


async def typed_limit(
    message: Message,
    user: UserContext,
    session: AsyncSession,
    user_admin: UserAdminService,
    settings: Settings,
    state: FSMContext,
    bot: Bot,
) -> None:
    data = LimitData.model_validate(await state.get_data())
    try:
        target = await user_admin.get(session, data.user_id)
        own = target.budget
        unit = own.unit if own else settings.budget.unit
        value = parse_limit(message.text or "", money=unit is BudgetUnit.MONEY)
        # Limits not typed now stay as they were: the user's own, else the owner's.
        daily = own.daily if own else settings.budget.daily
        monthly = own.monthly if own else settings.budget.monthly
        if data.period == "daily":
            daily = value
        else:
            monthly = value
        await user_admin.set_budget(session, data.user_id, unit, daily, monthly)
    except SettingInvalid:
        await message.answer(views.limit_invalid())
        return
    except UserAdminError as exc:
        await message.answer(views.refused(exc))
        await state.clear()
        return
    await state.clear()
    screen = views.budget_screen(
        await user_admin.get(session, data.user_id), data.page, settings.budget
    )
    await dialog.replace(bot, user.id, data.menu_id, screen)


async def _tell(
    bot: Bot, i18n: I18n, session: AsyncSession, user_admin: UserAdminService, user_id: int
) -> None:
    """A user let in from /users hears it, in their language."""
    languages = await user_admin.languages(session, user_id)
    if languages is None:
        return
    await session.commit()  # they may write at once: their access must be there
    with i18n.use_locale(locale_for(*languages)):
        text = views.allowed_notice()
    try:
        await bot.send_message(user_id, text)
    except TelegramAPIError as exc:
        # Never started the bot (allowed in advance), or blocked it: they learn it at /start.
        log.info("User %s not told of their access: %s", user_id, exc)


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(list_users, Command("users"))
    router.message.register(
        typed_limit, StateFilter(UsersDialog.typing_limit), F.text, ~F.text.startswith("/")
    )
    router.callback_query.register(press, UsersButton.filter())
    return router
