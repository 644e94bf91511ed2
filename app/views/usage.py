"""/usage as text, and the message that refuses a message over budget."""

from __future__ import annotations

from datetime import datetime
from html import escape

from aiogram.utils.i18n import get_i18n, ngettext
from aiogram.utils.i18n import gettext as _
from babel.numbers import format_decimal

from app.domain.enums import BudgetUnit
from app.domain.usage import LimitReached, Period, PeriodUsage, UsageReport, UsageTotals
from app.texts import number, token_count


def money(value: float, currency: str) -> str:
    """Cents for sums of a unit or more; small sums, as single requests cost, to up to 4
    decimals so that they do not show as 0.00. Written the user's language's way."""
    pattern = "#,##0.00" if value >= 1 else "#,##0.00##"
    amount = format_decimal(value, format=pattern, locale=get_i18n().current_locale)
    # "$1.50", but "1.50 EUR" and "1.50 ₽": only a few symbols go before the number.
    if currency in ("$", "€", "£", "¥"):
        return currency + amount
    return f"{amount} {escape(currency)}"


def amount(value: float, unit: BudgetUnit, currency: str) -> str:
    return money(value, currency) if unit is BudgetUnit.MONEY else token_count(int(value))


def wait(resets_at: datetime, now: datetime) -> str:
    """'in 5 h 12 min': how long until a reset."""
    minutes = max(int((resets_at - now).total_seconds() + 59) // 60, 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return _("in {days} d {hours} h").format(days=days, hours=hours)
    if hours:
        return _("in {hours} h {minutes} min").format(hours=hours, minutes=minutes)
    if minutes:
        return _("in {minutes} min").format(minutes=minutes)
    return _("in less than a minute")


def reset(resets_at: datetime, now: datetime) -> str:
    """'2030-05-16 00:00 UTC (in 2 h 30 min)'."""
    return _("{time} UTC ({wait})").format(
        time=resets_at.strftime("%Y-%m-%d %H:%M"), wait=wait(resets_at, now)
    )


def budget_refusal(over: LimitReached, currency: str, *, group: bool = False) -> str:
    # "900 of 1,000 tokens", "$4.50 of $5.00"
    money_unit = over.unit is BudgetUnit.MONEY
    spent = money(over.spent, currency) if money_unit else number(int(over.spent))
    limit = amount(over.limit, over.unit, currency)
    when = reset(over.resets_at, over.now)
    if group:
        if over.period is Period.DAY:
            text = _(
                "This group has reached its daily limit: {spent} of {limit} used today. It "
                "resets at {reset}. Your message was not sent to the model and not saved."
            )
        else:
            text = _(
                "This group has reached its monthly limit: {spent} of {limit} used this "
                "month. It resets at {reset}. Your message was not sent to the model and not "
                "saved."
            )
        return text.format(spent=spent, limit=limit, reset=when)
    if over.period is Period.DAY:
        text = _(
            "You have reached your daily limit: {spent} of {limit} used today. It resets at "
            "{reset}. Your message was not sent to the model and not saved."
        )
    else:
        text = _(
            "You have reached your monthly limit: {spent} of {limit} used this month. It "
            "resets at {reset}. Your message was not sent to the model and not saved."
        )
    return text.format(spent=spent, limit=limit, reset=when)


def _requests(count: int) -> str:
    return ngettext("{count} request", "{count} requests", count).format(count=number(count))


def _totals_line(totals: UsageTotals, show_cost: bool, currency: str) -> str:
    parts = [
        _("{tokens_in} in, {tokens_out} out").format(
            tokens_in=number(totals.prompt_tokens), tokens_out=number(totals.completion_tokens)
        )
    ]
    if show_cost:
        parts.append(money(totals.cost, currency))
    parts.append(_requests(totals.requests))
    return ", ".join(parts)


def _budget_line(usage: PeriodUsage, report: UsageReport) -> str | None:
    if report.exempt:
        return None
    limits = report.limits
    if limits is None or usage.limit is None:
        if usage.period is Period.DAY:
            return _("Daily limit: none.")
        return _("Monthly limit: none.")
    unit, currency = limits.unit, report.currency
    values = {
        "limit": amount(usage.limit, unit, currency),
        "left": amount(usage.remaining(unit) or 0, unit, currency),
        "reset": reset(usage.resets_at, report.now),
    }
    if usage.period is Period.DAY:
        return _("Daily limit: {limit}; {left} left; resets {reset}.").format(**values)
    return _("Monthly limit: {limit}; {left} left; resets {reset}.").format(**values)


def _period(title: str, usage: PeriodUsage, report: UsageReport) -> list[str]:
    totals = usage.totals
    lines = [f"<b>{title}</b>"]
    lines.append(
        _("Tokens: {tokens_in} in, {tokens_out} out").format(
            tokens_in=number(totals.prompt_tokens), tokens_out=number(totals.completion_tokens)
        )
    )
    if report.show_cost:
        lines.append(_("Cost: {cost}").format(cost=money(totals.cost, report.currency)))
    lines.append(_("Requests: {count}").format(count=number(totals.requests)))
    if len(usage.by_model) > 1:
        for model, model_totals in usage.by_model:
            line = _totals_line(model_totals, report.show_cost, report.currency)
            lines.append(f"• <code>{escape(model)}</code>: {line}")
    budget = _budget_line(usage, report)
    if budget is not None:
        lines.append(budget)
    return lines


def usage_text(report: UsageReport) -> str:
    lines = [_("<b>Your usage</b> (days and months in UTC)"), ""]
    lines += _period(_("Today"), report.today, report)
    lines.append("")
    lines += _period(_("This month"), report.month, report)
    if report.exempt:
        lines += ["", _("You are an admin: no limits apply to you.")]
    return "\n".join(lines)
