"""The web_search tool, through the backend the owner set up: their SearXNG instance (its
JSON API), or the Brave Search API with their key. Results: numbered titles, links and
snippets for the model."""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiogram.utils.i18n import gettext as _

from app.tools.base import Tool, ToolContext, ToolError

log = logging.getLogger(__name__)

MAX_RESULTS = 20
SNIPPET = 400
TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True, slots=True)
class SearchResult:
    title: str
    url: str
    snippet: str


def clean(text: object, limit: int = SNIPPET) -> str:
    """A title or snippet as plain text: Brave marks the query's words with <strong>."""
    plain = html.unescape(TAG.sub("", str(text or "")))
    plain = " ".join(plain.split())
    return plain if len(plain) <= limit else plain[: limit - 1] + "…"


class SearchBackend(Protocol):
    async def search(
        self, session: aiohttp.ClientSession, query: str, count: int
    ) -> list[SearchResult]: ...


class SearxngBackend:
    """A SearXNG instance's JSON API (`/search?q=...&format=json`)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._warned = False

    async def search(
        self, session: aiohttp.ClientSession, query: str, count: int
    ) -> list[SearchResult]:
        params = {"q": query, "format": "json"}
        async with session.get(f"{self.url}/search", params=params) as response:
            if response.status == 403:
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "SearXNG at %s refuses JSON (HTTP 403): enable it in its settings.yml "
                        "with `search: formats: [html, json]`, then restart SearXNG",
                        self.url,
                    )
                raise ToolError(
                    "web search is not set up right (the search server refuses JSON); "
                    "tell the user web search is not available now."
                )
            if response.status != 200:
                raise ToolError(f"the search server answered HTTP {response.status}.")
            data = await response.json(content_type=None)
        rows = data.get("results") if isinstance(data, dict) else None
        return [
            SearchResult(clean(row.get("title"), 200), str(row["url"]), clean(row.get("content")))
            for row in rows or ()
            if isinstance(row, dict) and row.get("url")
        ][:count]


class BraveBackend:
    """The Brave Search API (web results), with the owner's subscription token."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self._key = key
        self._warned = False

    async def search(
        self, session: aiohttp.ClientSession, query: str, count: int
    ) -> list[SearchResult]:
        headers = {"X-Subscription-Token": self._key, "Accept": "application/json"}
        params = {"q": query, "count": str(count)}
        async with session.get(self.url, params=params, headers=headers) as response:
            if response.status in (401, 403):
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "Brave Search refuses SEARCH_BRAVE_API_KEY (HTTP %s): check the key",
                        response.status,
                    )
                raise ToolError(
                    "the search service refused the bot's key; tell the user web search is "
                    "not available now."
                )
            if response.status == 429:
                raise ToolError("the search service's rate limit is reached; try again later.")
            if response.status != 200:
                raise ToolError(f"the search service answered HTTP {response.status}.")
            data = await response.json(content_type=None)
        web = data.get("web") if isinstance(data, dict) else None
        rows = web.get("results") if isinstance(web, dict) else None
        return [
            SearchResult(
                clean(row.get("title"), 200), str(row["url"]), clean(row.get("description"))
            )
            for row in rows or ()
            if isinstance(row, dict) and row.get("url")
        ][:count]


class WebSearch:
    """A backend and the session it goes through (its own: the owner's search server may
    be on their network, which the page reader's address rules would refuse)."""

    def __init__(self, backend: SearchBackend, *, results: int, timeout: float) -> None:
        self.backend = backend
        self.results = results
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def search(self, query: str, count: int | None = None) -> list[SearchResult]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout), trust_env=False
            )
        wanted = max(1, min(count or self.results, MAX_RESULTS))
        try:
            return await self.backend.search(self._session, query, wanted)
        except TimeoutError:
            raise ToolError(f"the search did not answer within {self.timeout:g} seconds.") from None
        except (aiohttp.ClientError, ValueError) as exc:  # ValueError: a body that is no JSON
            log.warning("Web search failed: %s", type(exc).__name__)
            raise ToolError("the search server is not reachable now.") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def format_results(query: str, results: list[SearchResult]) -> str:
    if not results:
        return f'No results for "{query}".'
    lines = [f'Results for "{query}":']
    for number, result in enumerate(results, 1):
        lines.append(f"{number}. {result.title or result.url}\n   {result.url}")
        if result.snippet:
            lines.append(f"   {result.snippet}")
    return "\n".join(lines)


def web_search_tool(web: WebSearch) -> Tool:
    async def run(context: ToolContext, arguments: dict[str, Any]) -> str:
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ToolError("give what to search for as `query`.")
        count = arguments.get("count")
        number = count if isinstance(count, int) and not isinstance(count, bool) else None
        query = query.strip()
        return format_results(query, await web.search(query, number))

    return Tool(
        name="web_search",
        description=(
            "Search the web. Returns numbered results with titles, links and snippets; read "
            "a page in full with read_page. Use it for recent events, facts you are unsure "
            "of, and anything the user asks to look up."
        ),
        parameters={
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to search for."},
                "count": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_RESULTS,
                    "description": f"How many results (default {web.results}).",
                },
            },
            "required": ["query"],
            "additionalProperties": False,
        },
        run=run,
        doing=lambda arguments: _("Searching the web: {query}").format(
            query=str(arguments.get("query") or "")[:80]
        ),
    )
