"""Every text has its Russian, keeps its placeholders and markup, and renders in both languages.

The catalog tests extract the texts from app/ the way `make locales` does (the same mapping
and keywords, read from babel.cfg and the Makefile), so a text added without its Russian,
or a Russian text the code no longer has, fails here and not in front of a user.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import shlex
import string
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiogram.fsm.state import StatesGroup
from aiogram.utils.i18n import I18n
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.pofile import read_po

from app import commands, fsm, texts
from app.domain.documents import Refusal
from app.domain.enums import MemoryKind, MemoryMode
from app.domain.memory import Breakdown, MemoryReport
from app.domain.personas import EntryView, PersonaView
from app.fsm.hints import dialog_name, expected_input
from app.i18n import create_i18n
from app.llm.chat import FailureKind
from app.services.personas import MemoryTooLarge, NameInvalid, NameTaken, PersonaError, TextInvalid
from app.views import persona_editor
from app.views.dialog import Screen
from app.views.memory import report_text

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
RUSSIAN = APP / "locales" / "ru" / "LC_MESSAGES" / "messages.po"


# --- the catalog ---------------------------------------------------------------------------


def make_keywords() -> list[str]:
    """The -k arguments of BABEL_KEYWORDS in the Makefile."""
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    line = re.search(r"^BABEL_KEYWORDS\s*:?=(.*)$", makefile, re.MULTILINE)
    assert line is not None, "the Makefile has no BABEL_KEYWORDS"
    words = shlex.split(line.group(1))
    return [words[i + 1] for i, word in enumerate(words) if word == "-k"]


def extract() -> Catalog:
    """The texts of app/, as `make locales` extracts them."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    catalog = Catalog(locale="ru")
    found = extract_from_dir(
        str(APP),
        method_map,
        options_map,
        keywords=parse_keywords(make_keywords()),
        comment_tags=("Translators:",),
        strip_comment_tags=True,
    )
    for filename, lineno, message, comments, context in found:
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


@pytest.fixture(scope="module")
def extracted() -> Catalog:
    return extract()


@pytest.fixture(scope="module")
def russian() -> Catalog:
    with RUSSIAN.open("rb") as source:
        return read_po(source, locale="ru")


def texts_of(catalog: Catalog) -> Iterator[Message]:
    return (message for message in catalog if message.id)


def key(message: Message) -> tuple[str, str | None]:
    return (message.id if isinstance(message.id, str) else message.id[0]), message.context


def english(message: Message) -> list[str]:
    return [message.id] if isinstance(message.id, str) else list(message.id)


def translations(message: Message) -> list[str]:
    return [message.string] if isinstance(message.string, str) else list(message.string)


def placeholders(text: str) -> set[tuple[str, str, str | None]]:
    """The `{name:spec!conversion}` fields a .format() fills."""
    return {
        (name, spec or "", conversion)
        for _literal, name, spec, conversion in string.Formatter().parse(text)
        if name is not None
    }


def tags(text: str) -> Counter[str]:
    return Counter(re.findall(r"</?[a-zA-Z][^<>]*>", text))


def test_the_code_has_texts_to_translate(extracted: Catalog) -> None:
    ids = {key(m)[0] for m in texts_of(extracted)}
    # One text of each kind the keywords cover: _(), ngettext(), lazy_gettext (__), N_().
    assert "Cancelled." in ids
    assert "{count} token" in ids
    assert "What I can do" in ids
    assert "the name is empty" in ids


def test_every_text_has_its_russian(extracted: Catalog, russian: Catalog) -> None:
    problems = []
    for message in texts_of(extracted):
        translated = russian.get(*key(message))
        if translated is None:
            problems.append(f"not in the catalog: {message.id!r}")
        elif translated.fuzzy:
            problems.append(f"fuzzy (check and remove the flag): {message.id!r}")
        elif not all(translations(translated)):
            problems.append(f"untranslated: {message.id!r}")
        elif len(translations(translated)) != (1 if isinstance(message.id, str) else 3):
            problems.append(f"needs 1 form, or Russian's 3 for a plural: {message.id!r}")
    assert not problems, "run `make locales` and translate:\n" + "\n".join(problems)


def test_russian_keeps_the_placeholders_and_the_markup(russian: Catalog) -> None:
    problems = []
    for message in texts_of(russian):
        sources = english(message)
        wanted_fields = set().union(*(placeholders(text) for text in sources))
        for text in translations(message):
            if not text:
                continue  # reported as untranslated
            try:
                fields = placeholders(text)
            except ValueError as exc:
                problems.append(f"{message.id!r}: broken braces in {text!r} ({exc})")
                continue
            if fields != wanted_fields:
                problems.append(f"{message.id!r}: placeholders {fields} ≠ {wanted_fields}")
            if tags(text) != tags(sources[-1]):
                problems.append(f"{message.id!r}: tags {tags(text)} ≠ {tags(sources[-1])}")
    assert not problems, "\n".join(problems)


def test_the_catalog_holds_no_text_the_code_no_longer_has(
    extracted: Catalog, russian: Catalog
) -> None:
    current = {key(m) for m in texts_of(extracted)}
    stale = [m.id for m in texts_of(russian) if key(m) not in current]
    stale += [m.id for m in russian.obsolete.values()]
    assert not stale, "run `make locales` to drop:\n" + "\n".join(map(repr, stale))


def test_the_catalog_loads_with_russian_plural_forms() -> None:
    i18n = create_i18n()
    assert set(i18n.available_locales) == {"ru"}
    with i18n.context(), i18n.use_locale("ru"):
        assert [texts.token_count(n) for n in (1, 3, 5, 21, 112)] == [
            "1 токен",
            "3 токена",
            "5 токенов",
            "21 токен",
            "112 токенов",
        ]


# --- rendering ------------------------------------------------------------------------------

I18N = create_i18n()
LOCALES = ("en", "ru")

VIEW = PersonaView(
    id=1,
    name="Captain",
    system_prompt="You are a pirate.",
    owner_id=7,
    is_default=False,
    shared=False,
    entries=[
        EntryView(1, MemoryKind.FACT, "Sails the seas.", None, 6),
        EntryView(2, MemoryKind.QA, "Who are you?", "A pirate.", 12),
    ],
    memory_tokens=1_234,
    memory_limit=8_000,
    conversation_room=14_763,
)
BREAKDOWN = Breakdown(
    prompt_limit=16_000,
    answer_reserve=500,
    conversation_budget=12_000,
    persona=1_234,
    new_message=10,
    summary=300,
    recalled=40,
    recent=2_000,
    recalled_turns=2,
    recent_turns=25,
)

# Sample arguments of the public texts, by parameter name.
SAMPLES: dict[str, Any] = {
    "seconds": 754,
    "first_name": "Ann",
    "user_id": 42,
    "has_access": True,
    "persona": "Captain",
    "commands": [("help", "What I can do")],
    "length": 50_000,
    "limit": 16_000,
    "tokens": 2_345,
    "kind": FailureKind.TIMEOUT,
    "dialog": "the persona editor (/edit_bot)",
    "expected": "send the new fact as a text message",
    "problem": "the text is empty",
    "name": "Captain",
    "server": "files",
    "memory": [("fact", "Sails the seas.", None), ("qa", "Who are you?", "A pirate.")],
    "question": "Who are you?",
    "current": "chat",
    "entries": 3,
    "kilobytes": 256,
    "mode": "task",
    "turns": 25,
    "count": 3,
    "stored_turns": 25,
    "parts": [("persona memory", 1_234)],
    "answer_reserve": 500,
    "tools": 4_700,
    "summary": "They talked about the sea.",
    "model": "gpt-4o-mini",
    "pages": 12,
    "part_count": 40,
    "size": 20,
    "max_mb": 20,
    "max_pages": 500,
    "reason": Refusal.BROKEN,
}
# Texts the same in both languages by design.
NOT_WORDS = {"number"}


def public_texts() -> list[Callable[..., str]]:
    return [
        function
        for name, function in inspect.getmembers(texts, inspect.isfunction)
        if function.__module__ == texts.__name__
        and not name.startswith("_")
        and name not in NOT_WORDS
    ]


def call(function: Callable[..., str]) -> str:
    parameters = inspect.signature(function).parameters
    missing = [name for name in parameters if name not in SAMPLES]
    assert not missing, f"add sample values of {missing} for texts.{function.__name__}"
    return function(**{name: SAMPLES[name] for name in parameters})


def in_both(render: Callable[[], Any]) -> dict[str, Any]:
    rendered = {}
    for locale in LOCALES:
        with I18N.context(), I18N.use_locale(locale):
            rendered[locale] = render()
    return rendered


def screen_words(screen: Screen) -> list[str]:
    rows = screen.markup.inline_keyboard if screen.markup else []
    return [screen.text, *(button.text for row in rows for button in row)]


def assert_translated(english: str, russian: str) -> None:
    assert english != russian
    for text in (english, russian):
        assert "{" not in text and "}" not in text, f"a placeholder is left: {text!r}"


@pytest.mark.parametrize("function", public_texts(), ids=lambda f: f.__name__)
def test_every_text_renders_in_english_and_russian(function: Callable[..., str]) -> None:
    rendered = in_both(lambda: call(function))
    assert_translated(rendered["en"], rendered["ru"])


@pytest.mark.parametrize("kind", list(FailureKind))
def test_every_model_failure_is_explained_in_both_languages(kind: FailureKind) -> None:
    rendered = in_both(lambda: texts.model_failed(kind))
    assert_translated(rendered["en"], rendered["ru"])


def test_english_is_the_source_text() -> None:
    with I18N.context(), I18N.use_locale("en"):
        assert texts.cancelled() == "Cancelled."
        assert texts.number(1_050) == "1,050"
        assert texts.imported("Captain", 1).endswith(
            "with 1 memory entry. /persona switches to it."
        )


def test_russian_groups_thousands_with_a_space_not_a_comma() -> None:
    with I18N.context(), I18N.use_locale("ru"):
        assert texts.number(1_050) == "1\xa0050"
        assert "50\xa0000 символов" in texts.too_many_characters(50_000, 16_000)


SCREENS: dict[str, Callable[[], Screen]] = {
    "overview": lambda: persona_editor.overview(VIEW, 0),
    "fact": lambda: persona_editor.entry(VIEW, VIEW.entries[0], 0),
    "pair": lambda: persona_editor.entry(VIEW, VIEW.entries[1], 0),
    "confirm_delete": lambda: persona_editor.confirm_delete(VIEW, VIEW.entries[0], 0),
    "confirm_fact": lambda: persona_editor.confirm_entry(
        VIEW, MemoryKind.FACT, "Sails.", None, 5, 1_239
    ),
    "confirm_pair": lambda: persona_editor.confirm_entry(
        VIEW, MemoryKind.QA, "Who?", "Me.", 9, 1_243
    ),
    "closed": lambda: persona_editor.closed(VIEW),
    **{
        f"ask_{asked.value}": lambda asked=asked: persona_editor.ask(VIEW, asked, 0, "Now.")
        for asked in persona_editor.Asked
    },
}


@pytest.mark.parametrize("name", SCREENS)
def test_every_persona_editor_screen_renders_in_both_languages(name: str) -> None:
    rendered = in_both(SCREENS[name])
    english, russian = screen_words(rendered["en"]), screen_words(rendered["ru"])
    assert_translated(english[0], russian[0])
    if english[1:]:
        assert english[1:] != russian[1:]  # the buttons too


@pytest.mark.parametrize("breakdown", [BREAKDOWN, None], ids=["fits", "too large"])
def test_the_memory_report_renders_in_both_languages(breakdown: Breakdown | None) -> None:
    report = MemoryReport("Captain", MemoryMode.CHAT, 1, 25, breakdown, "About the sea.")
    rendered = in_both(lambda: report_text(report))
    assert_translated(rendered["en"], rendered["ru"])


def dialog_states() -> list[str]:
    """Every state of every dialog in app/fsm/."""
    for module in pkgutil.iter_modules(fsm.__path__):
        importlib.import_module(f"{fsm.__name__}.{module.name}")
    groups = [g for g in StatesGroup.__subclasses__() if g.__module__.startswith(fsm.__name__)]
    return [state.state for group in groups for state in group.__states__ if state.state]


STATES = dialog_states()


@pytest.mark.parametrize("state", [*STATES, "Unknown:state"])
def test_every_dialog_state_is_explained_in_both_languages(state: str) -> None:
    rendered = in_both(lambda: texts.in_dialog(dialog_name(state), expected_input(state)))
    assert_translated(rendered["en"], rendered["ru"])


@pytest.mark.parametrize("command", commands.COMMANDS, ids=lambda c: c.name)
def test_every_command_is_described_in_both_languages(command: commands.CommandInfo) -> None:
    rendered = in_both(lambda: str(command.description))
    assert_translated(rendered["en"], rendered["ru"])


@pytest.mark.parametrize(
    "error",
    [
        NameInvalid("the name is empty"),
        TextInvalid(
            "the text has {count} characters; at most {limit} fit", count=2_500, limit=2_000
        ),
        NameTaken("a persona named “{name}” already exists", name="Captain"),
        MemoryTooLarge(9_000, 8_000),
    ],
    ids=lambda e: type(e).__name__,
)
def test_persona_errors_are_told_in_the_language_of_the_moment(error: PersonaError) -> None:
    rendered = in_both(lambda: str(error))
    assert_translated(rendered["en"], rendered["ru"])


def test_persona_errors_are_english_outside_an_update() -> None:
    assert I18n.get_current(no_error=True) is None
    assert str(MemoryTooLarge(9_000, 8_000)) == "memory would take 9,000 tokens; at most 8,000"
    assert str(PersonaError("no persona is named “{x}”")) == "no persona is named “{x}”"
