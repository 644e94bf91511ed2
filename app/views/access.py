"""What strangers and admins see of access requests."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from app import texts
from app.domain.access import Requester
from app.domain.enums import RequestStatus
from app.keyboards.callbacks import AccessAsk, AccessDecision
from app.views.dialog import Screen


def moment(value: datetime) -> str:
    """A time users read (an aware datetime): minutes, in UTC, said so."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def stranger_start(first_name: str, user_id: int) -> Screen:
    lines = texts.greeting(first_name, user_id)
    lines.append(
        _(
            "You don't have access yet. Press the button to ask the admins; I will tell you "
            "when they decide."
        )
    )
    return Screen("\n".join(lines), ask_keyboard())


def pending_start(first_name: str, user_id: int, since: datetime) -> Screen:
    lines = texts.greeting(first_name, user_id)
    lines.append(
        _("Your access request is waiting for the admins (sent {when}).").format(when=moment(since))
    )
    return Screen("\n".join(lines))


def blocked_start(first_name: str, user_id: int) -> Screen:
    return Screen("\n".join([*texts.greeting(first_name, user_id), blocked()]))


def no_admins_start(first_name: str, user_id: int) -> Screen:
    lines = texts.greeting(first_name, user_id)
    lines.append(
        _(
            "You don't have access yet, and this bot has no admins to ask. Send your id to "
            "its owner and ask them to add you."
        )
    )
    return Screen("\n".join(lines))


def blocked() -> str:
    return _("An admin has blocked your access to this bot.")


def no_access(user_id: int) -> str:
    return _(
        "You don't have access to this bot yet. /start lets you ask the admins for it "
        "(your Telegram id is <code>{user_id}</code>)."
    ).format(user_id=user_id)


def ask_keyboard() -> InlineKeyboardMarkup:
    keyboard = InlineKeyboardBuilder()
    keyboard.button(text=_("🔑 Request access"), callback_data=AccessAsk())
    return keyboard.as_markup()


def request_sent() -> str:
    return _("🔑 Your request has been sent to the admins. I will tell you when they decide.")


def request_pending(since: datetime) -> str:
    return _("Your request is already waiting for the admins (sent {when}).").format(
        when=moment(since)
    )


def too_soon(retry_at: datetime) -> str:
    return _("Your last request was denied. You can ask again after {when}.").format(
        when=moment(retry_at)
    )


def already_allowed() -> str:
    return _("You already have access: just write me a message. /help lists the commands.")


def no_admins() -> str:
    return _("This bot has no admins to ask. Send your id to its owner.")


def admins_unreachable() -> str:
    return _(
        "I could not deliver your request to any admin right now. It is kept: they will see "
        "it in /users."
    )


def _who(requester: Requester) -> str:
    name = " ".join(part for part in (requester.first_name, requester.last_name) if part)
    who = escape(name) or _("(no name)")
    if requester.username:
        who += f" @{escape(requester.username)}"
    return who


def request_notice(requester: Requester, request_id: int) -> Screen:
    text = _(
        "🔑 <b>Access request</b>\n{who} · id <code>{user_id}</code> · language {language}"
    ).format(
        who=_who(requester),
        user_id=requester.id,
        language=escape(requester.language_code or "?"),
    )
    keyboard = InlineKeyboardBuilder()
    keyboard.button(
        text=_("✅ Approve"), callback_data=AccessDecision(request_id=request_id, approve=True)
    )
    keyboard.button(
        text=_("❌ Deny"), callback_data=AccessDecision(request_id=request_id, approve=False)
    )
    return Screen(text, keyboard.as_markup())


def decided_notice(requester: Requester, status: RequestStatus, admin: str | None) -> Screen:
    head = _("🔑 <b>Access request</b>\n{who} · id <code>{user_id}</code>").format(
        who=_who(requester), user_id=requester.id
    )
    by = escape(admin or _("an admin"))
    if status is RequestStatus.APPROVED:
        outcome = _("✅ Approved by {admin}.").format(admin=by)
    else:
        outcome = _("❌ Denied by {admin}.").format(admin=by)
    return Screen(f"{head}\n\n{outcome}")


def already_decided(status: RequestStatus | None, admin: str | None) -> str:
    by = admin or _("an admin")
    if status is RequestStatus.APPROVED:
        return _("Already approved by {admin}.").format(admin=by)
    return _("Already denied by {admin}.").format(admin=by)


def request_gone() -> str:
    return _("This request no longer exists.")


def approved() -> str:
    return _(
        "✅ Your access request was approved! Just write me a message; /help lists the commands."
    )


def denied(retry_at: datetime | None) -> str:
    text = _("❌ Your access request was denied.")
    if retry_at is not None:
        text += " " + _("You can ask again after {when}.").format(when=moment(retry_at))
    return text
