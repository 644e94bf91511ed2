"""/export_persona sends the persona as JSON; /import_persona recreates one from such a file."""

from __future__ import annotations

import io
import re

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, Message
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.domain.users import Preferences, UserContext
from app.fsm.personas import ImportPersonaDialog
from app.services.personas import IMPORT_MAX_BYTES, PersonaError, PersonaService


async def export_persona(
    message: Message,
    session: AsyncSession,
    user: UserContext,
    preferences: Preferences,
    personas: PersonaService,
) -> None:
    view = await personas.view(session, preferences.persona.id)
    if not personas.can_edit(user, view):
        await message.answer(texts.cannot_edit(view.name))
        return
    filename = "persona-" + (re.sub(r"[^\w-]+", "-", view.name).strip("-") or "export") + ".json"
    document = BufferedInputFile(await personas.export(session, view.id), filename=filename)
    await message.answer_document(document, caption=texts.export_caption(view.name))


async def ask_for_file(message: Message, state: FSMContext) -> None:
    await message.answer(texts.import_ask())
    await state.set_state(ImportPersonaDialog.sending_file)


async def import_persona(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    user: UserContext,
    personas: PersonaService,
    bot: Bot,
) -> None:
    document = message.document
    if document is None:
        return
    if (document.file_size or 0) > IMPORT_MAX_BYTES:
        await message.answer(texts.import_failed(texts.import_too_large(IMPORT_MAX_BYTES // 1024)))
        return
    buffer = io.BytesIO()
    await bot.download(document, destination=buffer)
    try:
        ref, entries = await personas.import_file(session, user.id, buffer.getvalue())
    except PersonaError as exc:
        await session.rollback()
        await message.answer(texts.import_failed(str(exc)))
        return
    await state.clear()
    await message.answer(texts.imported(ref.name, entries))


def create_export_router() -> Router:
    router = Router(name=__name__ + ".export")
    router.message.register(export_persona, Command("export_persona"))
    return router


def create_import_router() -> Router:
    """Importing creates a persona: it needs the right to create them."""
    router = Router(name=__name__ + ".import")
    router.message.register(ask_for_file, Command("import_persona"), StateFilter(None))
    router.message.register(
        import_persona, StateFilter(ImportPersonaDialog.sending_file), F.document
    )
    return router
