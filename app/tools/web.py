"""The web tools together: web_search (when the owner set up a backend) and read_page,
with the HTTP sessions they share, closed at shutdown."""

from __future__ import annotations

from collections.abc import Sequence

from app.tools.base import Tool
from app.tools.fetch import AddressPolicy, PageFetcher, parse_networks
from app.tools.pages import read_page_tool
from app.tools.search import BraveBackend, SearchBackend, SearxngBackend, WebSearch, web_search_tool


class WebTools:
    """read_page always; web_search only with a backend."""

    def __init__(self, fetcher: PageFetcher, search: WebSearch | None) -> None:
        self.fetcher = fetcher
        self.search = search

    @property
    def tools(self) -> list[Tool]:
        found = [read_page_tool(self.fetcher)]
        if self.search is not None:
            found.append(web_search_tool(self.search))
        return found

    async def close(self) -> None:
        await self.fetcher.close()
        if self.search is not None:
            await self.search.close()


def create_web_tools(
    *,
    searxng_url: str | None,
    brave_url: str,
    brave_api_key: str | None,
    results: int,
    page_max_bytes: int,
    page_timeout: float,
    allow_private_addresses: Sequence[str] = (),
) -> WebTools:
    """The web tools from the owner's settings (the factory passes them: tools read no
    settings themselves). SearXNG is preferred when both backends are set."""
    backend: SearchBackend | None = None
    if searxng_url:
        backend = SearxngBackend(searxng_url)
    elif brave_api_key:
        backend = BraveBackend(brave_url, brave_api_key)
    fetcher = PageFetcher(
        max_bytes=page_max_bytes,
        timeout=page_timeout,
        policy=AddressPolicy(parse_networks(allow_private_addresses)),
    )
    search = (
        WebSearch(backend, results=results, timeout=page_timeout) if backend is not None else None
    )
    return WebTools(fetcher, search)
