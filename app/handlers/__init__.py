"""All routers, assembled in the order they must see updates."""

from __future__ import annotations

from aiogram import Router

from app.handlers import cancel, chat, conversation, denied, help, start, unknown, unsupported


def get_routers() -> list[Router]:
    return [
        # Anyone may use these.
        start.create_router(),
        help.create_router(),
        cancel.create_router(),
        # Only users with access; each router filters itself.
        conversation.create_router(),
        chat.create_router(),
        unsupported.create_router(),
        # What is left: unknown commands, then everything from users without access.
        unknown.create_router(),
        denied.create_router(),
    ]
