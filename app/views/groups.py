"""What the bot says in groups, and to admins about groups."""

from __future__ import annotations

from html import escape

from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from app.domain.enums import GroupStatus
from app.keyboards.callbacks import GroupDecision, GroupPersona, GroupsButton
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


def _status(status: GroupStatus) -> str:
    names = {
        GroupStatus.PENDING: _("waiting for approval"),
        GroupStatus.ALLOWED: _("allowed"),
        GroupStatus.BLOCKED: _("blocked"),
        GroupStatus.LEFT: _("the bot was removed"),
    }
    return names[status]


def groups_screen(groups: list[tuple[int, str, GroupStatus, str]]) -> Screen:
    """/groups: every group the bot knows (id, title, status, persona), with Allow / Block
    and the persona it talks to."""
    if not groups:
        return Screen(_("I am in no group yet. Add me to one: its members can then talk to me."))
    lines = [_("The groups I know, newest first:")]
    keyboard = InlineKeyboardBuilder()
    widths: list[int] = []
    for chat_id, title, status, persona in groups:
        lines.append(
            f"• <b>{escape(title)}</b> (<code>{chat_id}</code>): {_status(status)}, "
            + _("persona {persona}").format(persona=escape(persona))
        )
        if status is GroupStatus.LEFT:
            continue
        allow = status is not GroupStatus.ALLOWED
        label = _("✅ Allow {title}") if allow else _("🚫 Block {title}")
        keyboard.button(
            text=label.format(title=title[:32]),
            callback_data=GroupsButton(chat_id=chat_id, allow=allow),
        )
        keyboard.button(text="🎭", callback_data=GroupPersona(chat_id=chat_id))
        widths.append(2)
    keyboard.adjust(*widths)
    return Screen("\n".join(lines), keyboard.as_markup() if widths else None)


def personas_screen(
    chat_id: int, title: str, personas: list[tuple[int, str]], current: int | None
) -> Screen:
    """The personas a group may talk to, the current one marked."""
    keyboard = InlineKeyboardBuilder()
    for persona_id, name in personas:
        mark = "✓ " if persona_id == current else ""
        keyboard.button(
            text=mark + name, callback_data=GroupPersona(chat_id=chat_id, persona_id=persona_id)
        )
    keyboard.adjust(1)
    text = _("Whom does the group <b>{title}</b> talk to?").format(title=escape(title))
    return Screen(text, keyboard.as_markup())


def group_gone() -> str:
    return _("I am no longer in that group: add me to it again first.")
