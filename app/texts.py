"""Everything the bot says to users, in one place so it can be reviewed and translated.

Every text is a function, called while an update is handled: `_()` then answers in the
user's language (app/i18n.py). English is the source text; the Russian is in
app/locales/ru/LC_MESSAGES/messages.po.
"""

from __future__ import annotations

from html import escape

from aiogram.utils.i18n import get_i18n, ngettext
from aiogram.utils.i18n import gettext as _
from babel.numbers import format_decimal

from app.domain.documents import Refusal
from app.llm.chat import FailureKind

# Rough characters per token for English-like text, only to tell users a limit in their terms.
CHARS_PER_TOKEN = 4


def number(value: int) -> str:
    """A count the way the user's language writes it: 12,345 in English, 12 345 in Russian
    (where a comma would read as a decimal point)."""
    return format_decimal(value, locale=get_i18n().current_locale)


def token_count(count: int) -> str:
    return ngettext("{count} token", "{count} tokens", count).format(count=number(count))


def character_count(count: int) -> str:
    return ngettext("{count} character", "{count} characters", count).format(count=number(count))


def greeting(first_name: str, user_id: int) -> list[str]:
    """The first lines of every /start answer, with or without access."""
    # Translators: the greeting's name when the user has none (“Hello, there!”).
    name = escape(first_name) or _("there")
    return [
        _("Hello, {name}! I am an AI assistant.").format(name=name),
        _("Your Telegram id: <code>{user_id}</code>").format(user_id=user_id),
    ]


def start(first_name: str, user_id: int, persona: str) -> str:
    """/start for a user with access (app/views/access.py greets the others)."""
    lines = greeting(first_name, user_id)
    lines.append(
        _("You have access. You are talking to <b>{persona}</b>.").format(persona=escape(persona))
    )
    lines.append(_("Just write me a message. /help lists the commands."))
    return "\n".join(lines)


def help_text(commands: list[tuple[str, str]]) -> str:
    lines = [_("<b>Commands</b>")]
    lines += [f"/{name} — {escape(description)}" for name, description in commands]
    return "\n".join(lines)


def help_chat() -> str:
    return _("Anything else you write goes to the assistant.")


def unknown_command() -> str:
    return _("I don't know that command. /help lists the ones I do.")


def nothing_to_cancel() -> str:
    return _("There is nothing to cancel.")


def cancelled() -> str:
    return _("Cancelled.")


def new_topic_name() -> str:
    return _("New conversation")


def new_topic(persona: str) -> str:
    return _(
        "A new conversation with <b>{persona}</b>, in this topic. Write here; the other "
        "topics keep their own."
    ).format(persona=escape(persona))


def new_conversation(persona: str) -> str:
    return _(
        "Started a new conversation with <b>{persona}</b>. Earlier messages are kept but no "
        "longer sent to the model."
    ).format(persona=escape(persona))


def empty_message() -> str:
    return _("Your message is empty, so there is nothing to answer. Write me some text.")


def unsupported_content() -> str:
    return _(
        "I read text and documents, listen to voice messages and look at photos: stickers, "
        "videos and this kind of message are not supported. Please write, say or show your "
        "message."
    )


def _duration(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}:{rest:02d}"


def voice_too_long(seconds: int, limit: int) -> str:
    return _(
        "This recording is {length} long; I listen to at most {limit}. Please send a shorter "
        "one, or split it."
    ).format(length=_duration(seconds), limit=_duration(limit))


def file_too_big(limit: int | None) -> str:
    if limit is None:
        return _("This file is larger than the Telegram server lets bots download.")
    return _(
        "This file is larger than the {size} MB Telegram lets bots download. Please send a "
        "smaller one."
    ).format(size=number(limit // (1024 * 1024)))


def model_cannot_see(model: str) -> str:
    return _(
        "The model {model} cannot see images. Choose another one in /settings, or describe "
        "the picture in words."
    ).format(model=model)


def image_unreadable() -> str:
    return _(
        "I could not read this image: it is damaged, too large, or in a format I do not know. "
        "Please send it as a photo (JPEG or PNG)."
    )


def album_parts_skipped(count: int) -> str:
    return ngettext(
        "I answer what I can read of these together; one part (a video, or a file of "
        "another kind) I leave out. Send it on its own if it is a document.",
        "I answer what I can read of these together; {count} parts (videos, or files of "
        "another kind) I leave out. Send them on their own if they are documents.",
        count,
    ).format(count=number(count))


def page_count(count: int) -> str:
    return ngettext("{count} page", "{count} pages", count).format(count=number(count))


def document_split(name: str, pages: int | None, tokens: int, part_count: int) -> str:
    size = f"{page_count(pages)}, " if pages else ""
    return _(
        "📄 {name}: {size}about {tokens}, too long to read at once. I keep it with our "
        "conversation in {parts} parts and use the ones that match each of your questions."
    ).format(name=escape(name), size=size, tokens=token_count(tokens), parts=number(part_count))


def document_scanned() -> str:
    return _(
        "This PDF is a scan with no text in it, and I do not read scans. Please send the "
        "pages as photos, or a PDF with text."
    )


def document_scan_unseen(model: str) -> str:
    return _(
        "This PDF is a scan with no text in it, and the model {model} cannot see images, so "
        "I cannot read it. Choose another model in /settings, or send a PDF with text."
    ).format(model=model)


def document_refused(reason: Refusal, max_mb: int, max_pages: int) -> str:
    if reason is Refusal.ARCHIVE:
        return _("I do not open archives. Please unpack it and send me the documents in it.")
    if reason is Refusal.EXECUTABLE:
        return _("This is a program, not a document, and I do not open programs.")
    if reason is Refusal.ENCRYPTED:
        return _(
            "This PDF is protected by a password, so I cannot read it. Please send a copy "
            "without one."
        )
    if reason is Refusal.BROKEN:
        return _("This file is damaged and I could not read it. Please check it and send it again.")
    if reason is Refusal.EMPTY:
        return _("There is no text in this document, so there is nothing for me to read.")
    if reason is Refusal.TOO_LARGE:
        return _(
            "This document is too large for me: I read files of up to {size} MB and {pages}."
        ).format(size=number(max_mb), pages=page_count(max_pages))
    return _(
        "I cannot read this kind of file. I read PDF, Word (.docx), plain text, Markdown, "
        "code, CSV, JSON, XML and the like, and look at images."
    )


def download_failed() -> str:
    return _("I could not fetch this file from Telegram. Please send it again.")


def transcription_failed(kind: FailureKind) -> str:
    return _("I could not transcribe this recording. {problem} Nothing was saved.").format(
        problem=_failure(kind)
    )


def speech_failed() -> str:
    return _("I could not say this answer aloud this time; the text above is the whole answer.")


def spoken_first_part() -> str:
    return _("🔊 The first part of the answer; the whole of it is above.")


def nothing_heard() -> str:
    return _("I heard no words in this recording. Nothing was saved.")


def nothing_to_retry() -> str:
    return _("There is no message of yours to answer again yet.")


def edit_of_older_message() -> str:
    return _(
        "I see you edited an earlier message. I only answer again when you edit your latest "
        "message; the earlier one stays in our conversation as it was."
    )


def empty_answer() -> str:
    return _("The model returned an empty answer. Please try again or rephrase.")


def too_many_characters(length: int, limit: int) -> str:
    return _(
        "Your message is too long: {length}, and I accept at most {limit}. "
        "Please shorten it or send it in parts."
    ).format(length=character_count(length), limit=number(limit))


def message_too_long(tokens: int, limit: int) -> str:
    return _(
        "Your message is too long for the model: {tokens}, and at most {limit} "
        "(about {characters}) fit beside this persona's memory. Please shorten it."
    ).format(
        tokens=token_count(tokens),
        limit=token_count(limit),
        characters=character_count(limit * CHARS_PER_TOKEN),
    )


def persona_too_large(persona: str, tokens: int, limit: int) -> str:
    return _(
        "The memory of persona <b>{persona}</b> takes {tokens} and leaves no room for a "
        "conversation (the limit is {limit}). Its owner must shorten it, or choose a model "
        "with a larger context window."
    ).format(persona=escape(persona), tokens=token_count(tokens), limit=number(limit))


def _failure(kind: FailureKind) -> str:
    match kind:
        case FailureKind.AUTH:
            return _("The AI service rejected the bot's credentials; the owner has to fix it.")
        case FailureKind.RATE_LIMIT:
            return _("The AI service is overloaded right now. Please try again shortly.")
        case FailureKind.UNAVAILABLE:
            return _("The AI service had an internal error. Please try again shortly.")
        case FailureKind.TIMEOUT:
            return _("The AI service did not answer in time. Please try again.")
        case FailureKind.CONNECTION:
            return _("I could not reach the AI service. Please try again shortly.")
        case FailureKind.REJECTED:
            return _("The AI service refused this request. Please rephrase and try again.")
        case FailureKind.INTERRUPTED:
            return _("The AI service broke off its answer. Please try again.")


def model_failed(kind: FailureKind) -> str:
    return _("{problem} Your message is saved in the conversation.").format(problem=_failure(kind))


def answer_interrupted(kind: FailureKind) -> str:
    return _("⚠️ The answer was cut off: {problem}").format(problem=_failure(kind))


def answer_lost() -> str:
    return _(
        "⚠️ My answer to this message was cut off: the server stopped while I was writing "
        "it. Your message is saved; send /retry to get the answer."
    )


def thinking() -> str:
    return _("💭 Thinking…")


def mcp_right(server: str) -> str:
    """What the right to an MCP server's tools is called on a user's card in /users."""
    return _("Tools of the MCP server “{server}”").format(server=server)


def tool_running(name: str) -> str:
    """The preview while a tool without its own description runs."""
    return _("Using {tool}…").format(tool=name)


def nothing_to_stop() -> str:
    return _("No answer is being written now.")


def answer_stopped() -> str:
    return _("⏹ Stopped.")


def answer_stopped_before_text() -> str:
    return _("⏹ Stopped before the answer began. Your message is kept; /retry answers it.")


def answer_hit_length_limit() -> str:
    return _("✂️ The answer reached its length limit.")


def continue_button() -> str:
    return _("Continue ▶️")


def answer_filtered() -> str:
    return _(
        "⚠️ The model's content filter stopped this answer. Your message is kept; try putting "
        "it another way."
    )


# --- personas -------------------------------------------------------------------------------


def saved() -> str:
    return _("Saved.")


def deleted() -> str:
    return _("Deleted.")


def shared() -> str:
    return _("Everyone with access can now choose this persona.")


def unshared() -> str:
    return _("Only you (and admins) can choose this persona now.")


def in_dialog(dialog: str, expected: str) -> str:
    # Translators: {dialog} is a dialog's name, e.g. “the persona editor (/edit_bot)”;
    # {expected} what it waits for, e.g. “send the new fact as a text message”.
    return _(
        "You are in {dialog}: {expected}. Your message was not sent to the assistant; "
        "/cancel leaves the dialog."
    ).format(dialog=dialog, expected=expected)


def stale_button() -> str:
    return _("This button no longer works: its menu was closed or replaced.")


def cannot_edit(persona: str) -> str:
    return _(
        "You can't edit the persona “{persona}”: only its owner and admins can. "
        "/new_persona creates your own."
    ).format(persona=escape(persona))


def try_again(problem: str) -> str:
    return _("That didn't work: {problem}. Please send it again, or /cancel.").format(
        problem=escape(problem)
    )


def not_saved(problem: str) -> str:
    """A pop-up (plain text, no HTML)."""
    return _("Not saved: {problem}.").format(problem=problem)


def new_persona_name() -> str:
    return _(
        "🎭 <b>New persona</b> › name\n\nSend a name for the persona (up to 40 characters: "
        "letters, digits, spaces)."
    )


def new_persona_prompt(name: str) -> str:
    return _(
        "🎭 <b>New persona “{name}”</b> › description\n\nDescribe who it is and how it talks: "
        "this becomes its system prompt. For example: <i>You are Captain Jack, a cheerful "
        "pirate who answers every question with sea stories.</i>"
    ).format(name=escape(name))


def new_persona_memory(name: str, memory: list[tuple[str, str, str | None]], tokens: int) -> str:
    entries = ngettext("{count} entry", "{count} entries", len(memory)).format(
        count=number(len(memory))
    )
    lines = [
        _("🎭 <b>New persona “{name}”</b> › first memory (optional)").format(name=escape(name)),
        "",
        _("Memory so far: {entries}, {tokens}.").format(
            entries=entries, tokens=token_count(tokens)
        ),
    ]
    for kind, text, answer in memory[-5:]:
        line = f"📌 {text}" if kind == "fact" else f"💬 {text} → {answer}"
        lines.append(escape(line[:120]))
    lines += [
        "",
        _("Add facts or question/answer pairs that give it character, or press Done."),
    ]
    return "\n".join(lines)


def new_persona_fact(name: str) -> str:
    return _("🎭 <b>New persona “{name}”</b> › fact\n\nSend the fact as a message.").format(
        name=escape(name)
    )


def new_persona_question(name: str) -> str:
    return _("🎭 <b>New persona “{name}”</b> › question\n\nSend the question.").format(
        name=escape(name)
    )


def new_persona_answer(name: str, question: str) -> str:
    return _(
        "🎭 <b>New persona “{name}”</b> › answer\n\nSend the persona's answer to:\n"
        "<i>{question}</i>"
    ).format(name=escape(name), question=escape(question))


def new_persona_created(name: str) -> str:
    return _("🎭 Persona “{name}” is created. Talk to it now?").format(name=escape(name))


def switched(name: str) -> str:
    return _(
        "Now you are talking to <b>{name}</b>. Each persona keeps its own conversation with you."
    ).format(name=escape(name))


def stayed(name: str) -> str:
    return _("Persona “{name}” is saved; /persona switches to it whenever you like.").format(
        name=escape(name)
    )


def choose_persona(current: str) -> str:
    return _("🎭 <b>Personas</b>\n\nYou are talking to <b>{current}</b>. Choose another:").format(
        current=escape(current)
    )


def persona_unavailable() -> str:
    return _("That persona is not available to you any more.")


def export_caption(name: str) -> str:
    return _("Persona “{name}”: send this file to /import_persona to recreate it.").format(
        name=escape(name)
    )


def import_ask() -> str:
    return _("📥 Send the persona's .json file (made by /export_persona), or /cancel.")


def imported(name: str, entries: int) -> str:
    return ngettext(
        "📥 Imported persona <b>{name}</b> with {entries} memory entry. /persona switches to it.",
        "📥 Imported persona <b>{name}</b> with {entries} memory entries. /persona switches to it.",
        entries,
    ).format(name=escape(name), entries=number(entries))


def import_failed(problem: str) -> str:
    return _("Could not import this file: {problem}. Send another file, or /cancel.").format(
        problem=escape(problem)
    )


def import_too_large(kilobytes: int) -> str:
    # Translators: the reason an import failed, shown after “Could not import this file:”.
    return _("it is larger than {size} KB").format(size=number(kilobytes))


# --- memory ---------------------------------------------------------------------------------


def mode_name(mode: str) -> str:
    """The memory mode's name ("chat" or "task") as buttons and reports show it."""
    if mode == "chat":
        # Translators: the memory mode that keeps more history (/mode).
        return _("Chat")
    if mode == "task":
        # Translators: the memory mode that keeps room for long answers (/mode).
        return _("Task")
    return mode


def mode_menu(current: str) -> str:
    return _(
        "🧠 <b>Memory mode</b>: {current}\n\n"
        "<b>Chat</b> keeps as much of our conversation as possible, with answers of moderate "
        "length.\n<b>Task</b> reserves room for a long answer (code, documents) and keeps less "
        "history."
    ).format(current=mode_name(current))


def mode_set(mode: str) -> str:
    return _("🧠 Memory mode: <b>{mode}</b>. It applies from your next message.").format(
        mode=mode_name(mode)
    )


def forget_ask(persona: str, turns: int) -> str:
    return ngettext(
        "🗑 Delete this conversation with <b>{persona}</b> for good? Its {turns} message and "
        "its summary are erased and cannot be brought back.",
        "🗑 Delete this conversation with <b>{persona}</b> for good? Its {turns} messages and "
        "its summary are erased and cannot be brought back.",
        turns,
    ).format(persona=escape(persona), turns=number(turns))


def forget_yes() -> str:
    return _("Delete for good")


def forget_no() -> str:
    return _("Keep it")


def forgotten(persona: str) -> str:
    return _("🗑 Deleted. We start afresh with <b>{persona}</b>.").format(persona=escape(persona))


def forget_kept() -> str:
    return _("Nothing was deleted.")


def nothing_to_forget() -> str:
    return _("There is nothing to forget yet: this conversation is empty.")


def memory_report(
    *,
    persona: str,
    mode: str,
    stored_turns: int,
    parts: list[tuple[str, int]] | None,
    limit: int,
    answer_reserve: int,
    summary: str | None,
    tools: int = 0,
) -> str:
    lines = [
        _("🧠 <b>Memory of {persona}</b> · mode {mode}").format(
            persona=escape(persona), mode=mode_name(mode)
        ),
        _("Stored messages in this conversation: {count}").format(count=number(stored_turns)),
        "",
    ]
    if parts is None:
        lines.append(_("The persona's memory alone is too large for the model's window."))
    else:
        used = sum(count for _name, count in parts)
        lines.append(
            ngettext(
                "Next request: {used} of {limit} token ({reserve} more kept for the answer)",
                "Next request: {used} of {limit} tokens ({reserve} more kept for the answer)",
                limit,
            ).format(used=number(used), limit=number(limit), reserve=number(answer_reserve))
        )
        lines += [f"• {escape(name)}: {number(count)}" for name, count in parts]
        if tools:
            lines.append(
                _("Kept for the tools (their descriptions, calls and results): {count}").format(
                    count=number(tools)
                )
            )
    lines.append("")
    if summary:
        lines += [_("<b>Summary of earlier messages</b>"), escape(summary)]
    else:
        lines.append(_("No summary yet: everything said so far still fits."))
    return "\n".join(lines)
