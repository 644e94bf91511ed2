"""The /users screens: a paged list, one user's card, and its persona and budget screens."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from app.config import BudgetSettings
from app.domain.enums import BudgetUnit
from app.domain.refs import PersonaRef
from app.domain.rights import Right
from app.domain.user_admin import (
    Change,
    InvalidBudget,
    LastAdmin,
    ListedAdmin,
    Note,
    PersonaNotFound,
    Spent,
    UserAdminError,
    UserNotFound,
    UserStatus,
    UserSummary,
)
from app.keyboards.callbacks import UsersAction, UsersButton
from app.texts import token_count
from app.views.dialog import Screen
from app.views.usage import amount, money

PAGE_SIZE = 8

_STATUS_MARKS = {
    UserStatus.ADMIN: "👑",
    UserStatus.PENDING: "🔑",
    UserStatus.ALLOWED: "✅",
    UserStatus.NO_ACCESS: "⛔",
    UserStatus.BLOCKED: "🚫",
}


def status_name(status: UserStatus) -> str:
    names = {
        UserStatus.ADMIN: _("admin"),
        UserStatus.PENDING: _("asks for access"),
        UserStatus.ALLOWED: _("allowed"),
        UserStatus.NO_ACCESS: _("no access"),
        UserStatus.BLOCKED: _("blocked"),
    }
    return names[status]


def right_name(right: Right) -> str:
    names = {
        Right.CHAT: _("Chat"),
        Right.CREATE_PERSONAS: _("Create personas"),
        Right.EDIT_PERSONAS: _("Edit own personas"),
        Right.ADMIN: _("Admin"),
    }
    return names[right]


def _name(user: UserSummary) -> str:
    return escape(user.display_name) or _("(never wrote)")


def _usage(usage: Spent, budget: BudgetSettings) -> str:
    text = token_count(usage.tokens)
    if budget.prices:
        text += " · " + money(usage.cost, budget.currency)
    return text


def _button(action: UsersAction, user_id: int = 0, page: int = 0, value: str = "") -> str:
    return UsersButton(action=action, user_id=user_id, page=page, value=value).pack()


def user_list(users: list[UserSummary], total: int, page: int, budget: BudgetSettings) -> Screen:
    pages = max(1, -(-total // PAGE_SIZE))
    lines = [
        _("👥 <b>Users</b> · {total} · page {page} of {pages}").format(
            total=total, page=page + 1, pages=pages
        ),
        "",
    ]
    keyboard = InlineKeyboardBuilder()
    for user in users:
        mark = _STATUS_MARKS[user.status]
        lines.append(
            _("{mark} {name} · <code>{id}</code> · {status} · {persona} · today {usage}").format(
                mark=mark,
                name=_name(user),
                id=user.id,
                status=status_name(user.status),
                persona=escape(user.persona_name or _("default persona")),
                usage=_usage(user.today, budget),
            )
        )
        label = f"{mark} {user.display_name or user.id}"
        keyboard.button(text=label[:40], callback_data=_button(UsersAction.OPEN, user.id, page))
    keyboard.adjust(2)
    if pages > 1:
        keyboard.row()
        if page > 0:
            keyboard.button(text="‹", callback_data=_button(UsersAction.LIST, page=page - 1))
        if page + 1 < pages:
            keyboard.button(text="›", callback_data=_button(UsersAction.LIST, page=page + 1))
    keyboard.row()
    keyboard.button(text=_("✖️ Close"), callback_data=_button(UsersAction.CLOSE))
    if not users:
        lines.append(_("Nobody has written to the bot yet."))
    return Screen("\n".join(lines), keyboard.as_markup())


def _limit(value: float | None, unit: BudgetUnit, currency: str) -> str:
    if value is None:
        return _("no limit")
    return amount(value, unit, currency)


def budget_line(user: UserSummary, budget: BudgetSettings) -> str:
    if user.status is UserStatus.ADMIN:
        return _("Budget: admins are never limited")
    if user.budget is None:
        return _("Budget (the owner's default): {daily} a day, {monthly} a month").format(
            daily=_limit(budget.daily, budget.unit, budget.currency),
            monthly=_limit(budget.monthly, budget.unit, budget.currency),
        )
    own = user.budget
    return _("Budget (own): {daily} a day, {monthly} a month").format(
        daily=_limit(own.daily, own.unit, budget.currency),
        monthly=_limit(own.monthly, own.unit, budget.currency),
    )


def user_card(
    user: UserSummary,
    page: int,
    budget: BudgetSettings,
    note: str = "",
    tool_rights: Mapping[str, str] | None = None,
) -> Screen:
    """A user's card; `tool_rights`: the rights tools need (name: what it is for), each
    with a toggle."""
    tool_rights = tool_rights or {}
    lines = [
        f"{_STATUS_MARKS[user.status]} <b>{_name(user)}</b> · <code>{user.id}</code>",
        _("Status: {status}").format(status=status_name(user.status)),
        _("Persona: {persona}").format(persona=escape(user.persona_name or _("default persona"))),
        _("Used today: {usage}").format(usage=_usage(user.today, budget)),
        _("Used this month: {usage}").format(usage=_usage(user.month, budget)),
        budget_line(user, budget),
        "",
        _("Rights:"),
    ]
    for right in Right:
        mark = "✓" if right in user.rights else ("·" if right in user.granted else "✗")
        lines.append(f"{mark} {right_name(right)}")
    for name, description in tool_rights.items():
        held = name in user.tool_rights
        in_effect = (held and Right.CHAT in user.rights) or Right.ADMIN in user.rights
        mark = "✓" if in_effect else ("·" if held else "✗")
        lines.append(f"{mark} 🔧 {escape(description, quote=False)}")
    if user.listed_admin:
        lines.append(_("Listed in ADMIN_IDS: always an admin."))
    if note:
        lines += ["", note]
    keyboard = InlineKeyboardBuilder()
    uid = user.id
    if user.status is UserStatus.BLOCKED or Right.CHAT not in user.rights:
        keyboard.button(text=_("✅ Allow"), callback_data=_button(UsersAction.ALLOW, uid, page))
    if user.status is not UserStatus.BLOCKED and not user.listed_admin:
        keyboard.button(text=_("🚫 Block"), callback_data=_button(UsersAction.BLOCK, uid, page))
    for right in (Right.CHAT, Right.CREATE_PERSONAS, Right.EDIT_PERSONAS, Right.ADMIN):
        granted = right in user.granted
        action = UsersAction.REVOKE if granted else UsersAction.GRANT
        label = ("✓ " if granted else "✗ ") + right_name(right)
        keyboard.button(text=label, callback_data=_button(action, uid, page, right.value))
    for name, description in tool_rights.items():
        held = name in user.tool_rights
        action = UsersAction.REVOKE if held else UsersAction.GRANT
        label = ("✓ 🔧 " if held else "✗ 🔧 ") + description
        keyboard.button(text=label[:64], callback_data=_button(action, uid, page, name))
    keyboard.button(text=_("🎭 Persona"), callback_data=_button(UsersAction.PERSONAS, uid, page))
    keyboard.button(text=_("💰 Budget"), callback_data=_button(UsersAction.BUDGET, uid, page))
    keyboard.button(text=_("‹ Users"), callback_data=_button(UsersAction.LIST, page=page))
    keyboard.adjust(2)
    return Screen("\n".join(lines), keyboard.as_markup())


def persona_choice(user: UserSummary, personas: list[PersonaRef], page: int) -> Screen:
    text = _("👥 {name} › 🎭 <b>Persona</b>\n\nWhom does this user talk to?").format(
        name=_name(user)
    )
    keyboard = InlineKeyboardBuilder()
    for ref in personas:
        mark = "✓ " if ref.id == user.persona_id else ""
        keyboard.button(
            text=mark + ref.name,
            callback_data=_button(UsersAction.SET_PERSONA, user.id, page, str(ref.id)),
        )
    keyboard.adjust(2)
    keyboard.row()
    keyboard.button(text=_("‹ Back"), callback_data=_button(UsersAction.OPEN, user.id, page))
    return Screen(text, keyboard.as_markup())


def budget_screen(user: UserSummary, page: int, budget: BudgetSettings) -> Screen:
    unit = user.budget.unit if user.budget else budget.unit
    lines = [
        _("👥 {name} › 💰 <b>Budget</b>").format(name=_name(user)),
        "",
        budget_line(user, budget),
        _("Used today: {usage}").format(usage=_usage(user.today, budget)),
        _("Used this month: {usage}").format(usage=_usage(user.month, budget)),
        "",
        _(
            "Limits count tokens (in + out) or money (from the price table). Days and months "
            "are in UTC."
        ),
    ]
    uid = user.id
    keyboard = InlineKeyboardBuilder()
    for value, label in ((BudgetUnit.TOKENS, _("Tokens")), (BudgetUnit.MONEY, _("Money"))):
        mark = "✓ " if user.budget is not None and unit is value else ""
        keyboard.button(
            text=mark + label, callback_data=_button(UsersAction.UNIT, uid, page, value.value)
        )
    keyboard.button(
        text=_("✏️ Daily limit"), callback_data=_button(UsersAction.LIMIT, uid, page, "daily")
    )
    keyboard.button(
        text=_("✏️ Monthly limit"), callback_data=_button(UsersAction.LIMIT, uid, page, "monthly")
    )
    mark = "✓ " if user.budget is None else ""
    keyboard.button(
        text=mark + _("Owner's default"), callback_data=_button(UsersAction.DEFAULTS, uid, page)
    )
    keyboard.button(text=_("‹ Back"), callback_data=_button(UsersAction.OPEN, uid, page))
    keyboard.adjust(2)
    return Screen("\n".join(lines), keyboard.as_markup())


def ask_limit(user: UserSummary, period: str, unit: BudgetUnit, currency: str) -> Screen:
    what = _("daily") if period == "daily" else _("monthly")
    if unit is BudgetUnit.MONEY:
        hint = _("an amount of money in {currency}, like 2.50").format(currency=escape(currency))
    else:
        hint = _("a number of tokens, like 200000")
    return Screen(
        _(
            "👥 {name} › 💰 Budget\n\nSend the {what} limit: {hint}. Send 0 for no limit, "
            "or /cancel."
        ).format(name=_name(user), what=what, hint=hint)
    )


def limit_invalid() -> str:
    return _("That is not a limit: send a positive number, 0 for no limit, or /cancel.")


def closed() -> Screen:
    return Screen(_("👥 Closed. /users opens the list again."))


def note(change: Change) -> str:
    """What an admin should know after a change."""
    texts = {
        Note.CREATED: _("They have not written to the bot yet; their record was created."),
        Note.NEEDS_CHAT: _("Stored, but it counts only once they may chat."),
        Note.ADMIN_HAS_ALL: _("They are an admin, who may do everything anyway."),
        Note.EVERYONE_ALLOWED: _("ALLOWED_USER_IDS=* still lets them chat."),
        Note.LISTED_ALLOWED: _(
            "They are listed in ALLOWED_USER_IDS: chat comes back when the bot restarts."
        ),
        Note.WAS_ADMIN: _("They were an admin and no longer are."),
    }
    parts = [texts[item] for item in change.notes]
    if not change.changed:
        parts.insert(0, _("Nothing to change: it already was so."))
    return " ".join(parts) or _("Saved.")


def refused(error: UserAdminError) -> str:
    """An admin's change that cannot be made, in the admin's language."""
    if isinstance(error, ListedAdmin):
        return _(
            "This user is listed in ADMIN_IDS: the owner's settings make them an admin, so "
            "they cannot be blocked or lose the admin role here."
        )
    if isinstance(error, LastAdmin):
        return _("This is the last admin: make someone else an admin first.")
    if isinstance(error, UserNotFound):
        return _("This user is not known to the bot any more.")
    if isinstance(error, PersonaNotFound):
        return _("This persona no longer exists.")
    if isinstance(error, InvalidBudget):
        return limit_invalid()
    return _("That change cannot be made.")


def allowed_notice() -> str:
    return _("✅ An admin has given you access. Just write me a message; /help lists the commands.")
