"""The /memory report as text: the request's parts against the budget, and the summary."""

from __future__ import annotations

from aiogram.utils.i18n import gettext as _

from app import texts
from app.domain.memory import MemoryReport


def report_text(report: MemoryReport) -> str:
    b = report.breakdown
    parts = None
    if b is not None:
        parts = [
            (_("persona memory"), b.persona),
            (_("summary"), b.summary),
            (_("recalled messages ({count})").format(count=b.recalled_turns), b.recalled),
            (_("recent messages ({count})").format(count=b.recent_turns), b.recent),
            (_("your newest message"), b.new_message),
        ]
        if b.documents:
            parts.insert(3, (_("parts of your documents"), b.documents))
        if b.profile:
            parts.insert(1, (_("what I know about you"), b.profile))
    return texts.memory_report(
        persona=report.persona,
        mode=report.mode.value,
        stored_turns=report.stored_turns,
        parts=parts,
        limit=b.prompt_limit if b else 0,
        answer_reserve=b.answer_reserve if b else 0,
        tools=b.tools if b else 0,
        summary=report.summary,
    )
