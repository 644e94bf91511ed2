"""What the bot says in groups, and to admins about groups."""

from __future__ import annotations

from html import escape

from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from app.keyboards.callbacks import GroupDecision
from app.views.dialog import Screen


def hello() -> str:
    return _(
        "Hello! Mention me, reply to one of my messages or write /ask with your question, "
        "and I answer here. Everything else in this group I leave alone."
    )


def approval_asked() -> str:
    return _(
        "Thanks for adding me. An admin of this bot must approve this group before I answer "
        "here; I have asked them."
    )


def waiting_for_approval() -> str:
    return _("An admin of this bot has not approved this group yet, so I cannot answer here.")


def members_need_access() -> str:
    return _(
        "In this group I answer only people with access to me. Write /start to me in a "
        "private chat to ask for it."
    )


def ask_something() -> str:
    return _("Yes? Write your question after the mention, or after /ask.")


def approval_request(chat_id: int, title: str, adder: str) -> Screen:
    keyboard = InlineKeyboardBuilder()
    keyboard.button(text=_("Approve"), callback_data=GroupDecision(chat_id=chat_id, approve=True))
    keyboard.button(text=_("Deny"), callback_data=GroupDecision(chat_id=chat_id, approve=False))
    text = _(
        "{adder} added me to the group <b>{title}</b> (id <code>{chat_id}</code>). May its "
        "members talk to me there?"
    ).format(adder=escape(adder), title=escape(title), chat_id=chat_id)
    return Screen(text, keyboard.as_markup())


def approved(title: str) -> str:
    return _("✅ The group <b>{title}</b> is approved.").format(title=escape(title))


def denied(title: str) -> str:
    return _("🚫 The group <b>{title}</b> is denied: I stay silent there.").format(
        title=escape(title)
    )


def decided_already() -> str:
    return _("This group was decided on already.")


def admins_only() -> str:
    return _("Only this group's admins (and the bot's) may make me forget its conversation.")


def forgotten() -> str:
    return _("Forgotten: this group's conversation is deleted. The next question starts anew.")


def nothing_to_forget() -> str:
    return _("There is nothing to forget here yet.")


def guest_needs_access() -> str:
    return _("I answer only people with access to me: write /start to me to ask for it.")
