"""Users as an admin sees and changes them (the /users dialog and the `users` command line):
the results of a change, and the changes that cannot be made, each an English sentence for
the command line that the Telegram dialog maps to its own texts."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from app.domain.rights import Right
from app.domain.usage import Limits


class UserStatus(enum.StrEnum):
    """Where a user stands, in the order `list_users` shows them."""

    ADMIN = "admin"
    PENDING = "pending"  # asked for access; an admin has not decided yet
    ALLOWED = "allowed"  # may chat
    NO_ACCESS = "no_access"
    BLOCKED = "blocked"  # no access, and may not ask for it


@dataclass(frozen=True, slots=True)
class Spent:
    """Tokens (in + out) and cost over all models in a period: what the /users list shows."""

    tokens: int = 0
    cost: float = 0.0


@dataclass(frozen=True, slots=True)
class UserSummary:
    """A user as an admin sees them."""

    id: int
    first_name: str  # empty for a user allowed before they ever wrote
    username: str | None
    status: UserStatus
    # What they may do now (admins everything, the others only with chat), and what is
    # granted in the database, which for a user without chat is not in effect yet.
    rights: frozenset[Right]
    granted: frozenset[Right]
    persona_id: int | None  # None: the default persona
    persona_name: str | None
    today: Spent
    month: Spent
    budget: Limits | None  # None: the owner's defaults (BUDGET_*)
    listed_admin: bool  # in ADMIN_IDS: may not be blocked nor lose the admin role
    created_at: datetime
    # Tools' rights granted (a plugin's, an MCP server's); in effect only with chat.
    tool_rights: frozenset[str] = frozenset()

    @property
    def display_name(self) -> str:
        """'Ann @ann', 'Ann', '@ann', or '' for a user who never wrote to the bot."""
        return " ".join(part for part in (self.first_name, _at(self.username)) if part)


class Note(enum.StrEnum):
    """Something an admin should know about a change that was made."""

    CREATED = "created"  # the user had never written to the bot; their record was created
    NEEDS_CHAT = "needs_chat"  # the right is stored but counts only once they have chat
    ADMIN_HAS_ALL = "admin_has_all"  # they are an admin, who may do everything regardless
    EVERYONE_ALLOWED = "everyone_allowed"  # ALLOWED_USER_IDS=* still lets them chat
    LISTED_ALLOWED = "listed_allowed"  # in ALLOWED_USER_IDS: chat comes back at the bot's start
    WAS_ADMIN = "was_admin"  # blocking took their admin role away


@dataclass(frozen=True, slots=True)
class Change:
    """The user after a change; `changed` is False when they already were so."""

    user: UserSummary
    changed: bool
    notes: tuple[Note, ...] = ()


class AdminAction(enum.StrEnum):
    """What was refused to protect an admin."""

    BLOCK = "block"
    REVOKE_ADMIN = "revoke_admin"


class UserAdminError(Exception):
    """A change that cannot be made; the message is one English sentence."""


class UserNotFound(UserAdminError):
    """No user with this id has written to the bot or been allowed."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        super().__init__(
            f"User {user_id} is not known to the bot: they appear once they write to it, "
            "or once you allow them."
        )


class InvalidUserId(UserAdminError):
    """Not a Telegram user id (those are positive whole numbers)."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        super().__init__(f"{user_id} is not a Telegram user id; those are positive numbers.")


class ListedAdmin(UserAdminError):
    """The user is in ADMIN_IDS: the settings, not the database, make them an admin."""

    def __init__(self, user_id: int, action: AdminAction) -> None:
        self.user_id = user_id
        self.action = action
        what = "be blocked" if action is AdminAction.BLOCK else "lose the admin role"
        super().__init__(
            f"User {user_id} is listed in ADMIN_IDS and cannot {what}; remove them from "
            "ADMIN_IDS in .env first."
        )


class LastAdmin(UserAdminError):
    """The change would leave the bot without an admin."""

    def __init__(self, user_id: int, action: AdminAction) -> None:
        self.user_id = user_id
        self.action = action
        what = "be blocked" if action is AdminAction.BLOCK else "lose the admin role"
        super().__init__(
            f"User {user_id} is the last admin and cannot {what}; make someone else an admin first."
        )


class PersonaNotFound(UserAdminError):
    """No persona has this id."""

    def __init__(self, persona_id: int) -> None:
        self.persona_id = persona_id
        super().__init__(f"There is no persona with id {persona_id}.")


class InvalidBudget(UserAdminError):
    """Limits must be positive numbers, and limits need a unit."""


def _at(username: str | None) -> str:
    return f"@{username}" if username else ""
