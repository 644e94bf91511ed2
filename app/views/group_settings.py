"""A group's /settings, shown in the group: its persona, the language of the bot's notes
there, whether it listens, and how long its answers are. The buttons name no group: the
group is the chat they are pressed in, so a button cannot be turned against another one."""

from __future__ import annotations

from html import escape

from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from app.domain.enums import AnswerLength
from app.i18n import LANGUAGES
from app.keyboards.callbacks import GroupSetting, GroupSettingField
from app.views.dialog import Screen
from app.views.settings import length_name

# The value of the language button that means "each member's own".
MEMBERS_LANGUAGE = "-"


def _on_off(on: bool) -> str:
    return _("on") if on else _("off")


def _language(language: str | None) -> str:
    return LANGUAGES.get(language or "", _("each member's own"))


def overview(
    persona: str,
    language: str | None,
    listen: bool,
    length: AnswerLength,
    *,
    hears_all: bool,
    note: str = "",
) -> Screen:
    """The group's settings, one button per setting."""
    lines = [
        _("⚙️ <b>Settings of this group</b> (for its admins)"),
        "",
        _("🎭 Persona: {persona}").format(persona=escape(persona)),
        _("🌐 Language of my notes: {language}").format(language=_language(language)),
        _("👂 Listen: {state}").format(state=_on_off(listen)),
        _("📏 Answers: {length}").format(length=length_name(length)),
    ]
    if listen:
        lines += ["", _listen_explained(hears_all)]
    if note:
        lines += ["", note]
    keyboard = InlineKeyboardBuilder()
    keyboard.button(
        text=_("🎭 Persona"), callback_data=GroupSetting(field=GroupSettingField.PERSONA)
    )
    keyboard.button(
        text=_("🌐 Language"), callback_data=GroupSetting(field=GroupSettingField.LANGUAGE)
    )
    keyboard.button(
        text=_("👂 Stop listening") if listen else _("👂 Listen"),
        callback_data=GroupSetting(field=GroupSettingField.LISTEN, value="0" if listen else "1"),
    )
    keyboard.button(
        text=_("📏 Answer length"), callback_data=GroupSetting(field=GroupSettingField.LENGTH)
    )
    keyboard.button(text=_("✖️ Close"), callback_data=GroupSetting(field=GroupSettingField.CLOSE))
    keyboard.adjust(2, 2, 1)
    return Screen("\n".join(lines), keyboard.as_markup())


def _listen_explained(hears_all: bool) -> str:
    text = _(
        "While listening I keep the last few messages not addressed to me, only as context "
        "for my next answer here; I never answer them, and /forget erases them."
    )
    if not hears_all:
        text += " " + _(
            "Telegram's privacy mode is on for me, so I get only messages addressed to me and "
            "replies: to hear the rest, make me an admin of this group, or my owner turns "
            "privacy mode off in @BotFather (/setprivacy)."
        )
    return text


def personas(choices: list[tuple[int, str]], current: int) -> Screen:
    keyboard = InlineKeyboardBuilder()
    for persona_id, name in choices:
        mark = "✓ " if persona_id == current else ""
        keyboard.button(
            text=mark + name,
            callback_data=GroupSetting(field=GroupSettingField.PERSONA, value=str(persona_id)),
        )
    keyboard.button(text=_("⬅️ Back"), callback_data=GroupSetting(field=GroupSettingField.BACK))
    keyboard.adjust(1)
    return Screen(_("🎭 Whom does this group talk to?"), keyboard.as_markup())


def languages(current: str | None) -> Screen:
    keyboard = InlineKeyboardBuilder()
    options = [(_("Each member's own"), MEMBERS_LANGUAGE), *((n, c) for c, n in LANGUAGES.items())]
    for name, code in options:
        chosen = (current or MEMBERS_LANGUAGE) == code
        keyboard.button(
            text=("✓ " if chosen else "") + name,
            callback_data=GroupSetting(field=GroupSettingField.LANGUAGE, value=code),
        )
    keyboard.button(text=_("⬅️ Back"), callback_data=GroupSetting(field=GroupSettingField.BACK))
    keyboard.adjust(1)
    return Screen(
        _("🌐 In which language do I write my notes here? (Answers follow the question.)"),
        keyboard.as_markup(),
    )


def lengths(current: AnswerLength) -> Screen:
    keyboard = InlineKeyboardBuilder()
    for length in AnswerLength:
        keyboard.button(
            text=("✓ " if length is current else "") + length_name(length),
            callback_data=GroupSetting(field=GroupSettingField.LENGTH, value=length.value),
        )
    keyboard.button(text=_("⬅️ Back"), callback_data=GroupSetting(field=GroupSettingField.BACK))
    keyboard.adjust(3, 1)
    return Screen(_("📏 How long should my answers in this group be?"), keyboard.as_markup())


def closed() -> Screen:
    return Screen(_("⚙️ Settings closed. /settings opens them again."))


def admins_only() -> str:
    return _("Only this group's admins (and the bot's) may change its settings.")
