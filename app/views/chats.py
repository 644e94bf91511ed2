"""The /chats screen: the user's conversations with the persona, a page at a time."""

from __future__ import annotations

from html import escape

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from babel.dates import format_date

from app.domain.conversations import ConversationItem, ConversationPage
from app.keyboards.callbacks import ChatsAction, ChatsButton
from app.texts import number
from app.views.dialog import Screen

# A button's text is cut by Telegram's apps at about this much.
LABEL_CHARS = 40


def name_of(item: ConversationItem) -> str:
    """What a conversation is called: its title, else its first words."""
    if item.title:
        return item.title
    if item.first_words:
        words = " ".join(item.first_words.split())
        return words if len(words) <= LABEL_CHARS else words[: LABEL_CHARS - 1] + "…"
    return _("New conversation")


def chats_screen(page: ConversationPage, persona: str, locale: str) -> Screen:
    if not page.items:
        return Screen(
            _("You have no conversations with <b>{persona}</b> yet.").format(
                persona=escape(persona)
            )
        )
    lines = [
        _(
            "Your conversations with <b>{persona}</b> ({count}), the current one first. "
            "Press one to go back to it."
        ).format(persona=escape(persona), count=number(page.total))
    ]
    keyboard = InlineKeyboardBuilder()
    widths: list[int] = []
    for item in page.items:
        when = format_date(item.active_at, format="medium", locale=locale)
        mark = "✅ " if item.current else ""
        label = f"{mark}{name_of(item)} · {when} · {number(item.turns)}"
        keyboard.button(
            text=label,
            callback_data=ChatsButton(
                action=ChatsAction.OPEN, conversation_id=item.id, page=page.page
            ),
        )
        keyboard.button(
            text="✏️",
            callback_data=ChatsButton(
                action=ChatsAction.RENAME, conversation_id=item.id, page=page.page
            ),
        )
        keyboard.button(
            text="🗑",
            callback_data=ChatsButton(
                action=ChatsAction.DELETE, conversation_id=item.id, page=page.page
            ),
        )
        widths.append(3)
    if page.pages > 1:
        navigation = 0
        if page.page > 0:
            keyboard.button(
                text="◀", callback_data=ChatsButton(action=ChatsAction.PAGE, page=page.page - 1)
            )
            navigation += 1
        if page.page < page.pages - 1:
            keyboard.button(
                text="▶", callback_data=ChatsButton(action=ChatsAction.PAGE, page=page.page + 1)
            )
            navigation += 1
        lines.append(
            _("Page {page} of {pages}.").format(
                page=number(page.page + 1), pages=number(page.pages)
            )
        )
        widths.append(navigation)
    keyboard.button(text=_("Close"), callback_data=ChatsButton(action=ChatsAction.CLOSE))
    widths.append(1)
    keyboard.adjust(*widths)
    return Screen("\n\n".join(lines), keyboard.as_markup())


def delete_screen(item_name: str, conversation_id: int, page: int) -> Screen:
    keyboard = InlineKeyboardBuilder()
    keyboard.button(
        text=_("Delete for good"),
        callback_data=ChatsButton(
            action=ChatsAction.DELETE_YES, conversation_id=conversation_id, page=page
        ),
    )
    keyboard.button(
        text=_("Keep it"), callback_data=ChatsButton(action=ChatsAction.PAGE, page=page)
    )
    markup: InlineKeyboardMarkup = keyboard.as_markup()
    return Screen(
        _("Delete the conversation “{name}” with all its messages? This cannot be undone.").format(
            name=escape(item_name)
        ),
        markup,
    )


def rename_prompt(item_name: str) -> str:
    return _("Send the new title of “{name}” (/cancel keeps it as it is).").format(
        name=escape(item_name)
    )


def closed() -> Screen:
    return Screen(_("Closed. /chats opens the list again."))


def chosen(name: str) -> str:
    return _("Back in “{name}”: your next message goes on with it.").format(name=escape(name))


def title_empty() -> str:
    return _("A title needs at least one letter. Send the new title, or /cancel.")


def topics_instead() -> str:
    return _(
        "Each topic of this chat is a conversation of its own: open a topic to go on with "
        "it, /new starts a new one, and /forget inside a topic deletes its conversation."
    )
