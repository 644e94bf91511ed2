"""A small aiohttp server on 127.0.0.1 for a test: the base of the fake web servers."""

from __future__ import annotations

from typing import Self

from aiohttp import web


class LocalServer:
    """Serves `self.app()` on host:port (0: a free one) until stopped."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.host = "127.0.0.1"
        self.port = 0

    def app(self) -> web.Application:
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        self.host = host
        self.port = int(runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"
