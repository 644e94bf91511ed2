"""/chats: the user's conversations with their persona; go back to one, rename or delete it."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.domain.conversations import ConversationItem
from app.domain.users import Preferences, UserContext
from app.fsm.conversations import ChatsData, ChatsDialog
from app.keyboards.callbacks import ChatsAction, ChatsButton
from app.services.conversations import ConversationService, clean_title
from app.views import chats as views
from app.views import dialog
from app.views.dialog import Screen


async def _list(
    session: AsyncSession,
    conversations: ConversationService,
    user: UserContext,
    preferences: Preferences,
    i18n: I18n,
    page: int,
) -> Screen:
    listed = await conversations.page(session, user.id, preferences.persona.id, page)
    return views.chats_screen(listed, preferences.persona.name, i18n.current_locale)


async def show_chats(
    message: Message,
    bot: Bot,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    conversations: ConversationService,
    i18n: I18n,
    state: FSMContext,
) -> None:
    if await state.get_state() == ChatsDialog.typing_title.state:
        await state.clear()
    if (await bot.me()).has_topics_enabled:
        # Each topic is a conversation of its own: there is none to switch to, and a title
        # or a deletion here would leave its topic behind.
        await message.answer(views.topics_instead())
        return
    screen = await _list(session, conversations, user, preferences, i18n, 0)
    await message.answer(screen.text, reply_markup=screen.markup)


async def _item(
    session: AsyncSession,
    conversations: ConversationService,
    user: UserContext,
    preferences: Preferences,
    button: ChatsButton,
) -> ConversationItem | None:
    """The conversation the button is about, if it is still on the page it was shown on."""
    listed = await conversations.page(session, user.id, preferences.persona.id, button.page)
    return next((item for item in listed.items if item.id == button.conversation_id), None)


async def press(
    callback: CallbackQuery,
    callback_data: ChatsButton,
    bot: Bot,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    conversations: ConversationService,
    i18n: I18n,
    state: FSMContext,
) -> None:
    button = callback_data
    if await state.get_state() == ChatsDialog.typing_title.state:
        await state.clear()  # a button instead of the typed title: the typing is over
    if button.action is ChatsAction.CLOSE:
        await dialog.answer_with(callback, bot, views.closed())
        return
    if button.action is ChatsAction.PAGE:
        screen = await _list(session, conversations, user, preferences, i18n, button.page)
        await dialog.answer_with(callback, bot, screen)
        return
    item = await _item(session, conversations, user, preferences, button)
    if item is None:  # deleted meanwhile, another persona's, or forged
        await callback.answer(texts.stale_button(), show_alert=True)
        return
    if button.action is ChatsAction.OPEN:
        await conversations.choose(session, user.id, item.id)
        screen = await _list(session, conversations, user, preferences, i18n, 0)
        await dialog.answer_with(callback, bot, screen)
        await bot.send_message(user.id, views.chosen(views.name_of(item)))
    elif button.action is ChatsAction.RENAME:
        menu_id = callback.message.message_id if callback.message else None
        await state.set_state(ChatsDialog.typing_title)
        data = ChatsData(conversation_id=item.id, menu_id=menu_id, page=button.page)
        await state.set_data(data.model_dump())
        await dialog.answer_with(callback, bot, Screen(views.rename_prompt(views.name_of(item))))
    elif button.action is ChatsAction.DELETE:
        screen = views.delete_screen(views.name_of(item), item.id, button.page)
        await dialog.answer_with(callback, bot, screen)
    else:  # DELETE_YES
        await conversations.delete(session, user.id, item.id)
        screen = await _list(session, conversations, user, preferences, i18n, button.page)
        await dialog.answer_with(callback, bot, screen)


async def typed_title(
    message: Message,
    bot: Bot,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    conversations: ConversationService,
    i18n: I18n,
    state: FSMContext,
) -> None:
    title = clean_title(message.text or "")
    if not title:
        await message.answer(views.title_empty())
        return
    try:
        data = ChatsData.model_validate(await state.get_data())
    except ValidationError:
        await state.clear()
        await message.answer(texts.stale_button())
        return
    await state.clear()
    if not await conversations.rename(session, user.id, data.conversation_id, title):
        await message.answer(texts.stale_button())  # deleted while the title was typed
        return
    screen = await _list(session, conversations, user, preferences, i18n, data.page)
    await dialog.replace(bot, user.id, data.menu_id, screen)


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(show_chats, Command("chats"))
    router.message.register(
        typed_title, StateFilter(ChatsDialog.typing_title), F.text, ~F.text.startswith("/")
    )
    router.callback_query.register(press, ChatsButton.filter())
    return router
