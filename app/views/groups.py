"""What the bot says in groups, and to admins about groups."""

from __future__ import annotations

from html import escape

from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from app.config import BudgetSettings
from app.domain.enums import BudgetUnit, GroupMembers, GroupStatus
from app.domain.usage import Limits, UsageTotals
from app.keyboards.callbacks import (
    GroupCard,
    GroupCardAction,
    GroupDecision,
    GroupPersona,
    GroupsButton,
)
from app.texts import number
from app.views.dialog import Screen
from app.views.usage import amount, money


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
    """/groups: every group the bot knows (id, title, status, persona), with Allow / Block,
    the persona it talks to and its card (⚙️)."""
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
        keyboard.button(text="⚙️", callback_data=GroupCard(chat_id=chat_id))
        widths.append(3)
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


def _members(members: GroupMembers) -> str:
    names = {
        GroupMembers.ALL: _("every member"),
        GroupMembers.ALLOWED: _("only users with access"),
    }
    return names[members]


def _limit(value: float | None, unit: BudgetUnit, currency: str) -> str:
    return _("no limit") if value is None else amount(value, unit, currency)


def _used(totals: UsageTotals, budget: BudgetSettings) -> str:
    text = _("{tokens_in} in, {tokens_out} out").format(
        tokens_in=number(totals.prompt_tokens), tokens_out=number(totals.completion_tokens)
    )
    if budget.prices:
        text += " · " + money(totals.cost, budget.currency)
    return text


def _card_button(chat_id: int, action: GroupCardAction, value: str = "") -> GroupCard:
    return GroupCard(chat_id=chat_id, action=action, value=value)


def group_card(
    *,
    chat_id: int,
    title: str,
    status: GroupStatus,
    persona: str,
    members: GroupMembers,
    members_own: bool,
    limits: Limits | None,
    today: UsageTotals,
    month: UsageTotals,
    budget: BudgetSettings,
) -> Screen:
    """One group as an admin sees it: who may talk there, its budget and what it spent, with
    buttons to change them."""
    who = _members(members)
    if members_own:
        members_line = _("Who may talk: {who} (this group's own choice)").format(who=who)
    else:
        members_line = _("Who may talk: {who} (the owner's default)").format(who=who)
    if limits is None:
        budget_line = _("Budget: no limit of its own (its members' own limits still apply)")
    else:
        budget_line = _("Budget (own): {daily} a day, {monthly} a month").format(
            daily=_limit(limits.daily, limits.unit, budget.currency),
            monthly=_limit(limits.monthly, limits.unit, budget.currency),
        )
    lines = [
        f"⚙️ <b>{escape(title)}</b> · <code>{chat_id}</code>",
        _("Status: {status}").format(status=_status(status)),
        _("Persona: {persona}").format(persona=escape(persona)),
        members_line,
        "",
        budget_line,
        _("Used today: {usage}").format(usage=_used(today, budget)),
        _("Used this month: {usage}").format(usage=_used(month, budget)),
        "",
        _(
            "Limits count tokens (in + out) or money (from the price table). Days and months "
            "are in UTC."
        ),
    ]
    keyboard = InlineKeyboardBuilder()
    other = GroupMembers.ALLOWED if members is GroupMembers.ALL else GroupMembers.ALL
    if other is GroupMembers.ALLOWED:
        label = _("👥 Only users with access")
    else:
        label = _("👥 Every member")
    keyboard.button(
        text=label, callback_data=_card_button(chat_id, GroupCardAction.MEMBERS, other.value)
    )
    mark = "✓ " if not members_own else ""
    keyboard.button(
        text=mark + _("👥 Owner's default"),
        callback_data=_card_button(chat_id, GroupCardAction.MEMBERS),
    )
    units = ((BudgetUnit.TOKENS, _("Tokens")), (BudgetUnit.MONEY, _("Money")))
    for unit, name in units:
        mark = "✓ " if limits is not None and limits.unit is unit else ""
        keyboard.button(
            text=mark + name, callback_data=_card_button(chat_id, GroupCardAction.UNIT, unit.value)
        )
    mark = "✓ " if limits is None else ""
    keyboard.button(
        text=mark + _("No limit of its own"),
        callback_data=_card_button(chat_id, GroupCardAction.UNIT),
    )
    keyboard.button(
        text=_("✏️ Daily limit"),
        callback_data=_card_button(chat_id, GroupCardAction.LIMIT, "daily"),
    )
    keyboard.button(
        text=_("✏️ Monthly limit"),
        callback_data=_card_button(chat_id, GroupCardAction.LIMIT, "monthly"),
    )
    keyboard.button(text=_("⬅️ Back"), callback_data=_card_button(chat_id, GroupCardAction.BACK))
    keyboard.adjust(2, 3, 2, 1)
    return Screen("\n".join(lines), keyboard.as_markup())


def ask_limit(title: str, period: str, unit: BudgetUnit, currency: str) -> Screen:
    """The card asks for a typed limit of the group's."""
    what = _("daily") if period == "daily" else _("monthly")
    if unit is BudgetUnit.MONEY:
        hint = _("an amount of money in {currency}, like 2.50").format(currency=escape(currency))
    else:
        hint = _("a number of tokens, like 200000")
    return Screen(
        _(
            "⚙️ {title} › 💰 Budget\n\nSend the group's {what} limit: {hint}. Send 0 for no "
            "limit, or /cancel."
        ).format(title=escape(title), what=what, hint=hint)
    )


def limit_invalid() -> str:
    return _("That is not a limit: send a positive number, 0 for no limit, or /cancel.")
