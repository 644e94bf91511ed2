"""A small round-robin reverse proxy (aiohttp) standing in for the load balancer in front of
several bot replicas in the tests: Debian's nginx is not installed on the machine these tests
were written on, so the tests bring their own.

Each request goes to the next backend in turn with its method, path, query, body and headers
(the ``X-Telegram-Bot-Api-Secret-Token`` among them; only hop-by-hop headers and ``Host`` are
dropped), and the backend's status, headers and body come back unchanged. A backend that
cannot be reached is answered 502, as nginx would. ``served`` counts what each backend
answered; ``log`` says which backend got each request (and its body), in order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import aiohttp
from aiohttp import web

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass(frozen=True)
class Forwarded:
    """One request the proxy passed on: where it went and what the backend answered."""

    backend: str
    path: str
    status: int  # 502 when the backend could not be reached
    body: bytes = b""


class RoundRobinProxy:
    """Forwards every request to the next of ``backends`` (base URLs such as
    ``http://127.0.0.1:8081``) in turn."""

    def __init__(self, backends: list[str]) -> None:
        if not backends:
            raise ValueError("a proxy needs at least one backend")
        self.backends = list(backends)
        self.served: Counter[str] = Counter()
        self.log: list[Forwarded] = []
        self._next = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._port: int | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30), auto_decompress=False
        )
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        self._port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        self._host = host

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def base_url(self) -> str:
        assert self._port is not None, "the proxy is not started"
        return f"http://{self._host}:{self._port}"

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        backend = self.backends[self._next % len(self.backends)]
        self._next += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        body = await request.read()
        try:
            async with self._session.request(
                request.method,
                backend + request.rel_url.path_qs,
                headers=headers,
                data=body,
                allow_redirects=False,
            ) as upstream:
                payload = await upstream.read()
                status = upstream.status
                reply_headers = {
                    k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
                }
        except (aiohttp.ClientError, TimeoutError, OSError):
            self.log.append(Forwarded(backend, request.path, 502, body))
            return web.Response(status=502, text="502 Bad Gateway")
        self.served[backend] += 1
        self.log.append(Forwarded(backend, request.path, status, body))
        return web.Response(status=status, body=payload, headers=reply_headers)
