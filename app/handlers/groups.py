"""Groups and supergroups: the bot answers what is addressed to it (a mention, a reply to
it, /ask) in an allowed group, in the group's one conversation; it learns it was added or
removed from `my_chat_member`, and asks the bot's admins to approve a group a non-admin
added it to."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeGuard

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message
from aiogram.utils.i18n import I18n, get_i18n
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.config import Settings
from app.domain.enums import AnswerLength, BudgetUnit, GroupMembers, GroupStatus, MessageSource
from app.domain.groups import ChatPlace
from app.domain.rights import Right
from app.domain.user_admin import InvalidBudget
from app.domain.users import Preferences, UserContext
from app.filters import (
    GROUP_CHATS,
    GroupCommand,
    audio_of,
    document_of,
    image_of,
    question_to,
    thread_of,
)
from app.fsm.groups import GroupLimitData, GroupsDialog
from app.i18n import LANGUAGES, locale_for
from app.keyboards.callbacks import (
    GroupCard,
    GroupCardAction,
    GroupDecision,
    GroupPersona,
    GroupsButton,
    GroupSetting,
    GroupSettingField,
)
from app.services.access_requests import AccessRequestService
from app.services.chat import ChatService
from app.services.documents import DocumentService
from app.services.groups import GroupService, GroupView
from app.services.personas import PersonaService, persona_for
from app.services.preferences import SettingInvalid, parse_limit
from app.services.usage import BudgetRefused, UsageService
from app.services.voice import VoiceService
from app.views import dialog
from app.views import group_settings as settings_views
from app.views import groups as views
from app.views.dialog import Screen
from app.views.usage import budget_refusal

log = logging.getLogger(__name__)

PRESENT = frozenset({"member", "administrator", "creator", "restricted"})


def _speaking(i18n: I18n, group: GroupView | None) -> AbstractContextManager[None]:
    """The group's language for what the bot says there, when it has one."""
    if group is None or group.language is None:
        return contextlib.nullcontext()
    return i18n.use_locale(group.language)


@dataclass(frozen=True, slots=True)
class _Services:
    """What answering a group's question may need."""

    chat: ChatService
    groups: GroupService
    usage: UsageService
    voice: VoiceService
    documents: DocumentService


async def group_question(
    message: Message,
    bot: Bot,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    chat: ChatService,
    groups: GroupService,
    usage: UsageService,
    voice: VoiceService,
    documents: DocumentService,
    i18n: I18n,
) -> None:
    group = await groups.get(session, message.chat.id)
    services = _Services(chat, groups, usage, voice, documents)
    with _speaking(i18n, group):
        await _group_question(message, bot, user, preferences, session, services, group)


async def _group_question(
    message: Message,
    bot: Bot,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    services: _Services,
    group: GroupView | None,
) -> None:
    groups, chat_id = services.groups, message.chat.id
    if group is None or group.status is GroupStatus.PENDING:
        await groups.say(bot, chat_id, views.waiting_for_approval(), reply_to=message.message_id)
        return
    if group.status is not GroupStatus.ALLOWED or user.blocked:
        return  # blocked or left: silent, and a blocked user is ignored here too
    thread_id = thread_of(message)
    if group.members is GroupMembers.ALLOWED and not user.has_access:
        await groups.tell(
            bot,
            chat_id,
            user.id,
            views.members_need_access(),
            reply_to=message.message_id,
            thread_id=thread_id,
        )
        return
    question = question_to(message, await bot.me()) or ""
    # A photo with the mention in its caption is asked about with its image; a voice
    # message or a file replying to the bot (or mentioning it in its caption) is heard or
    # read, as in a private chat.
    image, audio, file = image_of(message), audio_of(message), document_of(message)
    if not question and image is None and audio is None and file is None:
        await groups.say(bot, chat_id, views.ask_something(), reply_to=message.message_id)
        return
    persona = await persona_for(session, group.persona_id)
    preferences = dataclasses.replace(
        preferences, persona=persona, answer_length=group.answer_length
    )
    source = MessageSource.PHOTO if image is not None else MessageSource.TEXT
    try:
        if group.budget is not None and Right.ADMIN not in user.rights:
            await services.usage.refuse_group_over_limit(session, chat_id)
        if audio is not None:
            transcript = await services.voice.transcribe(
                bot,
                session,
                chat_id=chat_id,
                user_id=user.id,
                limited=preferences.limited,
                audio=audio,
            )
            if transcript is None:
                return  # told why
            question, source = (
                (f"{question}\n\n{transcript}" if question else transcript),
                (MessageSource.VOICE),
            )
        read = None
        if file is not None:
            read = await services.documents.read(
                bot,
                session,
                chat_id=chat_id,
                user_id=user.id,
                preferences=preferences,
                document=file,
                caption=question,
            )
            if read is None:
                return  # told why
            question, source = read.text, MessageSource.DOCUMENT
        # The model sees who said what: the conversation is the whole group's.
        text = f"{user.first_name}: {question}"
        if group.listen:
            # What the group said meanwhile comes with the question, and stays in the
            # conversation with it (so /forget erases it with the rest).
            text = await groups.heard(session, chat_id, thread_id) + text
        await services.chat.reply(
            bot,
            session,
            chat_id=chat_id,
            user_id=user.id,
            preferences=preferences,
            text=text,
            draft_id=message.message_id,
            telegram_message_id=message.message_id,
            source=source,
            place=ChatPlace(chat_id, thread_id, message.message_id),
            images=[image] if image is not None else (),
            document=read,
        )
    except BudgetRefused as refused:
        # The asker's own limit, or the group's: told to them alone, not to the group.
        notice = budget_refusal(refused.reached, refused.currency, group=refused.group)
        await groups.tell(
            bot, chat_id, user.id, notice, reply_to=message.message_id, thread_id=thread_id
        )


async def group_forget(
    message: Message,
    bot: Bot,
    user: UserContext,
    session: AsyncSession,
    groups: GroupService,
    i18n: I18n,
) -> None:
    """/forget in a group: the group's admins and the bot's admins only."""
    group = await groups.get(session, message.chat.id)
    if not _usable(group, user):
        return
    with _speaking(i18n, group):
        if not await _from_admin(message, bot, user, groups, views.admins_only()):
            return
        thread_id = thread_of(message)
        persona = await persona_for(session, group.persona_id)
        forgotten = await groups.forget(session, message.chat.id, thread_id, persona.id, by=user.id)
        text = views.forgotten() if forgotten else views.nothing_to_forget()
        await groups.say(bot, message.chat.id, text, reply_to=message.message_id)


async def overhear(
    message: Message, user: UserContext, session: AsyncSession, groups: GroupService
) -> None:
    """A message not addressed to the bot in a group that listens: kept as context for the
    next answer there, never answered (a blocked user's is not kept)."""
    if user.blocked:
        return
    text = message.text or message.caption or ""
    await groups.hear(session, message.chat.id, thread_of(message), user.first_name, text)


class Overheard(Filter):
    """Passes what GroupGateMiddleware let through only to be heard."""

    async def __call__(self, message: Message, overheard: bool = False) -> bool:
        return overheard


async def group_settings(
    message: Message,
    bot: Bot,
    user: UserContext,
    session: AsyncSession,
    groups: GroupService,
    i18n: I18n,
) -> None:
    """/settings in a group: its admins and the bot's get the settings, in the group."""
    group = await groups.get(session, message.chat.id)
    if not _usable(group, user):
        return
    with _speaking(i18n, group):
        if not await _from_admin(message, bot, user, groups, settings_views.admins_only()):
            return
        screen = await _settings_screen(bot, session, group)
        await message.reply(screen.text, reply_markup=screen.markup)


async def _settings_screen(
    bot: Bot, session: AsyncSession, group: GroupView, note: str = ""
) -> Screen:
    persona = await persona_for(session, group.persona_id)
    me = await bot.me()
    return settings_views.overview(
        persona.name,
        group.language,
        group.listen,
        group.answer_length,
        hears_all=bool(me.can_read_all_group_messages),
        note=note,
    )


async def group_setting(
    callback: CallbackQuery,
    callback_data: GroupSetting,
    bot: Bot,
    user: UserContext,
    session: AsyncSession,
    groups: GroupService,
    personas: PersonaService,
    i18n: I18n,
) -> None:
    """A press in a group's /settings: checked again on every press, since anyone in the
    group can press the buttons."""
    message = callback.message
    if not isinstance(message, Message) or message.chat.type not in GROUP_CHATS:
        await callback.answer(texts.stale_button(), show_alert=True)
        return
    chat_id = message.chat.id
    group = await groups.get(session, chat_id)
    if not _usable(group, user):
        await callback.answer(texts.stale_button(), show_alert=True)
        return
    with _speaking(i18n, group):
        if not await _group_admin(bot, chat_id, user):
            await callback.answer(settings_views.admins_only(), show_alert=True)
            return
        screen = await _group_setting(callback_data, bot, user, session, groups, personas, group)
    if screen is None:
        await callback.answer(texts.stale_button(), show_alert=True)
        return
    await dialog.edit(bot, chat_id, message.message_id, screen)
    await callback.answer()


async def _group_setting(
    data: GroupSetting,
    bot: Bot,
    user: UserContext,
    session: AsyncSession,
    groups: GroupService,
    personas: PersonaService,
    group: GroupView,
) -> Screen | None:
    """The screen after the press, or None for a value that is not (or no longer) one."""
    field, value, chat_id = data.field, data.value, group.chat_id
    if field is GroupSettingField.CLOSE:
        return settings_views.closed()
    if field is GroupSettingField.BACK:
        return await _settings_screen(bot, session, group)
    if field is GroupSettingField.PERSONA:
        # A group's admin chooses among the personas they may use themselves.
        usable = {ref.id: ref.name for ref in await personas.usable(session, user)}
        current = (await persona_for(session, group.persona_id)).id
        if not value:
            return settings_views.personas(list(usable.items()), current)
        if not value.isdigit() or int(value) not in usable:
            return None
        await groups.set_persona(session, chat_id, int(value))
    elif field is GroupSettingField.LANGUAGE:
        if not value:
            return settings_views.languages(group.language)
        if value != settings_views.MEMBERS_LANGUAGE and value not in LANGUAGES:
            return None
        language = None if value == settings_views.MEMBERS_LANGUAGE else value
        await groups.set_language(session, chat_id, language)
    elif field is GroupSettingField.LISTEN:
        if value not in ("0", "1"):
            return None
        await groups.set_listen(session, chat_id, listen=value == "1")
    elif field is GroupSettingField.LENGTH:
        if not value:
            return settings_views.lengths(group.answer_length)
        if value not in {length.value for length in AnswerLength}:
            return None
        await groups.set_answer_length(session, chat_id, AnswerLength(value))
    changed = await groups.get(session, chat_id)
    if changed is None:
        return None
    # A new language is spoken at once, on the screen that says it was chosen.
    with contextlib.ExitStack() as stack:
        if changed.language is not None:
            stack.enter_context(get_i18n().use_locale(changed.language))
        return await _settings_screen(bot, session, changed, texts.saved())


def _usable(group: GroupView | None, user: UserContext) -> TypeGuard[GroupView]:
    """An allowed group, and a user who is not blocked: what its commands need."""
    return group is not None and group.status is GroupStatus.ALLOWED and not user.blocked


async def _from_admin(
    message: Message, bot: Bot, user: UserContext, groups: GroupService, refusal: str
) -> bool:
    """Whether the message comes from an admin of its group or of the bot; anyone else is
    told `refusal`, alone."""
    if await _group_admin(bot, message.chat.id, user):
        return True
    await groups.tell(
        bot,
        message.chat.id,
        user.id,
        refusal,
        reply_to=message.message_id,
        thread_id=thread_of(message),
    )
    return False


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
    router.message.register(group_settings, GroupCommand("settings"))
    router.message.register(overhear, Overheard())
    router.message.register(group_question)
    router.callback_query.register(group_setting, GroupSetting.filter())
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
