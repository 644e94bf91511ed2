"""The right each dialog needs: a user who loses it leaves the dialog at once."""

from __future__ import annotations

from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import StatesGroup
from aiogram.fsm.storage.base import StorageKey

from app.domain.rights import Right
from app.fsm.conversations import ChatsDialog
from app.fsm.groups import GroupsDialog
from app.fsm.personas import EditPersonaDialog, ImportPersonaDialog, NewPersonaDialog
from app.fsm.profile import ProfileDialog
from app.fsm.settings import SettingsDialog
from app.fsm.users import UsersDialog

# The same rights as the router groups that serve these dialogs (app/handlers/__init__.py).
DIALOG_RIGHTS: dict[type[StatesGroup], Right] = {
    EditPersonaDialog: Right.EDIT_PERSONAS,
    NewPersonaDialog: Right.CREATE_PERSONAS,
    ImportPersonaDialog: Right.CREATE_PERSONAS,
    SettingsDialog: Right.CHAT,
    UsersDialog: Right.ADMIN,
    GroupsDialog: Right.ADMIN,
    ChatsDialog: Right.CHAT,
    ProfileDialog: Right.CHAT,
}
_BY_GROUP = {group.__full_group_name__: right for group, right in DIALOG_RIGHTS.items()}


async def end_dialog_without_right(
    admin_state: FSMContext, user_id: int, rights: frozenset[Right]
) -> bool:
    """Close the dialog `user_id` is in if they no longer have its right (after an admin
    blocked them or revoked it), so that it does not wait for them; True if one closed."""
    key = StorageKey(bot_id=admin_state.key.bot_id, chat_id=user_id, user_id=user_id)
    state = FSMContext(storage=admin_state.storage, key=key)
    current = await state.get_state()
    if current is None:
        return False
    if _BY_GROUP.get(current.split(":", 1)[0], Right.CHAT) in rights:
        return False
    await state.clear()
    return True
