"""Reminders, a plugin of the bot's own (it uses only app/plugins/api.py): "remind me
tomorrow at 9 to call mom" becomes a reminder the model sets with a tool, kept in the
database and sent at that time in the user's time zone, also after a restart, and by one
replica when several run. A reminder may repeat ("every weekday at 8"): once sent, the
next one is kept. /reminders lists the user's reminders with buttons to delete."""

from __future__ import annotations

import uuid
from calendar import monthrange
from datetime import datetime, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import Bot, Router
from aiogram.filters import Command as CommandFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from aiogram.utils.keyboard import InlineKeyboardBuilder

from app.plugins.api import (
    Command,
    Job,
    Plugin,
    PluginContext,
    Tool,
    ToolContext,
    ToolError,
    UserContext,
)

NAME = "reminders"
MAX_TEXT = 500  # characters of a reminder
MAX_AHEAD = timedelta(days=5 * 366)
MAX_PER_USER = 100
SOONEST = timedelta(seconds=10)
SHOWN = 20  # reminders /reminders lists
# How a reminder may repeat: the next one at the same time of day in the zone it was set
# in (09:00 stays 09:00 across a change of daylight saving time).
REPEATS = ("daily", "weekdays", "weekly", "monthly", "yearly")


class ReminderButton(CallbackData, prefix="rm"):
    """Delete reminder `id` (checked to be the presser's when pressed)."""

    id: int


def _when(moment: datetime, zone: str) -> str:
    return f"{moment.astimezone(ZoneInfo(zone)):%a %d %b %Y, %H:%M} ({zone})"


def _due(context: ToolContext, arguments: dict[str, Any]) -> datetime:
    """When the reminder is due (aware), from `at` (the user's local time) or `in_minutes`."""
    now = context.clock()
    if (minutes := arguments.get("in_minutes")) is not None:
        if not isinstance(minutes, int | float) or minutes <= 0:
            raise ToolError("in_minutes must be a positive number of minutes.")
        return now + timedelta(minutes=float(minutes))
    at = arguments.get("at")
    if not isinstance(at, str) or not at.strip():
        raise ToolError("give `at` (local date and time, YYYY-MM-DD HH:MM) or `in_minutes`.")
    try:
        local = datetime.fromisoformat(at.strip().replace("T", " "))
    except ValueError:
        raise ToolError(f"{at!r} is not a date and time like 2026-12-02 09:00.") from None
    zone = ZoneInfo(context.timezone)
    # A time the model wrote with an offset stays as it is; a plain one is the user's.
    return local if local.tzinfo is not None else local.replace(tzinfo=zone)


def next_time(previous: datetime, repeat: str, zone: str, day: int) -> datetime:
    """The repetition after `previous` (aware): `day` is the day of the month it was set
    for, kept so that a reminder of the 31st comes on the 30th in April and on the 31st
    again in May (and one of 29 February on the 28th in other years)."""
    tz = ZoneInfo(zone)
    local = previous.astimezone(tz).replace(tzinfo=None)
    if repeat == "monthly":
        year, month = local.year + local.month // 12, local.month % 12 + 1
        later = local.replace(year=year, month=month, day=min(day, monthrange(year, month)[1]))
    elif repeat == "yearly":
        year = local.year + 1
        later = local.replace(year=year, day=min(day, monthrange(year, local.month)[1]))
    else:
        later = local + timedelta(days=7 if repeat == "weekly" else 1)
        while repeat == "weekdays" and later.weekday() >= 5:
            later += timedelta(days=1)
    return later.replace(tzinfo=tz)


def _repeat_name(repeat: str) -> str:
    names = {
        "daily": _("every day"),
        "weekdays": _("every weekday"),
        "weekly": _("every week"),
        "monthly": _("every month"),
        "yearly": _("every year"),
    }
    return names.get(repeat, repeat)


def plugin(context: PluginContext) -> Plugin:
    jobs = context.jobs
    if jobs is None:
        raise RuntimeError("the bot gives this plugin no scheduled jobs")
    router = Router(name=NAME)

    async def create(tool_context: ToolContext, arguments: dict[str, Any]) -> str:
        text = arguments.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ToolError("give the reminder's `text`.")
        text = " ".join(text.split())[:MAX_TEXT]
        due = _due(tool_context, arguments)
        now = tool_context.clock()
        if due < now + SOONEST:
            raise ToolError(
                f"that time has passed (now it is {_when(now, tool_context.timezone)}); "
                "ask the user for a time in the future."
            )
        if due > now + MAX_AHEAD:
            raise ToolError("reminders are kept for five years at most.")
        repeat = arguments.get("repeat")
        if repeat is not None and repeat not in REPEATS:
            raise ToolError(f"`repeat` is one of {', '.join(REPEATS)}, or left out.")
        if len(await jobs.of_user(tool_context.user_id)) >= MAX_PER_USER:
            raise ToolError(f"the user has {MAX_PER_USER} reminders already; /reminders.")
        payload: dict[str, Any] = {"text": text, "language": tool_context.language}
        if repeat is not None:
            # The series names the reminder across its repetitions (each is a job of its
            # own): a repetition already kept is not kept twice.
            local = due.astimezone(ZoneInfo(tool_context.timezone))
            payload |= {
                "repeat": repeat,
                "zone": tool_context.timezone,
                "day": local.day,
                "series": uuid.uuid4().hex,
            }
        job = await jobs.schedule(
            user_id=tool_context.user_id,
            chat_id=tool_context.chat_id,
            thread_id=tool_context.thread_id,
            due_at=due,
            payload=payload,
        )
        repeats = f", repeating {repeat}" if repeat else ""
        return (
            f"Reminder #{job.id} set for {_when(due, tool_context.timezone)}{repeats}: {text}. "
            "The user can see and delete reminders with /reminders."
        )

    async def listing(tool_context: ToolContext, arguments: dict[str, Any]) -> str:
        found = await jobs.of_user(tool_context.user_id)
        if not found:
            return "The user has no reminders."
        return "\n".join(
            f"#{job.id} {_when(job.due_at, tool_context.timezone)}"
            + (f", repeating {job.payload['repeat']}" if job.payload.get("repeat") else "")
            + f": {job.payload.get('text', '')}"
            for job in found[:SHOWN]
        )

    async def cancel(tool_context: ToolContext, arguments: dict[str, Any]) -> str:
        job_id = arguments.get("id")
        if not isinstance(job_id, int):
            raise ToolError("give the reminder's number as `id` (list_reminders shows them).")
        if not await jobs.cancel(tool_context.user_id, job_id):
            raise ToolError(f"the user has no reminder #{job_id}.")
        return f"Reminder #{job_id} deleted."

    async def due(job: Job) -> None:
        bot = context.bot
        if bot is None:
            raise RuntimeError("the bot is not running")
        language = str(job.payload.get("language") or "en")
        with context.i18n.context(), context.i18n.use_locale(language):
            text = _("⏰ Reminder: {text}").format(text=escape(str(job.payload.get("text", ""))))
        await bot.send_message(job.chat_id, text, message_thread_id=job.thread_id)
        if job.payload.get("repeat") in REPEATS:
            await again(job)

    async def again(job: Job) -> None:
        """Keep the reminder's next repetition: the first one still ahead (a bot that was
        down for days sends one, not one for each day missed), unless it is kept already
        (this job done twice: the process died before it was marked done)."""
        payload = job.payload
        repeat, zone, day = str(payload["repeat"]), str(payload["zone"]), int(payload["day"])
        now = context.clock()
        later = next_time(job.due_at, repeat, zone, day)
        while later <= now:
            later = next_time(later, repeat, zone, day)
        series = payload.get("series")
        for kept in await jobs.of_user(job.user_id):
            if kept.id != job.id and kept.payload.get("series") == series:
                return
        await jobs.schedule(
            user_id=job.user_id,
            chat_id=job.chat_id,
            thread_id=job.thread_id,
            due_at=later,
            payload=payload,
        )

    jobs.on_due(due)

    def screen(found: list[Job], zone: str) -> tuple[str, InlineKeyboardMarkup | None]:
        if not found:
            return _("⏰ You have no reminders. Ask me to remind you of something."), None
        lines = [_("⏰ <b>Your reminders</b>"), ""]
        keyboard = InlineKeyboardBuilder()
        for job in found[:SHOWN]:
            when = escape(_when(job.due_at, zone))
            if (repeat := job.payload.get("repeat")) in REPEATS:
                when += " · 🔁 " + _repeat_name(str(repeat))
            lines.append(f"#{job.id} · {when}\n{escape(str(job.payload.get('text', '')))}")
            keyboard.button(
                text=_("🗑 #{id}").format(id=job.id), callback_data=ReminderButton(id=job.id)
            )
        keyboard.adjust(4)
        if len(found) > SHOWN:
            lines.append(_("…and {count} more.").format(count=len(found) - SHOWN))
        return "\n".join(lines), keyboard.as_markup()

    @router.message(CommandFilter(NAME))
    async def show(message: Message, user: UserContext) -> None:
        text, markup = screen(await jobs.of_user(user.id), _zone(user, context))
        await message.answer(text, reply_markup=markup)

    @router.callback_query(ReminderButton.filter())
    async def delete(
        callback: CallbackQuery, callback_data: ReminderButton, user: UserContext, bot: Bot
    ) -> None:
        if not await jobs.cancel(user.id, callback_data.id):
            await callback.answer(_("That reminder is no longer there."), show_alert=True)
        else:
            await callback.answer(_("Deleted."))
        if callback.message is not None:
            text, markup = screen(await jobs.of_user(user.id), _zone(user, context))
            await bot.edit_message_text(
                text,
                chat_id=callback.message.chat.id,
                message_id=callback.message.message_id,
                reply_markup=markup,
            )

    at = {
        "type": "string",
        "description": "Local date and time in the user's time zone, YYYY-MM-DD HH:MM",
    }
    tools = [
        Tool(
            name="create_reminder",
            description=(
                "Remind the user of something at a time: a message is sent to them then. "
                "Give `at` (the user's local time; call current_datetime first to know "
                "today's date) or `in_minutes`; `repeat` for a reminder that comes again "
                "(at the same time of day), until the user deletes it."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "text": {"type": "string", "description": "What to remind of"},
                    "at": at,
                    "in_minutes": {"type": "number", "description": "Or: minutes from now"},
                    "repeat": {
                        "type": "string",
                        "enum": list(REPEATS),
                        "description": "How it repeats; leave out for once",
                    },
                },
                "required": ["text"],
                "additionalProperties": False,
            },
            run=create,
            doing=lambda arguments: _("Setting a reminder"),
        ),
        Tool(
            name="list_reminders",
            description="The user's reminders, soonest first, with their numbers.",
            parameters={"type": "object", "properties": {}, "additionalProperties": False},
            run=listing,
            doing=lambda arguments: _("Looking at your reminders"),
        ),
        Tool(
            name="cancel_reminder",
            description=(
                "Delete one of the user's reminders by its number (a repeating one with all "
                "its repetitions)."
            ),
            parameters={
                "type": "object",
                "properties": {"id": {"type": "integer"}},
                "required": ["id"],
                "additionalProperties": False,
            },
            run=cancel,
            doing=lambda arguments: _("Deleting a reminder"),
        ),
    ]
    return Plugin(
        name=NAME,
        routers=[router],
        commands=[Command(NAME, __("Your reminders: see and delete them"))],
        tools=tools,
    )


def _zone(user: UserContext, context: PluginContext) -> str:
    default = context.services.get("default_timezone", "UTC")
    return user.timezone or str(default)
