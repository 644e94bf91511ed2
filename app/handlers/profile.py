"""The user's profile: its buttons under /memory (delete an entry, add one by typing it) and
/forget's "everything you know about me". Always the user's own, in their private chat."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.domain.users import Preferences, UserContext
from app.fsm.profile import ProfileData, ProfileDialog
from app.keyboards.callbacks import ForgetAllButton, ForgetStep, ProfileAction, ProfileButton
from app.services.profile import Added, ProfileService
from app.views import dialog
from app.views import profile as views


async def profile_button(
    callback: CallbackQuery,
    callback_data: ProfileButton,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    profile: ProfileService,
    state: FSMContext,
    bot: Bot,
) -> None:
    if not preferences.profile:
        await dialog.answer_with(callback, bot, views.profile([], enabled=False))
        return
    if callback_data.action is ProfileAction.ADD:
        menu_id = callback.message.message_id if callback.message else None
        await state.set_state(ProfileDialog.typing_fact)
        await state.set_data(ProfileData(menu_id=menu_id).model_dump())
        await dialog.answer_with(callback, bot, views.type_fact())
        return
    # Another user's id, or one deleted already, deletes nothing.
    if not await profile.remove(session, user.id, callback_data.fact_id):
        await callback.answer(texts.stale_button(), show_alert=True)
        return
    entries = await profile.entries(session, user.id)
    await dialog.answer_with(callback, bot, views.profile(entries, True, views.fact_deleted()))


async def typed_fact(
    message: Message,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    profile: ProfileService,
    state: FSMContext,
    bot: Bot,
) -> None:
    added = await profile.add(session, user.id, message.text or "")
    if added is Added.EMPTY:
        await message.answer(views.fact_empty())
        return
    data = ProfileData.model_validate(await state.get_data())
    await state.clear()
    notes = {
        Added.ADDED: views.fact_added(),
        Added.KNOWN: views.fact_known(),
        Added.FULL: views.profile_full(),
    }
    entries = await profile.entries(session, user.id)
    screen = views.profile(entries, preferences.profile, notes[added])
    await dialog.replace(bot, user.id, data.menu_id, screen)


async def forget_everything(
    callback: CallbackQuery,
    callback_data: ForgetAllButton,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    profile: ProfileService,
    bot: Bot,
) -> None:
    if callback_data.step is ForgetStep.ASK:
        found = await profile.everything(session, user.id)
        screen = views.forget_everything_ask(found.facts, found.conversations)
    elif callback_data.step is ForgetStep.YES:
        done = await profile.forget_everything(session, user.id, preferences.persona.id)
        screen = dialog.Screen(views.forgot_everything(done.facts, done.conversations))
    else:
        screen = dialog.Screen(texts.forget_kept())
    await dialog.answer_with(callback, bot, screen)


def create_router() -> Router:
    router = Router(name=__name__)
    # Only ever in the private chat: a profile is never shown where others could read it.
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")
    router.message.register(
        typed_fact, StateFilter(ProfileDialog.typing_fact), F.text, ~F.text.startswith("/")
    )
    router.callback_query.register(profile_button, ProfileButton.filter())
    router.callback_query.register(forget_everything, ForgetAllButton.filter())
    return router
