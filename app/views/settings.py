"""The /settings screens: an overview of the user's choices and one screen per choice."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from app import texts
from app.domain.enums import AnswerLength, MemoryMode, ReasoningDisplay, VoiceReplies
from app.domain.refs import PersonaRef
from app.i18n import LANGUAGES
from app.keyboards.callbacks import SettingsButton, SettingsSection
from app.views.dialog import Screen

# Offered as buttons; any other value from 0 to 2 can be typed.
TEMPERATURE_PRESETS = ("0", "0.3", "0.7", "1", "1.3")
TELEGRAM_LANGUAGE = "tg"  # the language button that follows the user's Telegram app
DEFAULT = "default"  # the button that puts a setting back to the owner's default
TYPE_VALUE = "type"
# Offered as buttons; any other zone (or a city, or UTC+3) can be typed.
TIMEZONE_PRESETS = (
    "Europe/London",
    "Europe/Berlin",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Sao_Paulo",
)


@dataclass(frozen=True, slots=True)
class Current:
    """What the overview shows: the user's preferences and whether each is their own choice."""

    persona: str
    model: str
    temperature: float
    own_temperature: bool
    answer_length: AnswerLength
    reasoning: ReasoningDisplay
    voice_replies: VoiceReplies
    mode: MemoryMode
    recall_everywhere: bool
    language: str | None  # chosen; None: from Telegram
    locale: str  # the language in use
    profile: bool = False  # whether the assistant remembers things about the user
    timezone: str = "UTC"  # in use: the user's own, or DEFAULT_TIMEZONE
    own_timezone: bool = False


def length_name(length: AnswerLength) -> str:
    names = {
        AnswerLength.SHORT: _("Short"),
        AnswerLength.NORMAL: _("Normal"),
        AnswerLength.LONG: _("Long"),
    }
    return names[length]


def reasoning_name(display: ReasoningDisplay) -> str:
    names = {
        ReasoningDisplay.OFF: _("Off"),
        ReasoningDisplay.FOLDED: _("Folded"),
    }
    return names[display]


def voice_replies_name(replies: VoiceReplies) -> str:
    names = {
        VoiceReplies.OFF: _("Off"),
        VoiceReplies.TO_VOICE: _("When I send voice"),
        VoiceReplies.ALWAYS: _("Always"),
    }
    return names[replies]


def recall_name(everywhere: bool) -> str:
    return _("All conversations with the persona") if everywhere else _("This conversation")


def _button(section: SettingsSection, value: str = "") -> str:
    return SettingsButton(section=section, value=value).pack()


def overview(current: Current, note: str | None = None) -> Screen:
    temperature = f"{current.temperature:g}"
    if not current.own_temperature:
        temperature = _("{value} (default)").format(value=temperature)
    language = LANGUAGES[current.locale]
    if current.language is None:
        language = _("{language} (from Telegram)").format(language=language)
    lines = [
        _("⚙️ <b>Settings</b>"),
        "",
        _("🎭 Persona: <b>{value}</b>").format(value=escape(current.persona)),
        _("🤖 Model: <b>{value}</b>").format(value=escape(current.model)),
        _("🌡 Temperature: <b>{value}</b>").format(value=temperature),
        _("📏 Answer length: <b>{value}</b>").format(value=length_name(current.answer_length)),
        _("💭 Reasoning: <b>{value}</b>").format(value=reasoning_name(current.reasoning)),
        _("🔊 Voice answers: <b>{value}</b>").format(
            value=voice_replies_name(current.voice_replies)
        ),
        _("🧠 Memory mode: <b>{value}</b>").format(value=texts.mode_name(current.mode.value)),
        _("🔎 Recall from: <b>{value}</b>").format(value=recall_name(current.recall_everywhere)),
        _("🌐 Language: <b>{value}</b>").format(value=language),
        _("🗂 Remember things about me: <b>{value}</b>").format(
            value=_("On") if current.profile else _("Off")
        ),
        _("🕒 Time zone: <b>{value}</b>").format(value=_timezone_name(current)),
    ]
    if note:
        lines += ["", note]
    keyboard = InlineKeyboardBuilder()
    for label, section in (
        (_("🎭 Persona"), SettingsSection.PERSONA),
        (_("🤖 Model"), SettingsSection.MODEL),
        (_("🌡 Temperature"), SettingsSection.TEMPERATURE),
        (_("📏 Answer length"), SettingsSection.LENGTH),
        (_("💭 Reasoning"), SettingsSection.REASONING),
        (_("🔊 Voice answers"), SettingsSection.VOICE),
        (_("🧠 Memory mode"), SettingsSection.MODE),
        (_("🔎 Recall"), SettingsSection.RECALL),
        (_("🌐 Language"), SettingsSection.LANGUAGE),
        (_("🗂 Remember me"), SettingsSection.PROFILE),
        (_("🕒 Time zone"), SettingsSection.TIMEZONE),
        (_("✖️ Close"), SettingsSection.CLOSE),
    ):
        keyboard.button(text=label, callback_data=_button(section))
    keyboard.adjust(2)
    return Screen("\n".join(lines), keyboard.as_markup())


def _timezone_name(current: Current) -> str:
    name = escape(current.timezone)
    return name if current.own_timezone else _("{value} (default)").format(value=name)


def closed() -> Screen:
    return Screen(_("⚙️ Settings saved. /settings opens them again."))


def _choices(
    section: SettingsSection, options: list[tuple[str, str]], current: str, columns: int = 1
) -> InlineKeyboardMarkup:
    keyboard = InlineKeyboardBuilder()
    for label, value in options:
        mark = "✓ " if value == current else ""
        keyboard.button(text=mark + label, callback_data=_button(section, value))
    keyboard.adjust(columns)
    keyboard.row()
    keyboard.button(text=_("‹ Back"), callback_data=_button(SettingsSection.MENU))
    return keyboard.as_markup()


def _presets(
    section: SettingsSection,
    presets: tuple[str, ...],
    *,
    selected: str,
    columns: int,
    default: str,
    type_label: str,
) -> InlineKeyboardMarkup:
    """A setting's presets, then "Default (the owner's)" and "Type…", then Back: for the
    values a user may also type (a temperature, a time zone)."""
    keyboard = InlineKeyboardBuilder()
    for value in presets:
        mark = "✓ " if value == selected else ""
        keyboard.button(text=mark + value, callback_data=_button(section, value))
    keyboard.adjust(columns)
    mark = "✓ " if selected == DEFAULT else ""
    keyboard.row()
    keyboard.button(
        text=mark + _("Default ({value})").format(value=default),
        callback_data=_button(section, DEFAULT),
    )
    keyboard.button(text=type_label, callback_data=_button(section, TYPE_VALUE))
    keyboard.row()
    keyboard.button(text=_("‹ Back"), callback_data=_button(SettingsSection.MENU))
    return keyboard.as_markup()


def personas(choices: list[PersonaRef], current: int) -> Screen:
    options = [(ref.name, str(ref.id)) for ref in choices]
    text = _("⚙️ Settings › 🎭 <b>Persona</b>\n\nWhom do you want to talk to?")
    return Screen(text, _choices(SettingsSection.PERSONA, options, str(current), columns=2))


def models(choices: tuple[str, ...], current: str) -> Screen:
    options = [(name, str(index)) for index, name in enumerate(choices)]
    text = _("⚙️ Settings › 🤖 <b>Model</b>\n\nThe models the owner offers:")
    selected = str(choices.index(current)) if current in choices else ""
    return Screen(text, _choices(SettingsSection.MODEL, options, selected))


def temperatures(current: float, default: float, own: bool) -> Screen:
    text = _(
        "⚙️ Settings › 🌡 <b>Temperature</b>\n\nLower is more focused and predictable, "
        "higher more varied and creative. Choose one, or type any value from 0 to 2."
    )
    keyboard = _presets(
        SettingsSection.TEMPERATURE,
        TEMPERATURE_PRESETS,
        selected=f"{current:g}" if own else DEFAULT,
        columns=len(TEMPERATURE_PRESETS),
        default=f"{default:g}",
        type_label=_("✏️ Type a value"),
    )
    return Screen(text, keyboard)


def type_temperature() -> Screen:
    return Screen(
        _("⚙️ Settings › 🌡 <b>Temperature</b>\n\nSend a number from 0 to 2, like 0.7, or /cancel.")
    )


def temperature_invalid() -> str:
    return _("That is not a temperature: send a number from 0 to 2, like 0.7, or /cancel.")


def lengths(current: AnswerLength) -> Screen:
    text = _(
        "⚙️ Settings › 📏 <b>Answer length</b>\n\n<b>Short</b>: a few sentences. "
        "<b>Normal</b>: as the question needs. <b>Long</b>: in depth, with room for a long "
        "answer (less room for history)."
    )
    options = [(length_name(length), length.value) for length in AnswerLength]
    return Screen(text, _choices(SettingsSection.LENGTH, options, current.value, columns=3))


def reasonings(current: ReasoningDisplay) -> Screen:
    text = _(
        "⚙️ Settings › 💭 <b>Reasoning</b>\n\nSome models think before they answer. "
        "<b>Off</b>: you see only the answer. <b>Folded</b>: their reasoning comes above "
        "the answer in a folded quote; tap it to read it. It is never kept in the history."
    )
    options = [(reasoning_name(display), display.value) for display in ReasoningDisplay]
    return Screen(text, _choices(SettingsSection.REASONING, options, current.value, columns=2))


def recall_scopes(everywhere: bool) -> Screen:
    text = _(
        "🔎 <b>Recall</b>\n\nWhen older turns no longer fit, I look back for what your new "
        "message is about. In this conversation only (as /new promises a fresh start), or in "
        "all your conversations with this persona (never in groups)?"
    )
    options = [(recall_name(False), "0"), (recall_name(True), "1")]
    return Screen(
        text, _choices(SettingsSection.RECALL, options, "1" if everywhere else "0", columns=1)
    )


def voice_replies(current: VoiceReplies) -> Screen:
    text = _(
        "⚙️ Settings › 🔊 <b>Voice answers</b>\n\nAnswers can also come as a voice message "
        "after their text: <b>when I send voice</b> (to your voice messages) or "
        "<b>always</b>. Code and tables are not read aloud; a long answer speaks its first "
        "part."
    )
    options = [(voice_replies_name(replies), replies.value) for replies in VoiceReplies]
    return Screen(text, _choices(SettingsSection.VOICE, options, current.value, columns=1))


def modes(current: MemoryMode) -> Screen:
    text = _(
        "⚙️ Settings › 🧠 <b>Memory mode</b>\n\n<b>Chat</b> keeps as much of our conversation "
        "as possible. <b>Task</b> reserves room for a long answer (code, documents) and keeps "
        "less history."
    )
    options = [(texts.mode_name(mode.value), mode.value) for mode in MemoryMode]
    return Screen(text, _choices(SettingsSection.MODE, options, current.value, columns=2))


def languages(chosen: str | None) -> Screen:
    text = _("⚙️ Settings › 🌐 <b>Language</b>")
    options = [(name, code) for code, name in LANGUAGES.items()]
    options.append((_("As in Telegram"), TELEGRAM_LANGUAGE))
    selected = chosen or TELEGRAM_LANGUAGE
    return Screen(text, _choices(SettingsSection.LANGUAGE, options, selected, columns=2))


def timezones(current: Current, default: str) -> Screen:
    text = _(
        "⚙️ Settings › 🕒 <b>Time zone</b>\n\nNow: <b>{zone}</b>. The assistant tells the date "
        "and time in it. Choose one, or type your city or zone."
    ).format(zone=escape(current.timezone))
    keyboard = _presets(
        SettingsSection.TIMEZONE,
        TIMEZONE_PRESETS,
        selected=current.timezone if current.own_timezone else DEFAULT,
        columns=2,
        default=default,
        type_label=_("✏️ Type a city"),
    )
    return Screen(text, keyboard)


def type_timezone() -> Screen:
    return Screen(
        _(
            "⚙️ Settings › 🕒 <b>Time zone</b>\n\nSend your city (Berlin, New York), a zone "
            "(Europe/Berlin) or an offset (UTC+3), or /cancel."
        )
    )


def timezone_invalid() -> str:
    return _(
        "I don't know that time zone. Send a city like Berlin, a zone like Europe/Berlin or an "
        "offset like UTC+3, or /cancel."
    )


def unavailable() -> str:
    return _("This choice is no longer available.")
