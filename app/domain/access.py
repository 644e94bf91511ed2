"""Who asks the admins for access, as the admins see them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks, as the admins see them."""

    id: int
    first_name: str
    last_name: str | None
    username: str | None
    language_code: str | None
