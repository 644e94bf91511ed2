"""Telegram lets a bot put about 20 messages a minute into one group, edits included; past
that it answers 429 and the bot must wait (Bot API FAQ, "My bot is hitting limits"). A
streamed answer is a message and its edits, so a busy group would soon earn a wait, and the
final answers would pay for it. Here each group's sends and edits of the last minute are
counted in this process: a preview goes out only while enough room stays for the final
messages, and a final message waits (without a 429) for a free slot.

aiogram's session retries a 429 after its retry_after but does not keep a group under the
limit beforehand, and no maintained library paces per chat for the Bot API; this does only
that. With several replicas each counts its own sends: a group is answered by one replica
at a time (its messages queue by the group), so the count is right unless answers of one
group move between replicas within the same minute.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

# Telegram's figure for groups; private chats are far less limited and are not paced.
PER_MINUTE = 20
# Slots previews leave free for final messages.
RESERVE = 6


class ChatPacer:
    def __init__(
        self,
        per_window: int = PER_MINUTE,
        window: float = 60.0,
        reserve: int = RESERVE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_window = per_window
        self.window = window
        self.reserve = min(reserve, per_window - 1)
        # A send is counted here before it reaches Telegram, which counts it on arrival: a
        # slot is free again only a little after a whole window, or the edge could pass.
        self.margin = min(1.0, window * 0.05)
        self.clock = clock
        self._sent: dict[int, deque[float]] = {}

    @staticmethod
    def paced(chat_id: int) -> bool:
        """Groups and supergroups (negative ids) only."""
        return chat_id < 0

    def may_preview(self, chat_id: int) -> bool:
        """Whether a preview may go out now; if so, its slot is taken."""
        if not self.paced(chat_id):
            return True
        sent = self._recent(chat_id)
        if len(sent) >= self.per_window - self.reserve:
            return False
        sent.append(self.clock())
        return True

    async def final_slot(self, chat_id: int) -> None:
        """Wait until a message may go out without passing the limit, and take its slot."""
        if not self.paced(chat_id):
            return
        while True:
            sent = self._recent(chat_id)
            if len(sent) < self.per_window:
                sent.append(self.clock())
                return
            await asyncio.sleep(max(0.05, self.window + self.margin - (self.clock() - sent[0])))

    def _recent(self, chat_id: int) -> deque[float]:
        sent = self._sent.setdefault(chat_id, deque())
        now = self.clock()
        while sent and now - sent[0] >= self.window + self.margin:
            sent.popleft()
        if not sent:
            # Forget quiet groups, or the dict grows with every group ever answered.
            self._sent.pop(chat_id, None)
            sent = self._sent.setdefault(chat_id, deque())
        return sent
