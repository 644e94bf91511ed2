"""A local web server for the page reader's tests: each path answers as a test sets it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from tests.fakes.local import LocalServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakePages(LocalServer):
    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[str, Handler] = {}
        self.hits: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._serve)
        return app

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path)
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="not here")
        return await handler(request)

    def page(self, path: str, body: str | bytes, content_type: str = "text/html") -> None:
        async def serve(request: web.Request) -> web.StreamResponse:
            data = body.encode() if isinstance(body, str) else body
            return web.Response(body=data, content_type=content_type, charset=None)

        self.routes[path] = serve

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        async def serve(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, headers={"Location": location})

        self.routes[path] = serve

    def chunked(self, path: str, size: int, content_type: str = "text/html") -> None:
        """A page of `size` bytes sent in pieces without a Content-Length."""

        async def serve(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": content_type})
            response.enable_chunked_encoding()
            await response.prepare(request)
            sent = 0
            while sent < size:
                piece = min(4096, size - sent)
                await response.write(b"x" * piece)
                sent += piece
            await response.write_eof()
            return response

        self.routes[path] = serve
