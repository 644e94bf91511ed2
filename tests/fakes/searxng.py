"""A fake SearXNG instance: its JSON API (`/search?q=...&format=json`) as a real one
answers it, and the 403 a real one gives when `json` is not among its `formats`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.local import LocalServer


class FakeSearxng(LocalServer):
    def __init__(self) -> None:
        super().__init__()
        # What a search answers: SearXNG's result objects (title, url, content, engine...).
        self.results: list[dict[str, Any]] = []
        # A real instance without `json` in settings.yml `search.formats` answers 403.
        self.json_enabled = True
        self.queries: list[dict[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/search", self._search)
        return app

    async def _search(self, request: web.Request) -> web.StreamResponse:
        self.queries.append(dict(request.query))
        if request.query.get("format") == "json" and not self.json_enabled:
            return web.Response(status=403, text="403 Forbidden", content_type="text/html")
        query = request.query.get("q", "")
        return web.json_response(
            {
                "query": query,
                "number_of_results": len(self.results),
                "results": [
                    {"engine": "duckduckgo", "score": 1.0, "category": "general", **row}
                    for row in self.results
                ],
                "answers": [],
                "corrections": [],
                "infoboxes": [],
                "suggestions": [],
                "unresponsive_engines": [],
            }
        )
