"""Telegram is told that an update arrived only once the update has its place in its
user's order, so that an update Telegram sends after it cannot overtake it.

The webhook answers Telegram at once and handles the update in a task; a later update of
the same user may reach another process and take its place in the user's queue (ordered by
update id) before this task ran that far, and be answered first. So the webhook waits (a
moment, bounded) for the task to say so, through a context variable the task inherits."""

from __future__ import annotations

import asyncio
import contextvars

_placed: contextvars.ContextVar[asyncio.Future[None] | None] = contextvars.ContextVar(
    "update_placed", default=None
)


def expect_placement() -> tuple[asyncio.Future[None], contextvars.Context]:
    """A future resolved once the update handled in the returned context has its place."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    context = contextvars.copy_context()
    context.run(_placed.set, future)
    return future, context


def placed() -> None:
    """The update being handled has its place in its user's order (or needs none)."""
    future = _placed.get()
    if future is not None and not future.done():
        future.set_result(None)
