"""All routers, assembled in the order they must see updates, grouped by the right they need.

This is the one place where features are tied to rights: each group is a router whose
filter (`HasRight`) lets an update in only for a user with that right. What a group turns
away falls through to the routers after it, and in the end to `unknown` (a known command
without the right gets "you may not", an admin command the unknown-command answer) and to
`denied` (no access at all, or a button that is not for this user).
"""

from __future__ import annotations

from aiogram import Router

from app.filters import HasRight
from app.handlers import (
    access_request,
    cancel,
    chat,
    choose_persona,
    conversation,
    denied,
    dialog_guard,
    edit_persona,
    help,
    memory,
    new_persona,
    persona_files,
    settings,
    start,
    unknown,
    unsupported,
    usage,
    users,
)
from app.rights import Right


def needing(right: Right, *routers: Router, name: str) -> Router:
    """A group of routers for users with `right` only."""
    group = Router(name=name)
    group.message.filter(HasRight(right))
    group.edited_message.filter(HasRight(right))
    group.callback_query.filter(HasRight(right))
    group.include_routers(*routers)
    return group


def lacking(right: Right, *routers: Router, name: str) -> Router:
    """A group of routers for users without `right` (strangers asking for access)."""
    group = Router(name=name)
    group.message.filter(~HasRight(right))
    group.callback_query.filter(~HasRight(right))
    group.include_routers(*routers)
    return group


def get_routers() -> list[Router]:
    return [
        lacking(Right.CHAT, access_request.create_router(), name="strangers"),
        # Anyone may use these, in any state.
        start.create_router(),
        help.create_router(),
        cancel.create_router(),
        needing(
            Right.CHAT,
            conversation.create_router(),
            choose_persona.create_router(),
            persona_files.create_export_router(),
            memory.create_router(),
            settings.create_router(),
            usage.create_router(),
            name="chat",
        ),
        needing(Right.EDIT_PERSONAS, edit_persona.create_router(), name="edit_personas"),
        needing(
            Right.CREATE_PERSONAS,
            new_persona.create_router(),
            persona_files.create_import_router(),
            name="create_personas",
        ),
        needing(
            Right.ADMIN,
            users.create_router(),
            access_request.create_admin_router(),
            name="admin",
        ),
        # Inside a dialog, what no dialog step took; outside, chat and other content.
        needing(
            Right.CHAT,
            dialog_guard.create_router(),
            chat.create_router(),
            unsupported.create_router(),
            name="conversation",
        ),
        # What is left: unknown commands and commands without the right, then everything
        # from users without access.
        unknown.create_router(),
        denied.create_router(),
    ]
