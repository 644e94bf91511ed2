"""/settings: persona, model, temperature, answer length, reasoning, voice answers, memory
mode, language, whether the assistant remembers things about the user, and the time zone.

One message, edited in place: the overview opens a screen per setting, a choice saves at
once and returns to the overview. Only a typed temperature or time zone needs a dialog
state.
"""

from __future__ import annotations

import dataclasses

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.config import Settings
from app.domain.enums import AnswerLength, MemoryMode, ReasoningDisplay, VoiceReplies
from app.domain.users import Preferences, UserContext
from app.fsm.settings import SettingsData, SettingsDialog
from app.i18n import locale_for
from app.keyboards.callbacks import SettingsButton, SettingsSection
from app.memory.service import MemoryService
from app.services.personas import PersonaService
from app.services.preferences import (
    PreferencesService,
    SettingInvalid,
    parse_temperature,
    parse_timezone,
)
from app.services.profile import ProfileService
from app.views import dialog
from app.views import profile as profile_views
from app.views import settings as views

# The states in which a value is being typed: a button pressed instead ends them.
TYPING = (SettingsDialog.typing_temperature.state, SettingsDialog.typing_timezone.state)


def _current(user: UserContext, preferences: Preferences, i18n: I18n) -> views.Current:
    return views.Current(
        persona=preferences.persona.name,
        model=preferences.model,
        temperature=preferences.temperature,
        own_temperature=user.temperature is not None,
        answer_length=preferences.answer_length,
        reasoning=preferences.reasoning,
        voice_replies=preferences.voice_replies,
        mode=preferences.mode,
        recall_everywhere=preferences.recall_everywhere,
        language=user.language,
        locale=i18n.current_locale,
        profile=preferences.profile,
        timezone=preferences.timezone,
        own_timezone=user.timezone is not None,
    )


async def open_settings(
    message: Message, user: UserContext, preferences: Preferences, i18n: I18n
) -> None:
    screen = views.overview(_current(user, preferences, i18n))
    await message.answer(screen.text, reply_markup=screen.markup)


async def open_section(
    callback: CallbackQuery,
    callback_data: SettingsButton,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    personas: PersonaService,
    settings: Settings,
    i18n: I18n,
    state: FSMContext,
    bot: Bot,
) -> None:
    section = callback_data.section
    if await state.get_state() in TYPING:
        await state.clear()  # a button instead of the typed value: the typing is over
    current = _current(user, preferences, i18n)
    if section is SettingsSection.PERSONA:
        usable = await personas.usable(session, user)
        screen = views.personas(usable, preferences.persona.id)
    elif section is SettingsSection.MODEL:
        screen = views.models(settings.openai.choosable_models, current.model)
    elif section is SettingsSection.TEMPERATURE:
        screen = views.temperatures(
            current.temperature, settings.openai.temperature, current.own_temperature
        )
    elif section is SettingsSection.LENGTH:
        screen = views.lengths(current.answer_length)
    elif section is SettingsSection.REASONING:
        screen = views.reasonings(current.reasoning)
    elif section is SettingsSection.VOICE:
        screen = views.voice_replies(current.voice_replies)
    elif section is SettingsSection.MODE:
        screen = views.modes(current.mode)
    elif section is SettingsSection.RECALL:
        screen = views.recall_scopes(current.recall_everywhere)
    elif section is SettingsSection.LANGUAGE:
        screen = views.languages(current.language)
    elif section is SettingsSection.PROFILE:
        screen = profile_views.settings_screen(current.profile)
    elif section is SettingsSection.TIMEZONE:
        screen = views.timezones(current, settings.tools.default_timezone)
    elif section is SettingsSection.CLOSE:
        screen = views.closed()
    else:
        screen = views.overview(current)
    await dialog.answer_with(callback, bot, screen)


async def choose(
    callback: CallbackQuery,
    callback_data: SettingsButton,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    personas: PersonaService,
    memory: MemoryService,
    user_choices: PreferencesService,
    profile: ProfileService,
    settings: Settings,
    i18n: I18n,
    state: FSMContext,
    bot: Bot,
) -> None:
    current = _current(user, preferences, i18n)
    value = callback_data.value
    try:
        match callback_data.section:
            case SettingsSection.PERSONA:
                usable = {str(ref.id): ref for ref in await personas.usable(session, user)}
                if value not in usable:
                    await callback.answer(views.unavailable(), show_alert=True)
                    return
                await personas.switch(session, user.id, usable[value].id)
                current = dataclasses.replace(current, persona=usable[value].name)
            case SettingsSection.MODEL:
                models = settings.openai.choosable_models
                model = models[int(value)] if value.isdigit() and int(value) < len(models) else ""
                await user_choices.set_model(session, user.id, model)
                current = dataclasses.replace(current, model=model)
            case SettingsSection.TEMPERATURE:
                if value == views.TYPE_VALUE:
                    await _ask(callback, state, bot, SettingsDialog.typing_temperature)
                    return
                own = value != views.DEFAULT
                temperature = parse_temperature(value) if own else None
                await user_choices.set_temperature(session, user.id, temperature)
                shown = settings.openai.temperature if temperature is None else temperature
                current = dataclasses.replace(current, temperature=shown, own_temperature=own)
            case SettingsSection.LENGTH:
                length = AnswerLength(value)
                await user_choices.set_answer_length(session, user.id, length)
                current = dataclasses.replace(current, answer_length=length)
            case SettingsSection.REASONING:
                display = ReasoningDisplay(value)
                await user_choices.set_reasoning_display(session, user.id, display)
                current = dataclasses.replace(current, reasoning=display)
            case SettingsSection.VOICE:
                replies = VoiceReplies(value)
                await user_choices.set_voice_replies(session, user.id, replies)
                current = dataclasses.replace(current, voice_replies=replies)
            case SettingsSection.MODE:
                mode = MemoryMode(value)
                await memory.set_mode(session, user.id, mode)
                current = dataclasses.replace(current, mode=mode)
            case SettingsSection.RECALL:
                if value not in ("0", "1"):
                    raise SettingInvalid(value)
                everywhere = value == "1"
                await user_choices.set_recall_everywhere(session, user.id, everywhere)
                current = dataclasses.replace(current, recall_everywhere=everywhere)
            case SettingsSection.LANGUAGE:
                chosen = None if value == views.TELEGRAM_LANGUAGE else value
                await user_choices.set_language(session, user.id, chosen)
                locale = locale_for(chosen, user.telegram_language)
                current = dataclasses.replace(current, language=chosen, locale=locale)
            case SettingsSection.TIMEZONE:
                if value == views.TYPE_VALUE:
                    await _ask(callback, state, bot, SettingsDialog.typing_timezone)
                    return
                zone = None if value == views.DEFAULT else value
                await user_choices.set_timezone(session, user.id, zone)
                in_use = zone or settings.tools.default_timezone
                current = dataclasses.replace(current, timezone=in_use, own_timezone=bool(zone))
            case SettingsSection.PROFILE:
                if value not in (profile_views.ON, profile_views.OFF):
                    raise SettingInvalid(value)
                enabled = value == profile_views.ON
                # Off deletes what was noted; on starts from the messages sent from now.
                await profile.set_enabled(session, user.id, enabled)
                current = dataclasses.replace(current, profile=enabled)
            case _:
                raise SettingInvalid(value)
    except (SettingInvalid, ValueError):
        # Not a value any keyboard of ours offers: a forged or outdated button.
        await callback.answer(texts.stale_button(), show_alert=True)
        return
    if await state.get_state() in TYPING:
        await state.clear()
    with i18n.use_locale(current.locale):
        screen = views.overview(current, texts.saved())
    await dialog.answer_with(callback, bot, screen)


async def _ask(callback: CallbackQuery, state: FSMContext, bot: Bot, typing: State) -> None:
    menu_id = callback.message.message_id if callback.message else None
    await state.set_state(typing)
    await state.set_data(SettingsData(menu_id=menu_id).model_dump())
    screen = (
        views.type_temperature()
        if typing == SettingsDialog.typing_temperature
        else views.type_timezone()
    )
    await dialog.answer_with(callback, bot, screen)


async def typed_value(
    message: Message,
    user: UserContext,
    preferences: Preferences,
    session: AsyncSession,
    user_choices: PreferencesService,
    i18n: I18n,
    state: FSMContext,
    bot: Bot,
) -> None:
    """A typed temperature or time zone (whichever the dialog waits for): checked, stored,
    and the overview comes back below it."""
    timezone = await state.get_state() == SettingsDialog.typing_timezone.state
    current = _current(user, preferences, i18n)
    try:
        if timezone:
            zone = parse_timezone(message.text or "")
            await user_choices.set_timezone(session, user.id, zone)
            current = dataclasses.replace(current, timezone=zone, own_timezone=True)
        else:
            temperature = parse_temperature(message.text or "")
            await user_choices.set_temperature(session, user.id, temperature)
            current = dataclasses.replace(current, temperature=temperature, own_temperature=True)
    except SettingInvalid:
        await message.answer(views.timezone_invalid() if timezone else views.temperature_invalid())
        return
    data = SettingsData.model_validate(await state.get_data())
    await state.clear()
    await dialog.replace(bot, user.id, data.menu_id, views.overview(current, texts.saved()))


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(open_settings, Command("settings"))
    router.message.register(typed_value, StateFilter(*TYPING), F.text, ~F.text.startswith("/"))
    router.callback_query.register(open_section, SettingsButton.filter(F.value == ""))
    router.callback_query.register(choose, SettingsButton.filter(F.value != ""))
    return router
