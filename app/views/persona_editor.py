"""Screens of the persona editor (/edit_bot): overview pages, one entry, prompts, confirmations."""

from __future__ import annotations

import enum
from html import escape

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from app.domain.enums import MemoryKind
from app.domain.personas import EntryView, PersonaView
from app.keyboards.callbacks import EditorAction, EditorButton, EntryAction, EntryButton
from app.texts import number, token_count
from app.views.dialog import Screen

PAGE_SIZE = 8
PREVIEW = 60


class Asked(enum.Enum):
    """What a step of the editor waits for the user to type."""

    NEW_FACT = "new_fact"
    QUESTION = "question"
    ANSWER = "answer"
    NAME = "name"
    PROMPT = "prompt"
    TEXT = "text"


def _asked(what: Asked) -> tuple[str, str]:
    """The step's title and what to do."""
    match what:
        case Asked.NEW_FACT:
            return _("New fact"), _("Send the new fact as a message, or press Back.")
        case Asked.QUESTION:
            return _("Question"), _("Send the question as a message, or press Back.")
        case Asked.ANSWER:
            return _("Answer"), _("Send the answer as a message, or press Back.")
        case Asked.NAME:
            return _("Name"), _("Send the name as a message, or press Back.")
        case Asked.PROMPT:
            return _("System prompt"), _("Send the system prompt as a message, or press Back.")
        case Asked.TEXT:
            return _("Text"), _("Send the text as a message, or press Back.")


def _title(view: PersonaView) -> str:
    return _("✏️ <b>Persona “{name}”</b>").format(name=escape(view.name))


def pages(view: PersonaView) -> int:
    return max(1, -(-len(view.entries) // PAGE_SIZE))


def overview(view: PersonaView, page: int) -> Screen:
    page = min(max(page, 0), pages(view) - 1)
    first = page * PAGE_SIZE
    shown = view.entries[first : first + PAGE_SIZE]
    lines = [
        _("{title} · memory, page {page}/{pages}").format(
            title=_title(view), page=page + 1, pages=pages(view)
        ),
        _("Memory: {tokens} of {limit} allowed · {room} left for the conversation").format(
            tokens=token_count(view.memory_tokens),
            limit=number(view.memory_limit),
            room=number(view.conversation_room),
        ),
        _("Shared with everyone: yes")
        if view.shared or view.is_default
        else _("Shared with everyone: no"),
        "",
    ]
    if not view.entries:
        lines.append(_("No memory yet. Add a fact or a question/answer pair."))
    for position, entry in enumerate(shown, start=first + 1):
        lines.append(f"{position}. {_entry_line(entry)}")
    keyboard = InlineKeyboardBuilder()
    numbers = [
        _button(
            str(position),
            EditorButton(action=EditorAction.OPEN, persona_id=view.id, page=page, entry_id=item.id),
        )
        for position, item in enumerate(shown, start=first + 1)
    ]
    for row in range(0, len(numbers), 4):
        keyboard.row(*numbers[row : row + 4])
    nav = []
    if page > 0:
        nav.append(
            _button("◀", EditorButton(action=EditorAction.PAGE, persona_id=view.id, page=page - 1))
        )
    if page < pages(view) - 1:
        nav.append(
            _button("▶", EditorButton(action=EditorAction.PAGE, persona_id=view.id, page=page + 1))
        )
    if nav:
        keyboard.row(*nav)

    def action(text: str, name: EditorAction) -> InlineKeyboardButton:
        return _button(text, EditorButton(action=name, persona_id=view.id, page=page))

    keyboard.row(
        action(_("➕ Fact"), EditorAction.ADD_FACT),
        action(_("➕ Question/answer"), EditorAction.ADD_QA),
    )
    keyboard.row(
        action(_("✏️ Name"), EditorAction.NAME), action(_("📝 System prompt"), EditorAction.PROMPT)
    )
    last = [action(_("✖ Close"), EditorAction.CLOSE)]
    if not view.is_default:
        share = _("🔒 Stop sharing") if view.shared else _("🔓 Share")
        last.insert(0, action(share, EditorAction.SHARE))
    keyboard.row(*last)
    return Screen("\n".join(lines), keyboard.as_markup())


def entry(view: PersonaView, item: EntryView, page: int) -> Screen:
    if item.kind is MemoryKind.FACT:
        head = _("{title} › Fact ({tokens})")
    else:
        head = _("{title} › Question/answer pair ({tokens})")
    lines = [head.format(title=_title(view), tokens=token_count(item.tokens)), ""]
    if item.kind is MemoryKind.FACT:
        lines.append(escape(item.text))
    else:
        lines += _pair(item.text, item.answer)
    keyboard = InlineKeyboardBuilder()

    def button(text: str, action: EntryAction) -> None:
        keyboard.button(
            text=text,
            callback_data=EntryButton(action=action, persona_id=view.id, entry_id=item.id),
        )

    if item.kind is MemoryKind.FACT:
        button(_("✏️ Edit text"), EntryAction.EDIT)
    else:
        button(_("✏️ Edit question"), EntryAction.EDIT)
        button(_("✏️ Edit answer"), EntryAction.EDIT_ANSWER)
    button(_("⬆ Up"), EntryAction.UP)
    button(_("⬇ Down"), EntryAction.DOWN)
    button(_("🗑 Delete"), EntryAction.DELETE)
    keyboard.button(
        text=_("◀ Back"),
        callback_data=EditorButton(action=EditorAction.PAGE, persona_id=view.id, page=page),
    )
    keyboard.adjust(1 if item.kind is MemoryKind.FACT else 2, 2, 2)
    return Screen("\n".join(lines), keyboard.as_markup())


def confirm_delete(view: PersonaView, item: EntryView, page: int) -> Screen:
    keyboard = InlineKeyboardBuilder()
    keyboard.button(
        text=_("🗑 Yes, delete"),
        callback_data=EntryButton(
            action=EntryAction.DELETE_YES, persona_id=view.id, entry_id=item.id
        ),
    )
    keyboard.button(
        text=_("No, keep it"),
        callback_data=EditorButton(action=EditorAction.PAGE, persona_id=view.id, page=page),
    )
    text = _("{title} › delete?\n\n{entry}\n\nDelete this entry for good?").format(
        title=_title(view), entry=_entry_line(item, limit=400)
    )
    return Screen(text, keyboard.as_markup())


def ask(view: PersonaView, what: Asked, page: int, current: str | None = None) -> Screen:
    """A step that waits for text: says what to send, offers Back."""
    title, instruction = _asked(what)
    lines = [f"{_title(view)} › {title}", ""]
    if current:
        lines += [_("Now:"), f"<blockquote>{escape(current[:1500])}</blockquote>", ""]
    lines.append(instruction)
    keyboard = InlineKeyboardBuilder()
    keyboard.button(
        text=_("◀ Back"),
        callback_data=EditorButton(action=EditorAction.BACK, persona_id=view.id, page=page),
    )
    return Screen("\n".join(lines), keyboard.as_markup())


def confirm_entry(
    view: PersonaView, kind: MemoryKind, text: str, answer: str | None, cost: int, total: int
) -> Screen:
    lines = [_("{title} › new entry").format(title=_title(view)), ""]
    if kind is MemoryKind.FACT:
        lines.append(_("<b>Fact:</b> {text}").format(text=escape(text)))
    else:
        lines += _pair(text, answer)
    lines += [
        "",
        _("It costs {cost}; the memory will take {total} of {limit}.").format(
            cost=token_count(cost), total=number(total), limit=number(view.memory_limit)
        ),
        _("Save it?"),
    ]
    keyboard = InlineKeyboardBuilder()
    keyboard.button(
        text=_("✅ Save"), callback_data=EditorButton(action=EditorAction.SAVE, persona_id=view.id)
    )
    keyboard.button(
        text=_("✖ Discard"),
        callback_data=EditorButton(action=EditorAction.DISCARD, persona_id=view.id),
    )
    return Screen("\n".join(lines), keyboard.as_markup())


def closed(view: PersonaView) -> Screen:
    return Screen(
        _("✏️ Persona “{name}”: editor closed. Memory: {tokens}.").format(
            name=escape(view.name), tokens=token_count(view.memory_tokens)
        )
    )


def _pair(question: str, answer: str | None) -> list[str]:
    return [
        _("<b>Q:</b> {question}").format(question=escape(question)),
        _("<b>A:</b> {answer}").format(answer=escape(answer or "")),
    ]


def _entry_line(item: EntryView, limit: int = PREVIEW) -> str:
    if item.kind is MemoryKind.FACT:
        return f"📌 {escape(_cut(item.text, limit))}"
    return (
        f"💬 {escape(_cut(item.text, limit // 2))} → {escape(_cut(item.answer or '', limit // 2))}"
    )


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())
