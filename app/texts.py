"""Everything the bot says to users, in one place so it can be reviewed and translated."""

from __future__ import annotations

from html import escape

from app.llm.chat import FailureKind

# Rough characters per token for English-like text, only to tell users a limit in their terms.
CHARS_PER_TOKEN = 4


def start(first_name: str, user_id: int, has_access: bool, persona: str | None) -> str:
    name = escape(first_name) or "there"
    lines = [f"Hello, {name}! I am an AI assistant.", f"Your Telegram id: <code>{user_id}</code>"]
    if has_access:
        lines.append(f"You have access. You are talking to <b>{escape(persona or '')}</b>.")
        lines.append("Just write me a message. /help lists the commands.")
    else:
        lines.append(
            "You don't have access yet. Send your id to the bot's owner and ask them to add you."
        )
    return "\n".join(lines)


NO_ACCESS = (
    "You don't have access to this bot yet. Your Telegram id is <code>{user_id}</code>: "
    "send it to the bot's owner and ask them to add you."
)


def help_text(commands: list[tuple[str, str]]) -> str:
    lines = ["<b>Commands</b>"]
    lines += [f"/{name} — {escape(description)}" for name, description in commands]
    return "\n".join(lines)


HELP_CHAT = "Anything else you write goes to the assistant."
UNKNOWN_COMMAND = "I don't know that command. /help lists the ones I do."
NOTHING_TO_CANCEL = "There is nothing to cancel."
CANCELLED = "Cancelled."
NEW_CONVERSATION = (
    "Started a new conversation with <b>{persona}</b>. Earlier messages are kept but no "
    "longer sent to the model."
)
EMPTY_MESSAGE = "Your message is empty, so there is nothing to answer. Write me some text."
UNSUPPORTED_CONTENT = (
    "I can only read text messages for now: stickers, photos, voice messages and files "
    "are not supported yet. Please write your message as text."
)
NOTHING_TO_RETRY = "There is no message of yours to answer again yet."
EDIT_OF_OLDER_MESSAGE = (
    "I see you edited an earlier message. I only answer again when you edit your latest "
    "message; the earlier one stays in our conversation as it was."
)
EMPTY_ANSWER = "The model returned an empty answer. Please try again or rephrase."


def too_many_characters(length: int, limit: int) -> str:
    return (
        f"Your message is too long: {length:,} characters, and I accept at most {limit:,}. "
        "Please shorten it or send it in parts."
    )


def message_too_long(tokens: int, limit: int) -> str:
    return (
        f"Your message is too long for the model: {tokens:,} tokens, and at most {limit:,} "
        f"tokens (about {limit * CHARS_PER_TOKEN:,} characters) fit beside this persona's "
        "memory. Please shorten it."
    )


def persona_too_large(persona: str, tokens: int, limit: int) -> str:
    return (
        f"The memory of persona <b>{escape(persona)}</b> takes {tokens:,} tokens and leaves no "
        f"room for a conversation (the limit is {limit:,}). Its owner must shorten it, or "
        "choose a model with a larger context window."
    )


_FAILURES: dict[FailureKind, str] = {
    FailureKind.AUTH: "The AI service rejected the bot's credentials; the owner has to fix it.",
    FailureKind.RATE_LIMIT: "The AI service is overloaded right now. Please try again shortly.",
    FailureKind.UNAVAILABLE: "The AI service had an internal error. Please try again shortly.",
    FailureKind.TIMEOUT: "The AI service did not answer in time. Please try again.",
    FailureKind.CONNECTION: "I could not reach the AI service. Please try again shortly.",
    FailureKind.REJECTED: "The AI service refused this request. Please rephrase and try again.",
    FailureKind.INTERRUPTED: "The AI service broke off its answer. Please try again.",
}


def model_failed(kind: FailureKind) -> str:
    return _FAILURES[kind] + " Your message is saved in the conversation."


def answer_interrupted(kind: FailureKind) -> str:
    return "⚠️ The answer was cut off: " + _FAILURES[kind]


# --- personas -------------------------------------------------------------------------------

SAVED = "Saved."
DELETED = "Deleted."
SHARED = "Everyone with access can now choose this persona."
UNSHARED = "Only you (and admins) can choose this persona now."
IN_DIALOG = (
    "You are in {dialog}: {expected}. Your message was not sent to the assistant; "
    "/cancel leaves the dialog."
)
STALE_BUTTON = "This button no longer works: its menu was closed or replaced."


def cannot_edit(persona: str) -> str:
    return (
        f"You can't edit the persona “{escape(persona)}”: only its owner and admins can. "
        "/new_persona creates your own."
    )


def try_again(problem: str) -> str:
    return f"That didn't work: {escape(problem)}. Please send it again, or /cancel."


def not_saved(problem: str) -> str:
    return f"Not saved: {problem}."


NEW_PERSONA_NAME = (
    "🎭 <b>New persona</b> › name\n\nSend a name for the persona (up to 40 characters: "
    "letters, digits, spaces)."
)
NEW_PERSONA_PROMPT = (
    "🎭 <b>New persona “{name}”</b> › description\n\nDescribe who it is and how it talks: "
    "this becomes its system prompt. For example: <i>You are Captain Jack, a cheerful pirate "
    "who answers every question with sea stories.</i>"
)


def new_persona_memory(name: str, memory: list[tuple[str, str, str | None]], tokens: int) -> str:
    lines = [
        f"🎭 <b>New persona “{escape(name)}”</b> › first memory (optional)",
        "",
        f"Memory so far: {len(memory)} entries, {tokens:,} tokens.",
    ]
    for kind, text, answer in memory[-5:]:
        line = f"📌 {text}" if kind == "fact" else f"💬 {text} → {answer}"
        lines.append(escape(line[:120]))
    lines += ["", "Add facts or question/answer pairs that give it character, or press Done."]
    return "\n".join(lines)


NEW_PERSONA_FACT = "🎭 <b>New persona “{name}”</b> › fact\n\nSend the fact as a message."
NEW_PERSONA_QUESTION = "🎭 <b>New persona “{name}”</b> › question\n\nSend the question."
NEW_PERSONA_ANSWER = (
    "🎭 <b>New persona “{name}”</b> › answer\n\nSend the persona's answer to:\n<i>{question}</i>"
)
NEW_PERSONA_CREATED = "🎭 Persona “{name}” is created. Talk to it now?"
SWITCHED = "Now you are talking to <b>{name}</b>. Each persona keeps its own conversation with you."
STAYED = "Persona “{name}” is saved; /persona switches to it whenever you like."
CHOOSE_PERSONA = "🎭 <b>Personas</b>\n\nYou are talking to <b>{current}</b>. Choose another:"
PERSONA_UNAVAILABLE = "That persona is not available to you any more."
EXPORT_CAPTION = "Persona “{name}”: send this file to /import_persona to recreate it."
IMPORT_ASK = "📥 Send the persona's .json file (made by /export_persona), or /cancel."
IMPORTED = (
    "📥 Imported persona <b>{name}</b> with {entries} memory entries. /persona switches to it."
)


def import_failed(problem: str) -> str:
    return f"Could not import this file: {escape(problem)}. Send another file, or /cancel."


# --- memory ---------------------------------------------------------------------------------

MODE_NAMES = {"chat": "Chat", "task": "Task"}
MODE_MENU = (
    "🧠 <b>Memory mode</b>: {current}\n\n"
    "<b>Chat</b> keeps as much of our conversation as possible, with answers of moderate "
    "length.\n<b>Task</b> reserves room for a long answer (code, documents) and keeps less "
    "history."
)
MODE_SET = "🧠 Memory mode: <b>{mode}</b>. It applies from your next message."
FORGET_ASK = (
    "🗑 Delete this conversation with <b>{persona}</b> for good? Its {turns:,} messages and "
    "its summary are erased and cannot be brought back."
)
FORGET_YES = "Delete for good"
FORGET_NO = "Keep it"
FORGOTTEN = "🗑 Deleted. We start afresh with <b>{persona}</b>."
FORGET_KEPT = "Nothing was deleted."
NOTHING_TO_FORGET = "There is nothing to forget yet: this conversation is empty."


def memory_report(
    *,
    persona: str,
    mode: str,
    stored_turns: int,
    parts: list[tuple[str, int]] | None,
    limit: int,
    answer_reserve: int,
    summary: str | None,
) -> str:
    lines = [
        f"🧠 <b>Memory of {escape(persona)}</b> · mode {MODE_NAMES.get(mode, mode)}",
        f"Stored messages in this conversation: {stored_turns:,}",
        "",
    ]
    if parts is None:
        lines.append("The persona's memory alone is too large for the model's window.")
    else:
        used = sum(tokens for _, tokens in parts)
        lines.append(f"Next request: {used:,} of {limit:,} tokens ({answer_reserve:,} more")
        lines[-1] += " kept for the answer)"
        lines += [f"• {name}: {tokens:,}" for name, tokens in parts]
    lines.append("")
    if summary:
        lines += ["<b>Summary of earlier messages</b>", escape(summary)]
    else:
        lines.append("No summary yet: everything said so far still fits.")
    return "\n".join(lines)
