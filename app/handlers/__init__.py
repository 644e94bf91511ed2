"""All routers, assembled in the order they must see updates."""

from __future__ import annotations

from aiogram import Router

from app.handlers import (
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
    start,
    unknown,
    unsupported,
)


def get_routers() -> list[Router]:
    return [
        # Anyone may use these, in any state.
        start.create_router(),
        help.create_router(),
        cancel.create_router(),
        # Only users with access; each router filters itself.
        conversation.create_router(),
        choose_persona.create_router(),
        edit_persona.create_router(),
        new_persona.create_router(),
        persona_files.create_router(),
        memory.create_router(),
        # Inside a dialog, what no dialog step took; outside, chat and other content.
        dialog_guard.create_router(),
        chat.create_router(),
        unsupported.create_router(),
        # What is left: unknown commands, then everything from users without access.
        unknown.create_router(),
        denied.create_router(),
    ]
