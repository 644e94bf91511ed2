"""What the user sees of their profile: the facts under /memory with their buttons, typing a
new one, forgetting everything (/forget), and the /settings screen that turns it on or off."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from app.domain.memory import ProfileEntry
from app.keyboards.callbacks import (
    ForgetAllButton,
    ForgetStep,
    ProfileAction,
    ProfileButton,
    SettingsButton,
    SettingsSection,
)
from app.views.dialog import Screen

ON = "on"
OFF = "off"


def profile(entries: Sequence[ProfileEntry], enabled: bool, note: str | None = None) -> Screen:
    """The facts the assistant keeps about the user, each with a delete button."""
    title = _("🗂 <b>What I know about you</b>")
    if not enabled:
        text = _("{title}\n\nNothing: “Remember things about me” is off in /settings.").format(
            title=title
        )
        return Screen(text)
    lines = [title, ""]
    if entries:
        lines += [f"{number}. {escape(entry.text)}" for number, entry in enumerate(entries, 1)]
        lines += ["", _("Only you see this, admins included. ✖ deletes an entry.")]
    else:
        lines.append(
            _(
                "Nothing yet. From our private conversations I note lasting facts about you "
                "(your name, family, preferences, allergies, projects) to remember them with "
                "every persona. Only you see them."
            )
        )
    if note:
        lines += ["", note]
    keyboard = InlineKeyboardBuilder()
    for number, entry in enumerate(entries, 1):
        data = ProfileButton(action=ProfileAction.DELETE, fact_id=entry.id)
        keyboard.button(text=f"✖ {number}", callback_data=data)
    keyboard.adjust(5)
    keyboard.row()
    keyboard.button(
        text=_("➕ Add something"), callback_data=ProfileButton(action=ProfileAction.ADD)
    )
    return Screen("\n".join(lines), keyboard.as_markup())


def type_fact() -> Screen:
    return Screen(
        _(
            "🗂 Send one short sentence about yourself for me to remember, like “I am "
            "allergic to nuts”, or /cancel."
        )
    )


def fact_added() -> str:
    return _("✅ Noted.")


def fact_empty() -> str:
    return _("That is empty: send one short sentence about yourself, or /cancel.")


def fact_known() -> str:
    return _("I know that already.")


def profile_full() -> str:
    return _("Your profile is full: delete an entry first.")


def fact_deleted() -> str:
    return _("Deleted.")


def forget_everything_button() -> str:
    return _("🧹 Everything you know about me")


def forget_everything_keyboard() -> InlineKeyboardMarkup:
    keyboard = InlineKeyboardBuilder()
    keyboard.button(
        text=forget_everything_button(), callback_data=ForgetAllButton(step=ForgetStep.ASK)
    )
    return keyboard.as_markup()


def forget_everything_ask(facts: int, conversations: int) -> Screen:
    text = _(
        "🧹 Forget everything I know about you? This deletes for good:\n"
        "• your profile (entries: {facts});\n"
        "• all your private conversations with every persona, with their messages, "
        "summaries and documents (conversations: {conversations}).\n\n"
        "Group conversations are the groups' and stay. This cannot be undone."
    ).format(facts=facts, conversations=conversations)
    keyboard = InlineKeyboardBuilder()
    keyboard.button(text=_("Delete everything"), callback_data=ForgetAllButton(step=ForgetStep.YES))
    keyboard.button(text=_("Keep it"), callback_data=ForgetAllButton(step=ForgetStep.NO))
    return Screen(text, keyboard.as_markup())


def forgot_everything(facts: int, conversations: int) -> str:
    return _(
        "🧹 Deleted: your profile (entries: {facts}) and your private conversations "
        "(conversations: {conversations}). I know nothing about you now."
    ).format(facts=facts, conversations=conversations)


def setting_name(enabled: bool) -> str:
    return _("On") if enabled else _("Off")


def settings_screen(enabled: bool) -> Screen:
    text = _(
        "⚙️ Settings › 🗂 <b>Remember things about me</b>\n\n<b>On</b>: from our private "
        "conversations I note lasting facts about you (your name, family, preferences, "
        "allergies, projects) and remember them with every persona; /memory shows them. "
        "Only you see them. <b>Off</b>: I keep nothing, and what I noted is deleted."
    )
    keyboard = InlineKeyboardBuilder()
    for label, value in ((setting_name(True), ON), (setting_name(False), OFF)):
        mark = "✓ " if (value == ON) == enabled else ""
        data = SettingsButton(section=SettingsSection.PROFILE, value=value)
        keyboard.button(text=mark + label, callback_data=data)
    keyboard.adjust(2)
    keyboard.row()
    keyboard.button(text=_("‹ Back"), callback_data=SettingsButton(section=SettingsSection.MENU))
    return Screen(text, keyboard.as_markup())
