"""Plain references to records, passed between services and handlers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PersonaRef:
    """A persona's identity, without its memory; `revision` changes with every edit."""

    id: int
    name: str
    revision: int = 0
