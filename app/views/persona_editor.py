"""Screens of the persona editor (/edit_bot): overview pages, one entry, prompts, confirmations."""

from __future__ import annotations

from html import escape

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton
from aiogram.utils.keyboard import InlineKeyboardBuilder

from app.db.models import MemoryKind
from app.keyboards.callbacks import EditorAction, EditorButton, EntryAction, EntryButton
from app.services.personas import EntryView, PersonaView
from app.views.dialog import Screen

PAGE_SIZE = 8
PREVIEW = 60


def pages(view: PersonaView) -> int:
    return max(1, -(-len(view.entries) // PAGE_SIZE))


def overview(view: PersonaView, page: int) -> Screen:
    page = min(max(page, 0), pages(view) - 1)
    first = page * PAGE_SIZE
    shown = view.entries[first : first + PAGE_SIZE]
    lines = [
        f"✏️ <b>Persona “{escape(view.name)}”</b> · memory, page {page + 1}/{pages(view)}",
        f"Memory: {view.memory_tokens:,} tokens of {view.memory_limit:,} allowed · "
        f"{view.conversation_room:,} left for the conversation",
        f"Shared with everyone: {'yes' if view.shared or view.is_default else 'no'}",
        "",
    ]
    if not view.entries:
        lines.append("No memory yet. Add a fact or a question/answer pair.")
    for number, entry in enumerate(shown, start=first + 1):
        lines.append(f"{number}. {_entry_line(entry)}")
    keyboard = InlineKeyboardBuilder()
    numbers = [
        _button(
            str(number),
            EditorButton(action=EditorAction.OPEN, persona_id=view.id, page=page, entry_id=item.id),
        )
        for number, item in enumerate(shown, start=first + 1)
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
        action("➕ Fact", EditorAction.ADD_FACT), action("➕ Question/answer", EditorAction.ADD_QA)
    )
    keyboard.row(
        action("✏️ Name", EditorAction.NAME), action("📝 System prompt", EditorAction.PROMPT)
    )
    last = [action("✖ Close", EditorAction.CLOSE)]
    if not view.is_default:
        last.insert(0, action("🔒 Stop sharing" if view.shared else "🔓 Share", EditorAction.SHARE))
    keyboard.row(*last)
    return Screen("\n".join(lines), keyboard.as_markup())


def entry(view: PersonaView, item: EntryView, page: int) -> Screen:
    kind = "Fact" if item.kind is MemoryKind.FACT else "Question/answer pair"
    lines = [f"✏️ <b>Persona “{escape(view.name)}”</b> › {kind} ({item.tokens:,} tokens)", ""]
    if item.kind is MemoryKind.FACT:
        lines.append(escape(item.text))
    else:
        lines += [f"<b>Q:</b> {escape(item.text)}", f"<b>A:</b> {escape(item.answer or '')}"]
    keyboard = InlineKeyboardBuilder()

    def button(text: str, action: EntryAction) -> None:
        keyboard.button(
            text=text,
            callback_data=EntryButton(action=action, persona_id=view.id, entry_id=item.id),
        )

    if item.kind is MemoryKind.FACT:
        button("✏️ Edit text", EntryAction.EDIT)
    else:
        button("✏️ Edit question", EntryAction.EDIT)
        button("✏️ Edit answer", EntryAction.EDIT_ANSWER)
    button("⬆ Up", EntryAction.UP)
    button("⬇ Down", EntryAction.DOWN)
    button("🗑 Delete", EntryAction.DELETE)
    keyboard.button(
        text="◀ Back",
        callback_data=EditorButton(action=EditorAction.PAGE, persona_id=view.id, page=page),
    )
    keyboard.adjust(1 if item.kind is MemoryKind.FACT else 2, 2, 2)
    return Screen("\n".join(lines), keyboard.as_markup())


def confirm_delete(view: PersonaView, item: EntryView, page: int) -> Screen:
    keyboard = InlineKeyboardBuilder()
    keyboard.button(
        text="🗑 Yes, delete",
        callback_data=EntryButton(
            action=EntryAction.DELETE_YES, persona_id=view.id, entry_id=item.id
        ),
    )
    keyboard.button(
        text="No, keep it",
        callback_data=EditorButton(action=EditorAction.PAGE, persona_id=view.id, page=page),
    )
    text = (
        f"✏️ <b>Persona “{escape(view.name)}”</b> › delete?\n\n"
        f"{_entry_line(item, limit=400)}\n\nDelete this entry for good?"
    )
    return Screen(text, keyboard.as_markup())


def ask(view: PersonaView, what: str, page: int, current: str | None = None) -> Screen:
    """A step that waits for text: says what to send, offers Back."""
    lines = [f"✏️ <b>Persona “{escape(view.name)}”</b> › {escape(what)}", ""]
    if current:
        lines += ["Now:", f"<blockquote>{escape(current[:1500])}</blockquote>", ""]
    lines.append(f"Send the {escape(what.lower())} as a message, or press Back.")
    keyboard = InlineKeyboardBuilder()
    keyboard.button(
        text="◀ Back",
        callback_data=EditorButton(action=EditorAction.BACK, persona_id=view.id, page=page),
    )
    return Screen("\n".join(lines), keyboard.as_markup())


def confirm_entry(
    view: PersonaView, kind: MemoryKind, text: str, answer: str | None, cost: int, total: int
) -> Screen:
    lines = [f"✏️ <b>Persona “{escape(view.name)}”</b> › new entry", ""]
    if kind is MemoryKind.FACT:
        lines.append(f"<b>Fact:</b> {escape(text)}")
    else:
        lines += [f"<b>Q:</b> {escape(text)}", f"<b>A:</b> {escape(answer or '')}"]
    lines += [
        "",
        f"It costs {cost:,} tokens; the memory will take {total:,} of {view.memory_limit:,}.",
        "Save it?",
    ]
    keyboard = InlineKeyboardBuilder()
    keyboard.button(
        text="✅ Save", callback_data=EditorButton(action=EditorAction.SAVE, persona_id=view.id)
    )
    keyboard.button(
        text="✖ Discard",
        callback_data=EditorButton(action=EditorAction.DISCARD, persona_id=view.id),
    )
    return Screen("\n".join(lines), keyboard.as_markup())


def closed(view: PersonaView) -> Screen:
    return Screen(
        f"✏️ Persona “{escape(view.name)}”: editor closed. Memory: {view.memory_tokens:,} tokens."
    )


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
