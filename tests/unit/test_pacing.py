"""The per-group pacing of sends and edits (app/delivery/pacing.py), on a clock of our own."""

from __future__ import annotations

import asyncio

from app.delivery.pacing import ChatPacer

GROUP = -100


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_previews_stop_while_room_is_left_for_final_messages() -> None:
    clock = Clock()
    pacer = ChatPacer(per_window=20, window=60, reserve=6, clock=clock)
    assert [pacer.may_preview(GROUP) for _ in range(16)] == [True] * 14 + [False] * 2
    clock.now = 61.0  # the minute (and the margin for the way to Telegram) has passed
    assert pacer.may_preview(GROUP)


def test_private_chats_are_never_paced() -> None:
    pacer = ChatPacer(per_window=2, window=60, reserve=1, clock=Clock())
    assert all(pacer.may_preview(42) for _ in range(100))


async def test_a_final_message_waits_for_a_slot_instead_of_passing_the_limit() -> None:
    pacer = ChatPacer(per_window=3, window=0.3, reserve=1)
    for _ in range(3):
        await pacer.final_slot(GROUP)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await pacer.final_slot(GROUP)
    assert loop.time() - started >= 0.25  # waited for the oldest to leave the window
    assert len(pacer._sent[GROUP]) <= 3
