"""Rendering model Markdown as Telegram text + entities, and splitting it into messages; a
reasoning folded above an answer."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from app.delivery.render import REASONING_LIMIT, Rendered, plain, render, utf16_len, with_reasoning
from app.delivery.split import MESSAGE_LIMIT, split_rendered, telegram_length
from tests.fakes import FakeTelegram
from tests.harness import TOKEN

CORPUS_DIR = Path(__file__).parents[1] / "data" / "answers"
CORPUS = sorted(CORPUS_DIR.glob("*.md"))
IDS = [path.stem for path in CORPUS]

_CONTINUOUS = frozenset({"code", "pre", "text_link"})
_SPLITTABLE = frozenset({"bold", "italic", "strikethrough", "underline"})
_QUOTES = frozenset({"blockquote", "expandable_blockquote"})
_KINDS = _CONTINUOUS | _SPLITTABLE | _QUOTES
# A link destination, allowing one level of balanced parentheses (Wikipedia style).
_LINK_DEST = re.compile(r"\]\(((?:[^()\s]|\([^()\s]*\))*)\)")
_TASK_BOX = re.compile(r"^(\s*(?:[-*+]|\d+[.)])\s+)\[[ xX]\]\s", re.MULTILINE)


def source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- validation


def assert_valid(rendered: Rendered, limit: int | None = MESSAGE_LIMIT) -> None:
    """What Telegram requires of text + entities, and what it would silently change.

    The fake Bot API server stores `entities` as given, so the rules live here: offsets in
    UTF-16 units inside the text and on character boundaries, no empty or whitespace-only
    entity, no entity Telegram would move (one starting at whitespace), text_link URLs
    Telegram accepts, and the nesting Telegram keeps: code/pre/text_link never overlap each
    other, blockquotes neither overlap each other nor cut through code/pre/text_link, and
    nothing is formatted inside a pre (Telegram drops such entities).
    """
    text = rendered.text
    assert text, "empty message"
    assert text == text.strip(" \n"), "Telegram trims the text, shifting every entity"
    units = text.encode("utf-16-le")  # raises on a lone surrogate
    total = len(units) // 2
    if limit is not None:
        assert total <= limit
    spans: list[tuple[str, int, int]] = []
    for entity in rendered.entities:
        kind, start, end = entity.type, entity.offset, entity.offset + entity.length
        assert kind in _KINDS, kind
        assert 0 <= start < end <= total, (kind, start, end, total)
        body = units[2 * start : 2 * end].decode("utf-16-le")  # raises when a pair is cut
        assert body.strip(), f"whitespace-only {kind}"
        if kind != "text_link":
            assert body[0] not in " \n", f"{kind} starts at whitespace: {body[:20]!r}"
        if kind == "text_link":
            assert entity.url is not None
            assert re.fullmatch(r"(?:https?|tg)://\S+", entity.url), entity.url
        else:
            assert entity.url is None
        if entity.language is not None:
            assert kind == "pre"
            assert entity.language
            assert not any(ch.isspace() for ch in entity.language)
        spans.append((kind, start, end))
    for index, (kind, start, end) in enumerate(spans):
        for other, o_start, o_end in spans[index + 1 :]:
            overlap = start < o_end and o_start < end
            if not overlap:
                continue
            pair = {kind, other}
            if kind in _CONTINUOUS and other in _CONTINUOUS:
                raise AssertionError(f"{kind} and {other} overlap")
            if pair <= _QUOTES:
                raise AssertionError("blockquotes overlap")
            if pair & _QUOTES and pair & _CONTINUOUS:
                inner = (o_start, o_end) if kind in _QUOTES else (start, end)
                outer = (start, end) if kind in _QUOTES else (o_start, o_end)
                assert outer[0] <= inner[0] and inner[1] <= outer[1], "cuts through a quote"
            if "pre" in pair and pair & _SPLITTABLE:
                raise AssertionError("formatting inside a pre block")


def styled(rendered: Rendered) -> list[tuple[str, frozenset[tuple[str, str | None, str | None]]]]:
    """Every visible character with the formatting it is shown with."""
    marks: list[set[tuple[str, str | None, str | None]]] = [
        set() for _ in range(utf16_len(rendered.text))
    ]
    for entity in rendered.entities:
        for unit in range(entity.offset, entity.offset + entity.length):
            marks[unit].add((entity.type, entity.url, entity.language))
    out = []
    unit = 0
    for char in rendered.text:
        if not char.isspace():
            out.append((char, frozenset(marks[unit])))
        unit += 2 if ord(char) > 0xFFFF else 1
    return out


def words(text: str) -> Counter[str]:
    """Words once the characters Markdown uses as markers are deleted, on either side: so
    "Some**intra**word" in the source is the "Someintraword" shown."""
    return Counter(re.findall(r"[^\W_]+", re.sub(r"[*_~`]", "", text)))


def entity_text(rendered: Rendered, kind: str) -> list[str]:
    units = rendered.text.encode("utf-16-le")
    return [
        units[2 * e.offset : 2 * (e.offset + e.length)].decode("utf-16-le")
        for e in rendered.entities
        if e.type == kind
    ]


def fenced_code(markdown: str) -> list[str]:
    """Code blocks as a plain CommonMark parser sees them."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    return [t.content.removesuffix("\n") for t in tokens if t.type in ("fence", "code_block")]


# --------------------------------------------------------------------------- the corpus


def test_corpus_covers_what_models_produce() -> None:
    texts = [source(path) for path in CORPUS]
    assert len(CORPUS) >= 25
    assert any(len(text) >= 20_000 and text.count("```") >= 8 for text in texts)
    assert any(utf16_len(code) > 4096 for text in texts for code in fenced_code(text))
    joined = "".join(texts)
    for needle in ("```python", "```javascript", "```bash", "```sql", "|---", "👨‍👩‍👧‍👦", "Ж"):
        assert needle in joined or needle.lower() in joined.lower(), needle


@pytest.mark.parametrize("path", CORPUS, ids=IDS)
def test_corpus_entities_are_valid(path: Path) -> None:
    assert_valid(render(source(path)), limit=None)


@pytest.mark.parametrize("path", CORPUS, ids=IDS)
def test_corpus_keeps_every_word(path: Path) -> None:
    markdown = source(path)
    # Link targets travel in entities (checked below); task boxes become ☑/☐.
    expected = words(_TASK_BOX.sub(r"\1", _LINK_DEST.sub("]", markdown)))
    rendered = render(markdown)
    languages = " ".join(e.language or "" for e in rendered.entities)
    missing = expected - words(rendered.text + " " + languages)
    assert not missing


@pytest.mark.parametrize("path", CORPUS, ids=IDS)
def test_corpus_code_blocks_are_byte_exact(path: Path) -> None:
    markdown = source(path)
    shown = entity_text(render(markdown), "pre")
    for code in fenced_code(markdown):
        assert code in shown


@pytest.mark.parametrize("path", CORPUS, ids=IDS)
def test_corpus_links_keep_their_url_exactly(path: Path) -> None:
    markdown = source(path)
    urls = {e.url for e in render(markdown).entities if e.type == "text_link"}
    for destination in _LINK_DEST.findall(markdown):
        if destination.startswith(("http://", "https://", "tg://")):
            assert destination in urls


@pytest.mark.parametrize("path", CORPUS, ids=IDS)
def test_corpus_parts_fit_are_valid_and_add_up(path: Path) -> None:
    rendered = render(source(path))
    parts = split_rendered(rendered)
    for part in parts:
        assert_valid(part)
    assert _same_modulo_cuts(rendered.text, [p.text for p in parts])
    assert [mark for part in parts for mark in styled(part)] == styled(rendered)


def _same_modulo_cuts(text: str, parts: list[str]) -> bool:
    """Parts are consecutive pieces of the text; only whitespace at the cuts is gone."""
    at = 0
    for part in parts:
        found = text.find(part, at)
        if found < 0 or text[at:found].strip():
            return False
        at = found + len(part)
    return not text[at:].strip()


def test_long_answer_is_split_without_breaking_code_that_fits() -> None:
    rendered = render(source(CORPUS_DIR / "28_long_tutorial_20k.md"))
    parts = split_rendered(rendered)
    assert len(parts) >= 5
    assert all(telegram_length(p.text) <= MESSAGE_LIMIT for p in parts)
    assert _same_modulo_cuts(rendered.text, [p.text for p in parts])
    shown = [code for part in parts for code in entity_text(part, "pre")]
    for code in entity_text(rendered, "pre"):
        assert code in shown  # whole, in one part


@pytest.mark.parametrize("limit", [700, 1500, 3000])
def test_code_blocks_that_fit_stay_whole_at_any_limit(limit: int) -> None:
    rendered = render(source(CORPUS_DIR / "28_long_tutorial_20k.md"))
    parts = split_rendered(rendered, limit)
    for part in parts:
        assert_valid(part, limit)
    shown = [code for part in parts for code in entity_text(part, "pre")]
    for code in entity_text(rendered, "pre"):
        if utf16_len(code) <= limit:
            assert code in shown


def test_oversized_code_block_becomes_several_pre_blocks_with_the_language() -> None:
    markdown = source(CORPUS_DIR / "29_oversized_code_block.md")
    [code] = fenced_code(markdown)
    parts = split_rendered(render(markdown))
    blocks = [e for part in parts for e in part.entities if e.type == "pre"]
    assert len(parts) >= 2
    assert len(blocks) >= 2
    assert all(block.language == "python" for block in blocks)
    pieces = [piece for part in parts for piece in entity_text(part, "pre")]
    assert " ".join(pieces).split() == code.split()
    lines = code.split("\n")
    for piece in pieces:
        # Whole lines only; the cut prefers a line Telegram will not strip indentation from.
        first, *rest = piece.split("\n")
        assert first in lines and all(line in lines for line in rest)
        assert piece in code


async def test_parts_reach_the_fake_bot_api_exactly_as_rendered(telegram: FakeTelegram) -> None:
    """Through aiogram's serialisation and the fake's length and trimming rules."""
    parts = [
        part
        for name in ("28_long_tutorial_20k.md", "29_oversized_code_block.md", "09_emoji_heavy.md")
        for part in split_rendered(render(source(CORPUS_DIR / name)))
    ]
    session = AiohttpSession(api=TelegramAPIServer.from_base(telegram.base_url))
    async with Bot(TOKEN, session=session) as bot:
        for part in parts:
            await bot.send_message(42, part.text, entities=part.entities, parse_mode=None)
    sent = telegram.sent_messages(42)
    assert [m.plain_text for m in sent] == [p.text for p in parts]
    assert [m.parsed_entities for m in sent] == [
        [e.model_dump(exclude_none=True) for e in p.entities] for p in parts
    ]


# --------------------------------------------------------------------------- targeted


def spans(rendered: Rendered) -> list[tuple[str, str]]:
    units = rendered.text.encode("utf-16-le")
    return [
        (e.type, units[2 * e.offset : 2 * (e.offset + e.length)].decode("utf-16-le"))
        for e in rendered.entities
    ]


@pytest.mark.parametrize(
    ("markdown", "text", "expected"),
    [
        ("**bold** and __bold__", "bold and bold", [("bold", "bold"), ("bold", "bold")]),
        ("*it* and _it_", "it and it", [("italic", "it"), ("italic", "it")]),
        ("~~gone~~", "gone", [("strikethrough", "gone")]),
        ("use `x < y && z`", "use x < y && z", [("code", "x < y && z")]),
        ("***both***", "both", [("bold", "both"), ("italic", "both")]),
        ("# Title\n\ntext", "Title\n\ntext", [("bold", "Title")]),
        ("> quoted\n> more", "quoted\nmore", [("blockquote", "quoted\nmore")]),
        ("a\n\n---\n\nb", "a\n\n────────\n\nb", []),
    ],
)
def test_markup_becomes_entities(markdown: str, text: str, expected: list[tuple[str, str]]) -> None:
    rendered = render(markdown)
    assert rendered.text == text
    assert spans(rendered) == expected


def test_fenced_code_becomes_pre_with_language() -> None:
    rendered = render("Run:\n\n```python\nif a < b and c & d:\n    print(*args, **kw)\n```")
    [entity] = rendered.entities
    assert (entity.type, entity.language) == ("pre", "python")
    assert entity_text(rendered, "pre") == ["if a < b and c & d:\n    print(*args, **kw)"]


def test_offsets_are_utf16_units() -> None:
    rendered = render("😀 👨‍👩‍👧‍👦 **жирный**")
    [entity] = rendered.entities
    assert entity.offset == 2 + 1 + 11 + 1
    assert entity.length == 6


@pytest.mark.parametrize(
    "markdown",
    [
        "2*3*4 and 2**10",
        "*unclosed and **also unclosed",
        "a lonely ` backtick and a stray ``` here",
        "snake_case_name and _private and my__double",
        "__init__.py and __name__ == '__main__'",
        "<b>not bold</b> & &amp; &lt;tag&gt; 5 < 6 > 4",
        "[brackets] and (parens) and [a](b",
        "files *.txt and **/*.py",
        "https://a.b/c_d and https://x.y/_e_/*f*",
        "~one tilde~",
    ],
)
def test_unbalanced_or_literal_markup_is_shown_as_typed(markdown: str) -> None:
    rendered = render(markdown)
    assert rendered.text == markdown
    assert rendered.entities == []


def test_link_keeps_url_with_underscores_and_parentheses() -> None:
    url = "https://en.wikipedia.org/wiki/Python_(programming_language)?q=a_b&x=1"
    rendered = render(f"See [the_article]({url}).")
    assert rendered.text == "See the_article."
    [entity] = rendered.entities
    assert (entity.type, entity.url) == ("text_link", url)


@pytest.mark.parametrize(
    ("markdown", "text"),
    [
        ("[click](javascript:alert(1))", "click"),
        ("[file](ftp://example.com/a_b.txt)", "file"),
        ("[write](mailto:team_a@example.com)", "write (team_a@example.com)"),
        ("[team_a@example.com](mailto:team_a@example.com)", "team_a@example.com"),
        ("[broken](https://)", "broken"),
    ],
)
def test_links_telegram_would_refuse_keep_only_their_text(markdown: str, text: str) -> None:
    rendered = render(markdown)
    assert rendered.text == text
    assert rendered.entities == []


def test_tg_links_are_kept() -> None:
    rendered = render("[chat](tg://resolve?domain=some_bot)")
    assert [e.url for e in rendered.entities] == ["tg://resolve?domain=some_bot"]


def test_nested_lists_are_indented_with_alternating_bullets() -> None:
    markdown = "- one\n  - two\n    - three\n- four\n\n1. first\n2. second\n   - inner"
    assert render(markdown).text == (
        "• one\n   ◦ two\n      • three\n• four\n\n1. first\n2. second\n   ◦ inner"
    )


def test_ordered_list_keeps_its_start_and_task_boxes() -> None:
    assert render("3. c\n4. d").text == "3. c\n4. d"
    assert render("- [x] done\n- [ ] todo").text == "☑ done\n☐ todo"


def test_nested_blockquote_is_one_quote() -> None:
    rendered = render("> outer\n> > inner\n> back")
    assert [kind for kind, _ in spans(rendered)] == ["blockquote"]


def test_small_table_is_an_aligned_monospace_block() -> None:
    rendered = render("| Name | RPS |\n|:--|--:|\n| Flask | 1200 |\n| Go | 9 |")
    assert rendered.text == "Name  |  RPS\n------+-----\nFlask | 1200\nGo    |    9"
    assert [e.type for e in rendered.entities] == ["pre"]


def test_wide_table_or_table_with_links_becomes_one_block_per_row() -> None:
    markdown = "| Tool | Docs |\n|---|---|\n| ruff | [site](https://docs.astral.sh/ruff/) |"
    rendered = render(markdown)
    assert rendered.text == "Tool: ruff\nDocs: site"
    assert spans(rendered) == [("bold", "ruff"), ("text_link", "site")]


def test_plain_is_the_text_without_entities() -> None:
    assert plain("**Hi** `x_y` [link](https://a.b)") == "Hi x_y link"
    assert plain("  \n ") == ""


def test_short_rendered_text_is_one_part_and_empty_is_none() -> None:
    rendered = render("**hello**")
    assert split_rendered(rendered) == [rendered]
    assert split_rendered(render("   ")) == []


def test_entity_crossing_a_cut_is_split_into_one_per_part() -> None:
    rendered = render("**" + " ".join(f"word{i}" for i in range(60)) + "**")
    parts = split_rendered(rendered, 100)
    assert len(parts) > 1
    for part in parts:
        assert_valid(part, 100)
        assert spans(part) == [("bold", part.text)]


def test_paragraphs_are_preferred_to_lines_and_words() -> None:
    paragraph = " ".join(["word"] * 30)  # 149 units
    rendered = render("\n\n".join([paragraph] * 4))
    parts = split_rendered(rendered, 320)
    assert [p.text for p in parts] == [paragraph + "\n\n" + paragraph] * 2


def test_hard_cut_never_tears_an_emoji_sequence() -> None:
    family = "👨‍👩‍👧‍👦"  # 11 UTF-16 units
    parts = split_rendered(render(family * 40), 100)
    assert all(part.text == family * (len(part.text) // len(family)) for part in parts)
    assert all(telegram_length(part.text) <= 100 for part in parts)


_FRAGMENTS = st.sampled_from(
    [
        "a",
        "word ",
        " ",
        "\n",
        "\n\n",
        "*",
        "**",
        "_",
        "__",
        "`",
        "```py\n",
        "~~",
        "[",
        "](https://x.y/a_b)",
        "(",
        ")",
        "# ",
        "> ",
        "- ",
        "1. ",
        "|",
        "|---|\n",
        "😀",
        "👨‍👩‍👧",
        "я",
        "<b>",
        "&amp;",
        "\\",
        "    ",
        "https://e.x/_a_*b*",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=80).map("".join))
def test_any_markdown_renders_and_splits_into_valid_messages(markdown: str) -> None:
    rendered = render(markdown)
    if not rendered.text:
        assert split_rendered(rendered, 40) == []
        return
    assert_valid(rendered, limit=None)
    parts = split_rendered(rendered, 40)
    for part in parts:
        assert_valid(part, 40)
    assert [mark for part in parts for mark in styled(part)] == styled(rendered)


# --------------------------------------------------------------------------- reasoning


def test_reasoning_is_one_expandable_quote_above_the_answer_with_offsets_moved() -> None:
    reasoning = "Пользователь 👋 здоровается; семья 👨‍👩‍👧 упомянута. Ответить тепло."
    answer = render("**Привет** 😀, `код` и [ссылка](https://a.b)")
    folded = with_reasoning(answer, reasoning)
    assert folded.text == reasoning + "\n\n" + answer.text
    assert folded.entities[0].type == "expandable_blockquote"
    assert folded.entities[0].offset == 0
    assert entity_text(folded, "expandable_blockquote") == [reasoning]
    assert entity_text(folded, "bold") == ["Привет"]
    assert entity_text(folded, "code") == ["код"]
    assert entity_text(folded, "text_link") == ["ссылка"]
    assert_valid(folded)


def test_the_reasonings_markdown_is_shown_as_plain_text_in_the_quote() -> None:
    folded = with_reasoning(render("Yes."), "**Plan**: check `x`.\n\n> a quote")
    assert entity_text(folded, "expandable_blockquote") == ["Plan: check x.\n\na quote"]
    assert [e.type for e in folded.entities] == ["expandable_blockquote"]


def test_a_blank_reasoning_leaves_the_answer_as_it_is() -> None:
    answer = render("**Hi**")
    assert with_reasoning(answer, " \n ") == answer


def test_a_long_reasoning_is_cut_at_a_word_with_an_ellipsis() -> None:
    reasoning = " ".join(f"шаг{i}" for i in range(3000))  # about 20,000 characters
    folded = with_reasoning(render("Ответ."), reasoning)
    quote = entity_text(folded, "expandable_blockquote")[0]
    assert quote.endswith("…") and utf16_len(quote) <= REASONING_LIMIT
    assert utf16_len(quote) > REASONING_LIMIT - 20  # cut near the limit, not far before
    assert reasoning.startswith(quote.removesuffix("…") + " ")  # a whole word last
    assert folded.text.endswith("\n\nОтвет.")


def test_a_long_reasoning_without_spaces_is_cut_between_surrogate_pairs() -> None:
    folded = with_reasoning(render("Answer."), "😀" * 4000)
    quote = entity_text(folded, "expandable_blockquote")[0]  # decoding checks the pairs
    assert quote == "😀" * ((REASONING_LIMIT - 1) // 2) + "…"
    assert_valid(folded)


def test_a_long_answer_below_a_long_reasoning_still_splits_into_valid_parts() -> None:
    answer = render(source(CORPUS_DIR / "28_long_tutorial_20k.md"))
    folded = with_reasoning(answer, "рассуждение 🤔 " * 1000)
    parts = split_rendered(folded)
    assert len(parts) > 1
    for part in parts:
        assert_valid(part)
    first = parts[0]
    assert first.entities[0].type == "expandable_blockquote"
    assert first.entities[0].offset == 0
    assert [mark for part in parts for mark in styled(part)] == styled(folded)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_FRAGMENTS, max_size=40).map("".join),
    st.lists(_FRAGMENTS, max_size=40).map("".join),
)
def test_any_reasoning_above_any_answer_is_valid_and_splits(reasoning: str, markdown: str) -> None:
    answer = render(markdown)
    folded = with_reasoning(answer, reasoning, limit=30)
    if not folded.text:
        return
    assert_valid(folded, limit=None)
    quotes = [e for e in folded.entities if e.type == "expandable_blockquote"]
    assert len(quotes) <= 1 and all(q.offset == 0 and q.length <= 30 for q in quotes)
    # with_reasoning renders the reasoning stripped: "    # " is code, "#" an empty heading.
    if render(reasoning.strip()).text and len(reasoning) <= 60:  # not shortened first
        assert quotes
    assert folded.text.endswith(answer.text)
    parts = split_rendered(folded, 40)
    for part in parts:
        assert_valid(part, 40)
    assert [mark for part in parts for mark in styled(part)] == styled(folded)
