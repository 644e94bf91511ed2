"""A fake Brave Search API: `GET /res/v1/web/search` with the X-Subscription-Token header,
web results under `web.results` (titles and descriptions with <strong> around the query's
words, as Brave sends them); 401 for another key."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.local import LocalServer

PATH = "/res/v1/web/search"


class FakeBrave(LocalServer):
    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.results: list[dict[str, Any]] = []
        self.queries: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return self.base_url + PATH

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(PATH, self._search)
        return app

    async def _search(self, request: web.Request) -> web.StreamResponse:
        self.queries.append(dict(request.query))
        if request.headers.get("X-Subscription-Token") != self.key:
            return web.json_response(
                {"type": "ErrorResponse", "error": {"code": "SUBSCRIPTION_TOKEN_INVALID"}},
                status=401,
            )
        count = int(request.query.get("count", "20"))
        return web.json_response(
            {
                "type": "search",
                "query": {"original": request.query.get("q", "")},
                "web": {"type": "search", "results": self.results[:count]},
            }
        )
