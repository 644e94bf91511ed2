"""Model names matched to a table by their longest known prefix."""

from __future__ import annotations

from collections.abc import Iterable


def longest_prefix(model: str, prefixes: Iterable[str]) -> str | None:
    """The longest of `prefixes` that `model` starts with, or None.

    The longest wins so that a dated snapshot ("gpt-4o-2024-08-06") takes its family's entry
    while a sibling with a longer name ("gpt-4o-mini", "o3-mini") keeps its own.
    """
    matches = [prefix for prefix in prefixes if model.startswith(prefix)]
    return max(matches, key=len) if matches else None
