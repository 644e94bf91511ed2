"""What each dialog state waits for and what each dialog is called: told to a user who sends
something the dialog does not take (app/handlers/dialog_guard.py)."""

from __future__ import annotations

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from babel.support import LazyProxy

from app.fsm.conversations import ChatsDialog
from app.fsm.groups import GroupsDialog
from app.fsm.personas import EditPersonaDialog, ImportPersonaDialog, NewPersonaDialog
from app.fsm.profile import ProfileDialog
from app.fsm.settings import SettingsDialog
from app.fsm.users import UsersDialog

# What each state waits for, told to a user who sends something else. Translated when
# told (lazy_gettext): this table is built at import, before any user's language is known.
_EXPECTED: dict[str | None, LazyProxy] = {
    EditPersonaDialog.browsing.state: __("use the buttons of the persona editor above"),
    EditPersonaDialog.typing_fact.state: __("send the new fact as a text message"),
    EditPersonaDialog.typing_question.state: __("send the question as a text message"),
    EditPersonaDialog.typing_answer.state: __("send the answer as a text message"),
    EditPersonaDialog.confirming_entry.state: __("press Save or Discard above"),
    EditPersonaDialog.typing_entry_text.state: __("send the new text as a text message"),
    EditPersonaDialog.typing_name.state: __("send the new name as a text message"),
    EditPersonaDialog.typing_prompt.state: __("send the new system prompt as a text message"),
    NewPersonaDialog.typing_name.state: __("send a name for the new persona"),
    NewPersonaDialog.typing_prompt.state: __("send the persona's description (its system prompt)"),
    NewPersonaDialog.adding_memory.state: __("press a button above: add a fact, a pair, or Done"),
    NewPersonaDialog.typing_fact.state: __("send the fact as a text message"),
    NewPersonaDialog.typing_question.state: __("send the question as a text message"),
    NewPersonaDialog.typing_answer.state: __("send the answer as a text message"),
    NewPersonaDialog.offering_switch.state: __("press one of the buttons above"),
    ImportPersonaDialog.sending_file.state: __("send the .json file made by /export_persona"),
    SettingsDialog.typing_temperature.state: __("send a temperature from 0 to 2, like 0.7"),
    SettingsDialog.typing_timezone.state: __("send your city or time zone, like Berlin"),
    UsersDialog.typing_limit.state: __("send the budget limit as a number, or 0 for none"),
    GroupsDialog.typing_limit.state: __("send the budget limit as a number, or 0 for none"),
    ChatsDialog.typing_title.state: __("send the conversation's new title"),
    ProfileDialog.typing_fact.state: __("send the fact about you as a text message"),
}

# The steps that wait for free text: a voice message sent there is transcribed and taken as
# that text (app/middlewares/spoken.py). Not the numbers (temperature, limits), not files.
TAKES_SPOKEN_TEXT: frozenset[str | None] = frozenset(
    {
        EditPersonaDialog.typing_fact.state,
        EditPersonaDialog.typing_question.state,
        EditPersonaDialog.typing_answer.state,
        EditPersonaDialog.typing_entry_text.state,
        EditPersonaDialog.typing_name.state,
        EditPersonaDialog.typing_prompt.state,
        NewPersonaDialog.typing_name.state,
        NewPersonaDialog.typing_prompt.state,
        NewPersonaDialog.typing_fact.state,
        NewPersonaDialog.typing_question.state,
        NewPersonaDialog.typing_answer.state,
        ChatsDialog.typing_title.state,
        ProfileDialog.typing_fact.state,
    }
)

# Translators: dialog names follow “You are in”, e.g. “You are in the persona editor”.
_DIALOG_NAMES: dict[str, LazyProxy] = {
    EditPersonaDialog.__full_group_name__: __("the persona editor (/edit_bot)"),
    NewPersonaDialog.__full_group_name__: __("creating a persona (/new_persona)"),
    ImportPersonaDialog.__full_group_name__: __("importing a persona (/import_persona)"),
    SettingsDialog.__full_group_name__: __("the settings (/settings)"),
    UsersDialog.__full_group_name__: __("managing users (/users)"),
    GroupsDialog.__full_group_name__: __("managing groups (/groups)"),
    ChatsDialog.__full_group_name__: __("your conversations (/chats)"),
    ProfileDialog.__full_group_name__: __("what I know about you (/memory)"),
}


def expected_input(state: str) -> str:
    """What the dialog in `state` waits for, in the user's language."""
    expected = _EXPECTED.get(state)
    return str(expected) if expected is not None else _("finish it")


def dialog_name(state: str) -> str:
    """The name of the dialog `state` belongs to, in the user's language."""
    name = _DIALOG_NAMES.get(state.split(":", 1)[0])
    # Translators: follows “You are in”, like the dialog names.
    return str(name) if name is not None else _("a dialog")
