"""Every button's callback data, with short prefixes (Telegram allows 64 bytes)."""

from __future__ import annotations

import enum

from aiogram.filters.callback_data import CallbackData

from app.domain.enums import MemoryMode


class EditorAction(enum.StrEnum):
    """Buttons of the persona editor's main screen."""

    PAGE = "pg"
    OPEN = "op"
    ADD_FACT = "af"
    ADD_QA = "aq"
    NAME = "nm"
    PROMPT = "pr"
    SHARE = "sh"
    CLOSE = "cl"
    BACK = "bk"
    SAVE = "sv"
    DISCARD = "ds"


class EntryAction(enum.StrEnum):
    """Buttons of one memory entry."""

    EDIT = "ed"
    EDIT_ANSWER = "ea"
    UP = "up"
    DOWN = "dn"
    DELETE = "dl"
    DELETE_YES = "dy"


class EditorButton(CallbackData, prefix="pe"):
    """A button of the persona editor (/edit_bot)."""

    action: EditorAction
    persona_id: int
    page: int = 0
    entry_id: int = 0


class EntryButton(CallbackData, prefix="pn"):
    """A button on one memory entry in the editor."""

    action: EntryAction
    persona_id: int
    entry_id: int


class NewPersonaAction(enum.StrEnum):
    """Buttons of the /new_persona dialog."""

    ADD_FACT = "af"
    ADD_QA = "aq"
    DONE = "dn"
    SWITCH = "sw"
    STAY = "st"


class NewPersonaButton(CallbackData, prefix="np"):
    """A button of the /new_persona dialog."""

    action: NewPersonaAction
    persona_id: int = 0


class PersonaChoice(CallbackData, prefix="ps"):
    """A persona in the /persona list."""

    persona_id: int


class ModeChoice(CallbackData, prefix="md"):
    """A memory mode in the /mode menu."""

    mode: MemoryMode


class ForgetButton(CallbackData, prefix="fg"):
    """The /forget confirmation: which conversation, and whether to delete it."""

    conversation_id: int
    confirm: bool


class ForgetStep(enum.StrEnum):
    """The steps of forgetting everything about the user, from /forget."""

    ASK = "a"  # show what would be deleted
    YES = "y"
    NO = "n"


class ForgetAllButton(CallbackData, prefix="fa"):
    """/forget's "everything you know about me": the profile and every private conversation."""

    step: ForgetStep


class ProfileAction(enum.StrEnum):
    """Buttons under the profile in /memory."""

    DELETE = "d"
    ADD = "a"


class ProfileButton(CallbackData, prefix="pf"):
    """Delete one fact of the user's profile (its id, checked to be theirs), or add one."""

    action: ProfileAction
    fact_id: int = 0


class ChatsAction(enum.StrEnum):
    """Buttons of the /chats list."""

    PAGE = "pg"
    OPEN = "op"
    RENAME = "rn"
    DELETE = "dl"
    DELETE_YES = "dy"
    CLOSE = "cl"


class ChatsButton(CallbackData, prefix="ch"):
    """A button of /chats: which conversation, and the page the list was on."""

    action: ChatsAction
    conversation_id: int = 0
    page: int = 0


class ContinueButton(CallbackData, prefix="go"):
    """Continue an answer cut at the length limit; `answer_id` is the stored answer."""

    answer_id: int


class AccessAsk(CallbackData, prefix="ar"):
    """A stranger's "Request access" button under /start."""

    ask: bool = True


class GroupDecision(CallbackData, prefix="gd"):
    """An admin's Approve / Deny of a group the bot was added to."""

    chat_id: int
    approve: bool


class GroupsButton(CallbackData, prefix="gs"):
    """Allow or block a group in /groups."""

    chat_id: int
    allow: bool


class GroupPersona(CallbackData, prefix="gp"):
    """The persona a group talks to, in /groups: 0 opens the list, else the one chosen."""

    chat_id: int
    persona_id: int = 0


class GroupCardAction(enum.StrEnum):
    """Buttons of a group's card in /groups."""

    OPEN = "op"
    MEMBERS = "mb"
    UNIT = "un"
    LIMIT = "lm"
    BACK = "bk"


class GroupCard(CallbackData, prefix="gc"):
    """A group's card in /groups: open it, who may talk (a GroupMembers value, empty for the
    owner's default), the budget's unit (a BudgetUnit value, empty for no limit of its own),
    a limit to type (daily or monthly), or back to the list. Every value is checked when
    pressed; a forged one is refused."""

    chat_id: int
    action: GroupCardAction = GroupCardAction.OPEN
    value: str = ""


class AccessDecision(CallbackData, prefix="ad"):
    """An admin's Approve / Deny under an access request."""

    request_id: int
    approve: bool


class SettingsSection(enum.StrEnum):
    """The parts of /settings."""

    MENU = "m"
    PERSONA = "p"
    MODEL = "o"
    TEMPERATURE = "t"
    LENGTH = "l"
    REASONING = "r"
    VOICE = "v"
    MODE = "d"
    RECALL = "c"
    LANGUAGE = "g"
    PROFILE = "f"
    TIMEZONE = "z"
    CLOSE = "x"


class SettingsButton(CallbackData, prefix="st"):
    """A /settings button: open a section (no value) or choose a value in it.

    Values are short codes checked when pressed (a persona id, an index into the owner's
    model list, a temperature, a length, a reasoning display, a mode, a language, a time
    zone); a forged one is refused."""

    section: SettingsSection
    value: str = ""


class UsersAction(enum.StrEnum):
    """Buttons of the admins' /users dialog."""

    LIST = "ls"
    OPEN = "op"
    ALLOW = "al"
    BLOCK = "bl"
    GRANT = "gr"
    REVOKE = "rv"
    PERSONAS = "ps"
    SET_PERSONA = "sp"
    BUDGET = "bg"
    UNIT = "un"
    LIMIT = "lm"
    DEFAULTS = "df"
    CLOSE = "cl"


class UsersButton(CallbackData, prefix="us"):
    """A /users button: the action, the user it is about and the list page to return to.

    Only admins get past the router group these buttons belong to, so the user id in it
    cannot be turned into an admin action by anyone else; every value is checked again."""

    action: UsersAction
    user_id: int = 0
    page: int = 0
    value: str = ""


class GroupSettingField(enum.StrEnum):
    """What a button of a group's /settings is about."""

    PERSONA = "p"
    LANGUAGE = "l"
    LISTEN = "h"
    LENGTH = "n"
    BACK = "b"
    CLOSE = "c"


class GroupSetting(CallbackData, prefix="gt"):
    """A button of a group's /settings, in the group. No chat id: the group is the chat the
    button is pressed in, and who presses it is checked on every press. An empty value
    opens the setting's choices."""

    field: GroupSettingField
    value: str = ""
