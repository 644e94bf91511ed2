"""The model's Markdown as Telegram text plus entities, so no markup can ever fail to parse.

Telegram's parse modes reject a whole message for one stray ``_`` or ``<``; entities carry
the formatting beside the text, so the text is shown exactly as written and the only thing
to get right is offsets (UTF-16 code units). ``render()`` parses with markdown-it-py
(CommonMark, plus GFM tables, strikethrough and task lists) and walks its token stream.

Why markdown-it-py and not telegramify-markdown: both were run over the answers corpus in
``tests/data/answers`` with the checks of ``tests/unit/test_render.py``. telegramify-markdown
1.4.1 does produce entities and is about five times faster (its parser is Rust:
pulldown-cmark through the pyromark wheel), but it failed those checks on 10 of the 31
answers (one only for an untrimmed line break): it changed code inside a code block (an
escaped bracket in a regex became ``$$``: its LaTeX pass runs there too), dropped
HTML-looking prose (``List<String>`` became ``List``, ``a<b or x > 3`` became ``a 3``, an
HTML block vanished), decoded ``&amp;``, rewrote LaTeX into Unicode look-alikes, sent
``text_link`` entities Telegram refuses (``javascript:``, a bare e-mail address), nested
blockquotes (Telegram keeps one) and lost the URLs of links in tables; its splitter cuts
code blocks that would fit in one message. Our walk over markdown-it-py's
tokens (pure Python, one small dependency, mdurl) passes every check, is one file we
control, and at about 0.6 ms per answer is fast enough for chat (``bench/render.py``).

Deliberate departures from CommonMark, each because models mean literal text there:
raw HTML and HTML entities stay as typed; bare URLs are kept whole (no emphasis inside
``https://a.b/_c_``); ``*`` between digits (``2*3*4``), before a file extension
(``*.py``) and Python dunder names (``__init__.py``, ``__name__``) are not emphasis.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit

from aiogram.types import MessageEntity
from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

__all__ = ["REASONING_LIMIT", "Rendered", "Span", "plain", "render", "utf16_len", "with_reasoning"]

# Nested list levels step in by this much; in Telegram's proportional font three spaces are
# about as wide as "• ", so a child's bullet lines up with its parent's text.
_INDENT = "   "
_BULLETS = ("•", "◦")
_CHECKBOX = {True: "☑", False: "☐"}
_RULE = "────────"
# A table becomes an aligned monospace block only when it fits a phone screen in portrait.
_TABLE_PRE_WIDTH = 40
# Telegram moves the start of every entity but a text_link past spaces and line breaks;
# these also end before trailing ones (Telegram keeps those, but they show as nothing).
# A blockquote or pre keeps its end, so a pre never ends past the quote around it.
_START_KEPT = frozenset({"text_link"})
_END_TRIMMED = frozenset({"bold", "italic", "strikethrough", "underline", "code"})
_WHITESPACE = " \n"


class Span(NamedTuple):
    """One entity while it is being built: half-open [start, end) in UTF-16 code units."""

    kind: str
    start: int
    end: int
    arg: str | None = None  # the URL of a text_link, the language of a pre


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message text and its entities, offsets and lengths in UTF-16 code units."""

    text: str
    entities: list[MessageEntity] = field(default_factory=list)

    @classmethod
    def from_spans(cls, text: str, spans: Iterable[Span]) -> Rendered:
        """Build a message the way Telegram will keep it: the text trimmed of surrounding
        whitespace, entities clipped to it and moved off edge whitespace (so the first line
        of a code block loses its indentation, as Telegram would do), blank ones dropped."""
        stripped = text.strip(_WHITESPACE)
        if not stripped:
            return cls("", [])
        lead = len(text) - len(text.lstrip(_WHITESPACE))  # whitespace is all BMP: 1 unit each
        total = utf16_len(stripped)
        units = stripped.encode("utf-16-le")
        entities: list[MessageEntity] = []
        for kind, start, end, arg in spans:
            start, end = max(start - lead, 0), min(end - lead, total)
            if kind not in _START_KEPT:
                while start < end and units[2 * start] in b" \n" and not units[2 * start + 1]:
                    start += 1
            if kind in _END_TRIMMED:
                while start < end and units[2 * end - 2] in b" \n" and not units[2 * end - 1]:
                    end -= 1
            if end <= start or not units[2 * start : 2 * end].decode("utf-16-le").strip():
                continue
            entities.append(
                MessageEntity(
                    type=kind,
                    offset=start,
                    length=end - start,
                    url=arg if kind == "text_link" else None,
                    language=arg if kind == "pre" and arg else None,
                )
            )
        entities.sort(key=lambda e: (e.offset, -e.length))
        return cls(stripped, entities)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the way Telegram counts offsets and message length."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def render(markdown: str) -> Rendered:
    """Telegram text and entities for a model's Markdown answer."""
    writer = _Writer()
    _Blocks(writer).render(_PARSER.parse(_valid_unicode(markdown)))
    return Rendered.from_spans("".join(writer.parts), writer.spans)


def _valid_unicode(text: str) -> str:
    """The text with lone surrogates (a JSON escape can produce them) replaced: Telegram
    refuses a message that is not valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def plain(markdown: str) -> str:
    """The rendered text without any entity: the fallback when Telegram refuses a message."""
    return render(markdown).text


# A longer reasoning is cut (at a word, in UTF-16 units as Telegram counts) so that the first
# message, 4096 units, still has room for the beginning of the answer below it.
REASONING_LIMIT = 3000
_ELLIPSIS = "…"


def with_reasoning(answer: Rendered, reasoning: str, limit: int = REASONING_LIMIT) -> Rendered:
    """The answer with the model's reasoning above it in one expandable blockquote (folded
    until tapped), then a blank line. The reasoning's Markdown is rendered but kept as plain
    text: Telegram nests no quote in a quote, and a reasoning needs no formatting to be read.
    Past `limit` it is cut at a word and ends in "…"."""
    # Rendering is linear in the input: a very long reasoning is shortened first, with room
    # for the markup that rendering takes out.
    reasoning = reasoning.strip()
    source = reasoning[: 2 * limit]
    quote = _cut_at_word(render(source).text, limit, cut=len(source) < len(reasoning))
    if not quote:
        return answer
    quoted = MessageEntity(type="expandable_blockquote", offset=0, length=utf16_len(quote))
    if not answer.text:
        return Rendered(quote, [quoted])
    shift = quoted.length + 2  # the blank line: two BMP units
    moved = [
        entity.model_copy(update={"offset": entity.offset + shift}) for entity in answer.entities
    ]
    return Rendered(f"{quote}\n\n{answer.text}", [quoted, *moved])


def _cut_at_word(text: str, limit: int, *, cut: bool = False) -> str:
    """`text` if it fits in `limit` UTF-16 units (and was not cut already), else its longest
    beginning that ends at a word and fits with "…" after it."""
    if not cut and utf16_len(text) <= limit:
        return text
    units = text.encode("utf-16-le", "surrogatepass")[: 2 * (limit - len(_ELLIPSIS))]
    head = units.decode("utf-16-le", "ignore")  # a pair cut in half goes
    space = max(head.rfind(" "), head.rfind("\n"))
    if space > len(head) // 2:  # a word boundary, unless only a few words would be left
        head = head[:space]
    head = head.rstrip(_WHITESPACE)
    return head + _ELLIPSIS if head else ""


# --------------------------------------------------------------------------- the parser

# What may precede a bare URL's "://": a scheme that starts a word.
_SCHEME_BEFORE = re.compile(r"(?:^|[^A-Za-z0-9.+-])(?:https?|ftp|tg)$", re.IGNORECASE)
_URL_REST = re.compile(r"://[^\s<>`\"]+")
# GFM's extended-autolink rule: these at a URL's end are the sentence's, not the URL's.
_URL_TRAILING = "?!.,:;*_~'\""
_DUNDER = re.compile(r"__([a-z][a-z0-9_]*?)__(?![A-Za-z0-9_])")
# Dunders models write in prose; any other `__word__` followed by a space stays bold.
_KNOWN_DUNDERS = frozenset(
    {
        *("init", "main", "name", "dict", "slots", "repr", "str", "eq", "ne", "lt", "le"),
        *("gt", "ge", "hash", "call", "len", "iter", "next", "enter", "exit", "aenter"),
        *("aexit", "await", "getattr", "getattribute", "setattr", "delattr", "getitem"),
        *("setitem", "delitem", "all", "file", "doc", "class", "module", "new", "del"),
        *("post_init", "version", "builtins", "future", "pycache", "contains", "bool"),
        *("annotations", "bases", "mro", "qualname", "wrapped", "add", "sub", "mul"),
    }
)


def _bare_url(state: StateInline, silent: bool) -> bool:
    """Keep a plain-text URL whole: no emphasis from the `_` or `*` inside it.

    Runs at the ':' of "scheme://" like markdown-it's linkify rule, but emits text:
    Telegram finds URLs in plain text itself.
    """
    pos = state.pos
    src = state.src
    if state.linkLevel > 0 or not src.startswith("://", pos):
        return False
    if not _SCHEME_BEFORE.search(state.pending):
        return False
    match = _URL_REST.match(src, pos, state.posMax)
    if match is None:
        return False
    end = _url_end(src, pos, match.end())
    if end <= pos + 3:
        return False
    if not silent:
        state.append_pending(src[pos:end])
    state.pos = end
    return True


def _url_end(src: str, start: int, end: int) -> int:
    while end > start:
        last = src[end - 1]
        unbalanced = last == ")" and src.count("(", start, end) < src.count(")", start, end)
        if last not in _URL_TRAILING and not unbalanced:
            break
        end -= 1
    return end


def _literal_markers(state: StateInline, silent: bool) -> bool:
    """`*` and `_` runs that models mean literally, kept out of the emphasis rule."""
    pos = state.pos
    src = state.src
    marker = src[pos]
    if marker == "*":
        run_end = pos
        while run_end < state.posMax and src[run_end] == "*":
            run_end += 1
        before = src[pos - 1] if pos else " "
        after = src[run_end] if run_end < state.posMax else " "
        arithmetic = before.isalnum() and after.isalnum() and (before.isdigit() or after.isdigit())
        glob = after == "." and src[run_end + 1 : run_end + 2].isalnum()
        if not (arithmetic or glob):
            return False
    elif marker == "_":
        if pos and (src[pos - 1].isalnum() or src[pos - 1] == "_"):
            return False
        match = _DUNDER.match(src, pos, state.posMax)
        if match is None:
            return False
        run_end = match.end()
        follower = src[run_end : run_end + 1]
        if match.group(1) not in _KNOWN_DUNDERS and follower not in (".", "(", "["):
            return False
    else:
        return False
    if not silent:
        state.append_pending(src[pos:run_end])
    state.pos = run_end
    return True


class _Parser(MarkdownIt):
    """markdown-it that keeps link destinations exactly as written (no percent-encoding) and
    refuses no scheme at parse time, so a link not sent as text_link still shows its text
    (see _link_url)."""

    def normalizeLink(self, url: str) -> str:
        return url

    def normalizeLinkText(self, link: str) -> str:
        return link

    def validateLink(self, url: str) -> bool:
        return True


def _make_parser() -> MarkdownIt:
    # html=False keeps tags as text; tasklists gives list items a "checked" meta.
    md = _Parser("commonmark", {"html": False, "tasklists": True, "typographer": False})
    md.enable(["table", "strikethrough"])
    # "&amp;" must reach the user as typed, like every other character outside markup.
    md.disable("entity")
    md.inline.ruler.before("emphasis", "literal_markers", _literal_markers)
    md.inline.ruler.before("linkify", "bare_url", _bare_url)
    return md


_PARSER = _make_parser()


def _link_url(href: str) -> str | None:
    """The URL a text_link may carry, or None: Telegram refuses other schemes outright."""
    url = href.strip()
    if not url or any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url):
        return None
    lowered = url.lower()
    if lowered.startswith(("http://", "https://")):
        try:
            host = urlsplit(url).netloc
        except ValueError:
            return None
        return url if host else None
    if lowered.startswith("tg://") and len(url) > len("tg://"):
        return url
    return None


# --------------------------------------------------------------------------- the writer


class _Writer:
    """Accumulates text and entities; block separators are owed and written lazily, so
    nothing trails a block and an entity never starts on a separator."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[Span] = []
        self.pos = 0  # UTF-16 units written so far
        self.indent = ""  # written after each line break inside a list item
        self._owed = 0  # line breaks owed before the next text
        self._fresh = True  # at the start, or right after a list marker
        self._open: list[tuple[str, int, str | None]] = []
        self._quote_depth = 0
        self._quote_start: int | None = None

    def block(self, breaks: int) -> None:
        """Start a block: the next text goes `breaks` line breaks after the previous one."""
        if not self._fresh:
            self._owed = max(self._owed, breaks)

    def flush(self, *, indent: bool = True) -> None:
        if self._owed:
            self._emit("\n" * self._owed + (self.indent if indent else ""))
            self._owed = 0
        if self._quote_depth and self._quote_start is None:
            self._quote_start = self.pos

    def text(self, text: str) -> None:
        if text:
            self.flush()
            self._emit(text)

    def line_break(self) -> None:
        self.flush()
        self._emit("\n" + self.indent)

    def marker(self, marker: str) -> None:
        """A list item's marker: its content follows on the same line."""
        self.flush()
        self._emit(marker + " ")
        self._fresh = True

    def code(self, code: str, language: str | None) -> None:
        # Code is never indented: the pre entity must hold exactly the model's code.
        self.flush(indent=False)
        start = self.pos
        self._emit(code)
        self.spans.append(Span("pre", start, self.pos, language))

    def open(self, kind: str, arg: str | None = None) -> None:
        self.flush()
        self._open.append((kind, self.pos, arg))

    def close(self, kind: str) -> None:
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index][0] == kind:
                _, start, arg = self._open.pop(index)
                if self.pos > start:
                    self.spans.append(Span(kind, start, self.pos, arg))
                return

    def inside(self, kind: str) -> bool:
        return any(open_kind == kind for open_kind, _, _ in self._open)

    def quote_open(self) -> None:
        # Telegram cannot nest blockquotes: an inner quote is part of the outer one.
        self._quote_depth += 1

    def quote_close(self) -> None:
        self._quote_depth -= 1
        if self._quote_depth == 0:
            if self._quote_start is not None and self.pos > self._quote_start:
                self.spans.append(Span("blockquote", self._quote_start, self.pos))
            self._quote_start = None

    def _emit(self, text: str) -> None:
        self.parts.append(text)
        self.pos += utf16_len(text)
        self._fresh = False


@dataclass(slots=True)
class _List:
    """An open list: its kind, the next item's number and the breaks between its items."""

    ordered: bool
    number: int
    gap: int


class _Blocks:
    """Walks markdown-it's block tokens into a writer."""

    def __init__(self, writer: _Writer) -> None:
        self.w = writer
        self._lists: list[_List] = []
        self._indents: list[str] = []

    def render(self, tokens: Sequence[Token]) -> None:
        index = 0
        while index < len(tokens):
            token = tokens[index]
            kind = token.type
            if kind == "table_open":
                index = self._table(tokens, index)
                continue
            if kind == "inline":
                _inline(self.w, token.children or [])
            elif kind == "paragraph_open":
                self.w.block(self._gap())
            elif kind == "heading_open":
                self.w.block(self._gap())
                self.w.open("bold")
            elif kind == "heading_close":
                self.w.close("bold")
            elif kind in ("bullet_list_open", "ordered_list_open"):
                self.w.block(self._gap())
                # markdown-it hides the paragraphs of a tight list; a loose one keeps a blank
                # line between items, as the model wrote it.
                first = tokens[index + 2] if index + 2 < len(tokens) else token
                loose = first.type == "paragraph_open" and not first.hidden
                start = int(token.attrGet("start") or 1)
                self._lists.append(_List(kind == "ordered_list_open", start, 2 if loose else 1))
            elif kind in ("bullet_list_close", "ordered_list_close"):
                self._lists.pop()
            elif kind == "list_item_open":
                self._item(token)
            elif kind == "list_item_close":
                self._indents.pop()
                self.w.indent = self._indents[-1] if self._indents else ""
            elif kind == "blockquote_open":
                self.w.block(self._gap())
                self.w.quote_open()
            elif kind == "blockquote_close":
                self.w.quote_close()
            elif kind in ("fence", "code_block"):
                self.w.block(self._gap())
                language = token.info.strip().split(maxsplit=1)[0] if token.info.strip() else None
                self.w.code(token.content.removesuffix("\n"), language)
            elif kind == "hr":
                self.w.block(self._gap())
                self.w.text(_RULE)
            elif kind == "html_block":  # only if html is ever enabled: show it as typed
                self.w.block(self._gap())
                self.w.text(token.content.rstrip("\n"))
            index += 1

    def _gap(self) -> int:
        # Blank lines between top-level blocks; inside a list item one line break is enough.
        return 1 if self._lists else 2

    def _item(self, token: Token) -> None:
        current = self._lists[-1]
        ordered = current.ordered
        self.w.block(current.gap)
        if ordered:
            marker = f"{current.number}{token.markup or '.'}"
            current.number += 1
        else:
            marker = _BULLETS[(len(self._lists) - 1) % 2]
        checked = token.meta.get("checked") if token.meta else None
        if isinstance(checked, bool):
            box = _CHECKBOX[checked]
            marker = f"{marker} {box}" if ordered else box
        self.w.marker(marker)
        self._indents.append(_INDENT * len(self._lists))
        self.w.indent = self._indents[-1]

    def _table(self, tokens: Sequence[Token], index: int) -> int:
        """Render the table opening at `index`; returns the index after its end."""
        header: list[Token] = []
        aligns: list[str] = []
        rows: list[list[Token]] = []
        in_head = False
        while tokens[index].type != "table_close":
            token = tokens[index]
            if token.type == "thead_open":
                in_head = True
            elif token.type == "thead_close":
                in_head = False
            elif token.type == "tr_open" and not in_head:
                rows.append([])
            elif token.type == "th_open":
                style = str(token.attrGet("style") or "")
                aligns.append(style.removeprefix("text-align:"))
            elif token.type == "inline":
                (header if in_head else rows[-1]).append(token)
            index += 1
        self.w.block(self._gap())
        _Table(header, aligns, rows).render(self.w, self._gap())
        return index + 1


class _Table:
    """A GFM table: an aligned monospace block when it is small and plain, else one short
    block per row, one "header: value" line per cell, which reads well on a phone and keeps
    links and formatting that a monospace block would lose."""

    def __init__(self, header: list[Token], aligns: list[str], rows: list[list[Token]]) -> None:
        self.header = header
        self.aligns = aligns
        self.rows = [row + [Token("inline", "", 0)] * (len(header) - len(row)) for row in rows]

    def render(self, w: _Writer, gap: int) -> None:
        grid = self._grid()
        if grid is not None:
            w.code(grid, None)
            return
        labels = [_plain_inline(cell) for cell in self.header]
        if not self.rows:
            w.text(" | ".join(labels))
            return
        for number, row in enumerate(self.rows):
            if number:
                w.block(gap)
            wrote = False
            for column, (label, cell) in enumerate(zip(labels, row, strict=False)):
                if not _plain_inline(cell).strip():
                    continue
                if wrote:
                    w.line_break()
                w.text(f"{label}: " if label.strip() else "")
                # The first column usually names the row: it is what the eye looks for.
                if column == 0:
                    w.open("bold")
                _inline(w, cell.children or [])
                if column == 0:
                    w.close("bold")
                wrote = True

    def _grid(self) -> str | None:
        cells = [self.header, *self.rows]
        if any(
            child.type in ("link_open", "image")
            for row in cells
            for cell in row
            for child in cell.children or []
        ):
            return None
        texts = [[_plain_inline(cell) for cell in row] for row in cells]
        if not all(_monospace_safe(text) for row in texts for text in row):
            return None
        widths = [max(len(row[col]) for row in texts) for col in range(len(self.header))]
        if sum(widths) + 3 * (len(widths) - 1) > _TABLE_PRE_WIDTH:
            return None
        lines = [self._line(texts[0], widths)]
        lines.append("-+-".join("-" * width for width in widths))
        lines.extend(self._line(row, widths) for row in texts[1:])
        return "\n".join(line.rstrip() for line in lines)

    def _line(self, row: list[str], widths: list[int]) -> str:
        out = []
        for col, (text, width) in enumerate(zip(row, widths, strict=True)):
            align = self.aligns[col] if col < len(self.aligns) else ""
            if align == "right":
                out.append(text.rjust(width))
            elif align == "center":
                out.append(text.center(width))
            else:
                out.append(text.ljust(width))
        return " | ".join(out)


def _monospace_safe(text: str) -> bool:
    """Whether every character takes exactly one column in a monospace font."""
    for ch in text:
        if ord(ch) > 0xFFFF or unicodedata.east_asian_width(ch) in ("W", "F"):
            return False
        if unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            return False
    return True


def _plain_inline(token: Token) -> str:
    writer = _Writer()
    _inline(writer, token.children or [])
    return "".join(writer.parts)


_INLINE_KINDS = {"strong": "bold", "em": "italic", "s": "strikethrough"}


def _inline(w: _Writer, children: Sequence[Token]) -> None:
    links: list[tuple[str | None, str, int]] = []  # per open link: URL sent, href, parts index
    for token in children:
        kind = token.type
        if kind in ("text", "text_special", "html_inline"):
            w.text(token.content)
        elif kind in ("softbreak", "hardbreak"):
            w.line_break()
        elif kind == "code_inline":
            # Telegram drops a code entity nested in a text_link; the link matters more.
            if w.inside("text_link"):
                w.text(token.content)
            else:
                w.open("code")
                w.text(token.content)
                w.close("code")
        elif kind.endswith("_open") and kind[:-5] in _INLINE_KINDS:
            w.open(_INLINE_KINDS[kind[:-5]])
        elif kind.endswith("_close") and kind[:-6] in _INLINE_KINDS:
            w.close(_INLINE_KINDS[kind[:-6]])
        elif kind == "link_open":
            href = str(token.attrGet("href") or "")
            url = _link_url(href)
            if url is not None:
                w.open("text_link", url)
            links.append((url, href, len(w.parts)))
        elif kind == "link_close" and links:
            url, href, first_part = links.pop()
            if url is not None:
                w.close("text_link")
            else:
                _unsent_link(w, href, "".join(w.parts[first_part:]))
        elif kind == "image":
            _image(w, token)


def _unsent_link(w: _Writer, href: str, label: str) -> None:
    """A link Telegram would refuse keeps its text; an e-mail address stays visible, since
    Telegram turns a plain address into a mail link itself but mangles mailto: links."""
    if href.lower().startswith("mailto:"):
        address = href[len("mailto:") :]
        if address and address != label.strip():
            w.text(f" ({address})")


def _image(w: _Writer, token: Token) -> None:
    url = _link_url(str(token.attrGet("src") or ""))
    label = token.content or (url or "")
    if url is None:
        w.text(label)
        return
    w.open("text_link", url)
    w.text(label)
    w.close("text_link")
