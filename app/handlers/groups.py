"""Groups and supergroups: the bot answers what is addressed to it (a mention, a reply to
it, /ask) in an allowed group, in the group's one conversation; it learns it was added or
removed from `my_chat_member`, and asks the bot's admins to approve a group a non-admin
added it to."""

from __future__ import annotations

import dataclasses
import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.config import Settings
from app.domain.enums import BudgetUnit, GroupMembers, GroupStatus, MessageSource
from app.domain.groups import ChatPlace
from app.domain.rights import Right
from app.domain.user_admin import InvalidBudget
from app.domain.users import Preferences, UserContext
from app.filters import GROUP_CHATS, GroupCommand, image_of, question_to, thread_of
from app.fsm.groups import GroupLimitData, GroupsDialog
from app.i18n import locale_for
from app.keyboards.callbacks import (
    GroupCard,
    GroupCardAction,
    GroupDecision,
    GroupPersona,
    GroupsButton,
)
from app.services.access_requests import AccessRequestService
from app.services.chat import ChatService
from app.services.groups import GroupService, GroupView
from app.services.personas import PersonaService, persona_for
from app.services.preferences import SettingInvalid, parse_limit
from app.services.usage import BudgetRefused, UsageService
from app.views import dialog
from app.views import groups as views
from app.views.dialog import Screen
from app.views.usage import budget_refusal

log = logging.getLogger(__name__)

PRESENT = frozenset({"member", "administrator", "creator", "restricted"})


async def group_question(
    message: Message,
    bot: Bot,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    chat: ChatService,
    groups: GroupService,
    usage: UsageService,
) -> None:
    group = await groups.get(session, message.chat.id)
    if group is None or group.status is GroupStatus.PENDING:
        await groups.say(
            bot, message.chat.id, views.waiting_for_approval(), reply_to=message.message_id
        )
        return
    if group.status is not GroupStatus.ALLOWED or user.blocked:
        return  # blocked or left: silent, and a blocked user is ignored here too
    thread_id = thread_of(message)
    if group.members is GroupMembers.ALLOWED and not user.has_access:
        await groups.tell(
            bot,
            message.chat.id,
            user.id,
            views.members_need_access(),
            reply_to=message.message_id,
            thread_id=thread_id,
        )
        return
    question = question_to(message, await bot.me()) or ""
    # A photo with the mention in its caption is asked about with its image.
    image = image_of(message)
    if not question and image is None:
        await groups.say(bot, message.chat.id, views.ask_something(), reply_to=message.message_id)
        return
    persona = await persona_for(session, group.persona_id)
    preferences = dataclasses.replace(
        preferences, persona=persona, answer_length=group.answer_length
    )
    place = ChatPlace(message.chat.id, thread_id, message.message_id)
    # The model sees who said what: the conversation is the whole group's.
    text = f"{user.first_name}: {question}"
    try:
        if group.budget is not None and Right.ADMIN not in user.rights:
            await usage.refuse_group_over_limit(session, message.chat.id)
        await chat.reply(
            bot,
            session,
            chat_id=message.chat.id,
            user_id=user.id,
            preferences=preferences,
            text=text,
            draft_id=message.message_id,
            telegram_message_id=message.message_id,
            source=MessageSource.PHOTO if image is not None else MessageSource.TEXT,
            place=place,
            images=[image] if image is not None else (),
        )
    except BudgetRefused as refused:
        # The asker's own limit, or the group's: told to them alone, not to the group.
        notice = budget_refusal(refused.reached, refused.currency, group=refused.group)
        await groups.tell(
            bot, message.chat.id, user.id, notice, reply_to=message.message_id, thread_id=thread_id
        )


async def group_forget(
    message: Message,
    bot: Bot,
    user: UserContext,
    session: AsyncSession,
    groups: GroupService,
) -> None:
    """/forget in a group: the group's admins and the bot's admins only."""
    group = await groups.get(session, message.chat.id)
    if group is None or group.status is not GroupStatus.ALLOWED or user.blocked:
        return
    thread_id = thread_of(message)
    if not await _group_admin(bot, message.chat.id, user):
        await groups.tell(
            bot,
            message.chat.id,
            user.id,
            views.admins_only(),
            reply_to=message.message_id,
            thread_id=thread_id,
        )
        return
    persona = await persona_for(session, group.persona_id)
    forgotten = await groups.forget(session, message.chat.id, thread_id, persona.id)
    text = views.forgotten() if forgotten else views.nothing_to_forget()
    await groups.say(bot, message.chat.id, text, reply_to=message.message_id)


async def _group_admin(bot: Bot, chat_id: int, user: UserContext) -> bool:
    """A bot admin, or an admin of this group (as Telegram says now)."""
    if Right.ADMIN in user.rights:
        return True
    try:
        member = await bot.get_chat_member(chat_id, user.id)
    except TelegramAPIError as exc:
        log.info("Could not tell whether user %s admins group %s: %s", user.id, chat_id, exc)
        return False
    return member.status in ("administrator", "creator")


async def membership(
    event: ChatMemberUpdated,
    bot: Bot,
    session: AsyncSession,
    groups: GroupService,
    access_requests: AccessRequestService,
    i18n: I18n,
    user: UserContext,
) -> None:
    if event.chat.type not in GROUP_CHATS:
        return  # a private chat: the user blocked or unblocked the bot
    was = event.old_chat_member.status in PRESENT
    now = event.new_chat_member.status in PRESENT
    if was == now:
        return  # a change of rights, not of presence
    chat_id, title = event.chat.id, event.chat.title or ""
    if not now:
        await groups.left(session, chat_id)
        log.info("Removed from group %s", chat_id)
        return
    status = await groups.joined(session, chat_id, title, user)
    log.info("Added to group %s: %s", chat_id, status.value)
    if status is GroupStatus.ALLOWED:
        await groups.say(bot, chat_id, views.hello())
    elif status is GroupStatus.PENDING:
        await groups.say(bot, chat_id, views.approval_asked())
        adder = user.first_name
        for admin in await access_requests.admins(session):
            with i18n.use_locale(locale_for(admin.language, admin.telegram_language)):
                screen = views.approval_request(chat_id, title, adder)
            try:
                await bot.send_message(admin.id, screen.text, reply_markup=screen.markup)
            except TelegramAPIError as exc:
                log.info("Could not ask admin %s about group %s: %s", admin.id, chat_id, exc)


async def decide(
    callback: CallbackQuery,
    callback_data: GroupDecision,
    bot: Bot,
    session: AsyncSession,
    groups: GroupService,
) -> None:
    decided = await groups.decide(session, callback_data.chat_id, approve=callback_data.approve)
    if decided is None:
        await callback.answer(views.decided_already(), show_alert=True)
        return
    text = views.approved(decided.title) if callback_data.approve else views.denied(decided.title)
    if isinstance(callback.message, Message):
        try:
            await callback.message.edit_text(text, reply_markup=None)
        except TelegramAPIError as exc:
            log.info("Approval message not updated: %s", exc)
    await callback.answer()
    if callback_data.approve:
        await groups.say(bot, decided.chat_id, views.hello())


async def _groups_screen(
    session: AsyncSession, groups: GroupService, personas: PersonaService
) -> Screen:
    names = {p.id: p.name for p in await personas.list_all(session)}
    default = next(iter(names.values()), "?")  # list_all puts the default persona first
    listed = await groups.listed(session)
    return views.groups_screen(
        [(g.chat_id, g.title, g.status, names.get(g.persona_id or 0, default)) for g in listed]
    )


async def show_groups(
    message: Message, session: AsyncSession, groups: GroupService, personas: PersonaService
) -> None:
    screen = await _groups_screen(session, groups, personas)
    await message.answer(screen.text, reply_markup=screen.markup)


async def group_persona(
    callback: CallbackQuery,
    callback_data: GroupPersona,
    bot: Bot,
    session: AsyncSession,
    groups: GroupService,
    personas: PersonaService,
) -> None:
    group = await groups.get(session, callback_data.chat_id)
    if group is None:
        await callback.answer(views.group_gone(), show_alert=True)
        return
    if callback_data.persona_id == 0:
        choices = [(p.id, p.name) for p in await personas.list_all(session)]
        screen = views.personas_screen(group.chat_id, group.title, choices, group.persona_id)
        await dialog.answer_with(callback, bot, screen)
        return
    if not await groups.set_persona(session, group.chat_id, callback_data.persona_id):
        await callback.answer(texts.stale_button(), show_alert=True)
        return
    await dialog.answer_with(callback, bot, await _groups_screen(session, groups, personas))


async def allow_or_block(
    callback: CallbackQuery,
    callback_data: GroupsButton,
    bot: Bot,
    session: AsyncSession,
    groups: GroupService,
    personas: PersonaService,
) -> None:
    before = await groups.get(session, callback_data.chat_id)
    changed = await groups.set_allowed(session, callback_data.chat_id, allowed=callback_data.allow)
    if changed is None:
        await callback.answer(views.group_gone(), show_alert=True)
        return
    screen = await _groups_screen(session, groups, personas)
    if isinstance(callback.message, Message):
        try:
            await callback.message.edit_text(screen.text, reply_markup=screen.markup)
        except TelegramAPIError as exc:
            log.info("/groups not updated: %s", exc)
    await callback.answer()
    if callback_data.allow and before is not None and before.status is not GroupStatus.ALLOWED:
        await groups.say(bot, changed.chat_id, views.hello())


async def _card(
    session: AsyncSession,
    usage: UsageService,
    settings: Settings,
    group: GroupView,
) -> Screen:
    persona = await persona_for(session, group.persona_id)
    today, month = await usage.group_usage(session, group.chat_id)
    return views.group_card(
        chat_id=group.chat_id,
        title=group.title,
        status=group.status,
        persona=persona.name,
        members=group.members,
        members_own=group.members_own,
        limits=group.budget,
        today=today,
        month=month,
        budget=settings.budget,
    )


async def group_card(
    callback: CallbackQuery,
    callback_data: GroupCard,
    bot: Bot,
    session: AsyncSession,
    groups: GroupService,
    personas: PersonaService,
    usage: UsageService,
    settings: Settings,
    state: FSMContext,
) -> None:
    """A group's card (⚙️ in /groups): who may talk there and its budget."""
    if await state.get_state() == GroupsDialog.typing_limit.state:
        await state.clear()  # a button instead of the typed limit: the typing is over
    if callback_data.action is GroupCardAction.BACK:
        await dialog.answer_with(callback, bot, await _groups_screen(session, groups, personas))
        return
    group = await groups.get(session, callback_data.chat_id)
    if group is None or group.status is GroupStatus.LEFT:
        await callback.answer(views.group_gone(), show_alert=True)
        return
    try:
        changed = await _card_act(callback, callback_data, group, session, groups, settings, state)
    except (InvalidBudget, ValueError):  # a forged or outdated button
        await callback.answer(texts.stale_button(), show_alert=True)
        return
    if isinstance(changed, Screen):
        await dialog.answer_with(callback, bot, changed)
        return
    if changed is None:
        await callback.answer(views.group_gone(), show_alert=True)
        return
    await dialog.answer_with(callback, bot, await _card(session, usage, settings, changed))


async def _card_act(
    callback: CallbackQuery,
    data: GroupCard,
    group: GroupView,
    session: AsyncSession,
    groups: GroupService,
    settings: Settings,
    state: FSMContext,
) -> GroupView | Screen | None:
    """One card button's action on `group`: the group as it is now (None: gone), or the
    screen to show instead of the card."""
    chat_id = group.chat_id
    match data.action:
        case GroupCardAction.OPEN:
            return group
        case GroupCardAction.MEMBERS:
            members = GroupMembers(data.value) if data.value else None
            return await groups.set_members(session, chat_id, members)
        case GroupCardAction.UNIT:
            if not data.value:
                return await groups.set_budget(session, chat_id, None)
            unit, own = BudgetUnit(data.value), group.budget
            # The same unit keeps its limits; the other one starts without (tokens are not
            # money).
            same = own is not None and own.unit is unit
            daily, monthly = (own.daily, own.monthly) if same and own else (None, None)
            return await groups.set_budget(session, chat_id, unit, daily, monthly)
        case GroupCardAction.LIMIT:
            menu_id = callback.message.message_id if callback.message else None
            limit = GroupLimitData.model_validate(
                {"chat_id": chat_id, "period": data.value, "menu_id": menu_id}
            )  # a forged period fails here
            await state.set_state(GroupsDialog.typing_limit)
            await state.set_data(limit.model_dump())
            unit = group.budget.unit if group.budget else settings.budget.unit
            return views.ask_limit(group.title, data.value, unit, settings.budget.currency)
        case _:
            raise ValueError(data.action)


async def typed_group_limit(
    message: Message,
    user: UserContext,
    session: AsyncSession,
    groups: GroupService,
    usage: UsageService,
    settings: Settings,
    state: FSMContext,
    bot: Bot,
) -> None:
    data = GroupLimitData.model_validate(await state.get_data())
    group = await groups.get(session, data.chat_id)
    if group is None or group.status is GroupStatus.LEFT:
        await state.clear()
        await message.answer(views.group_gone())
        return
    own = group.budget
    # No unit of its own yet: the owner's; the limit not typed now stays as it was.
    unit = own.unit if own else settings.budget.unit
    daily, monthly = (own.daily, own.monthly) if own else (None, None)
    try:
        value = parse_limit(message.text or "", money=unit is BudgetUnit.MONEY)
        if data.period == "daily":
            daily = value
        else:
            monthly = value
        changed = await groups.set_budget(session, data.chat_id, unit, daily, monthly)
    except (SettingInvalid, InvalidBudget):
        await message.answer(views.limit_invalid())
        return
    await state.clear()
    if changed is None:
        await message.answer(views.group_gone())
        return
    screen = await _card(session, usage, settings, changed)
    await dialog.replace(bot, user.id, data.menu_id, screen)


def create_router() -> Router:
    """Everything from groups; a group message that reaches it (addressed to the bot, see
    GroupGateMiddleware) goes no further, so the private chat's routers never see one."""
    router = Router(name=__name__)
    router.message.filter(F.chat.type.in_(GROUP_CHATS))
    router.message.register(group_forget, GroupCommand("forget"))
    router.message.register(group_question)
    router.my_chat_member.register(membership)
    return router


def create_admin_router() -> Router:
    """For the bot's admins: Approve and Deny of a group, /groups and each group's card."""
    router = Router(name=f"{__name__}.admin")
    router.message.register(show_groups, Command("groups"), F.chat.type == "private")
    router.callback_query.register(decide, GroupDecision.filter())
    router.callback_query.register(allow_or_block, GroupsButton.filter())
    router.callback_query.register(group_persona, GroupPersona.filter())
    router.callback_query.register(group_card, GroupCard.filter())
    router.message.register(
        typed_group_limit,
        StateFilter(GroupsDialog.typing_limit),
        F.chat.type == "private",
        F.text,
        ~F.text.startswith("/"),
    )
    return router
