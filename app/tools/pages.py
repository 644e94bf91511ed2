"""The read_page tool: a link → the page's readable text (its article, without menus and
footers), with its title and address, for the model to read."""

from __future__ import annotations

import asyncio
from typing import Any

from aiogram.utils.i18n import gettext as _
from yarl import URL

from app.tools.base import Tool, ToolContext, ToolError
from app.tools.fetch import FetchedPage, PageFetcher

# Characters of text handed on at most: the tool service shortens results to their token
# share anyway; this only keeps a huge page from being counted whole.
MAX_TEXT = 200_000


def extract(page: FetchedPage) -> tuple[str, str]:
    """The page's title and readable text: its main content as trafilatura finds it, or
    all its text when it finds none (a page of little more than a list). Sync CPU work
    (lxml, about half a second a megabyte): run in a thread."""
    if not page.is_html:
        return "", page.text()
    # Imported here, in the reading thread: it takes a sixth of a second to import, which
    # a bot whose model never reads a page need not spend at start-up.
    import trafilatura

    # The charset the server names wins; without one trafilatura reads the page's own.
    markup: str | bytes = page.text() if page.charset else page.body
    document = trafilatura.bare_extraction(
        markup, url=page.url, with_metadata=True, include_tables=True, include_links=False
    )
    title = text = ""
    if document is not None and not isinstance(document, dict):
        title, text = (document.title or "").strip(), (document.text or "").strip()
    if not text:
        text = (trafilatura.html2txt(markup) or "").strip()
    return title, text


def where(address: str) -> str:
    """host/path of a link, for the preview."""
    try:
        url = URL(address.strip())
    except (ValueError, TypeError):
        return address[:80]
    shown = (url.host or "") + (url.path if url.path != "/" else "")
    return shown[:80] or address[:80]


def read_page_tool(fetcher: PageFetcher) -> Tool:
    async def run(context: ToolContext, arguments: dict[str, Any]) -> str:
        address = arguments.get("url")
        if not isinstance(address, str) or not address.strip():
            raise ToolError("give the page's link as `url`.")
        page = await fetcher.fetch(address)
        title, text = await asyncio.to_thread(extract, page)
        if not text:
            raise ToolError("the page has no readable text (it may need JavaScript).")
        if len(text) > MAX_TEXT:
            text = text[:MAX_TEXT] + "\n\n[The page goes on; only its start is shown.]"
        head = f"Title: {title}\n" if title else ""
        return f"{head}URL: {page.url}\n\n{text}"

    return Tool(
        name="read_page",
        description=(
            "Read a web page: give its http(s) link, get its readable text with its title. "
            "Use it for a link the user sent, or to read a search result in full."
        ),
        parameters={
            "type": "object",
            "properties": {"url": {"type": "string", "description": "The page's http(s) link."}},
            "required": ["url"],
            "additionalProperties": False,
        },
        run=run,
        doing=lambda arguments: _("Reading: {page}").format(
            page=where(str(arguments.get("url") or ""))
        ),
    )
