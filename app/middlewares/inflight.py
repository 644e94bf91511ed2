"""Keeps track of updates being handled, so shutdown can let them finish."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject

log = logging.getLogger(__name__)


class InFlightMiddleware(BaseMiddleware):
    """Outer update middleware: registers each handling task until it ends."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        task = asyncio.current_task()
        if task is None:
            return await handler(event, data)
        self._tasks.add(task)
        try:
            return await handler(event, data)
        finally:
            self._tasks.discard(task)

    @property
    def count(self) -> int:
        return len(self._tasks)

    async def drain(self, grace: float) -> None:
        """Wait up to `grace` seconds for updates in flight, then cancel what is left."""
        current = asyncio.current_task()
        pending = {task for task in self._tasks if task is not current}
        if not pending:
            return
        log.info("Waiting up to %.0f s for %d answer(s) in flight", grace, len(pending))
        _, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            log.warning("Cancelled %d answer(s) still running after %.0f s", len(late), grace)
            await asyncio.wait(late, timeout=1.0)
