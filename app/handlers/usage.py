"""/usage: what the user has spent today and this month, and what their budget leaves."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.users import UserContext
from app.services.usage import UsageService
from app.views.usage import usage_text


async def show_usage(
    message: Message, user: UserContext, session: AsyncSession, usage: UsageService
) -> None:
    report = await usage.report(session, user)
    await message.answer(usage_text(report))


def create_router() -> Router:
    router = Router(name=__name__)
    # Every chat message passes here on its way to the chat router: one check of the name.
    router.message.filter(Command("usage"))
    # Named on the handler too: that is where app/handlers/__init__.py finds the commands.
    router.message.register(show_usage, Command("usage"))
    return router
