"""All routers, assembled in the order they must see updates, grouped by the right they need.

This is the one place where features are tied to rights: each group is a router whose
filter (`HasRight`) lets an update in only for a user with that right. What a group turns
away falls through to the routers after it, and in the end to `unknown` (a known command
without the right gets "you may not", an admin command the unknown-command answer) and to
`denied` (no access at all, or a button that is not for this user).

What /help, the menus and the unknown-command answer say a command needs is read from
app/commands.py; `get_routers` walks the commands each group's routers take and stops
start-up when that list and these groups disagree, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aiogram import Router

from app import commands
from app.domain.rights import Right
from app.filters import HasRight
from app.handlers import (
    access_request,
    cancel,
    chat,
    chats,
    choose_persona,
    conversation,
    denied,
    dialog_guard,
    document,
    edit_persona,
    errors,
    groups,
    guest,
    help,
    memory,
    new_persona,
    persona_files,
    photo,
    profile,
    settings,
    start,
    stop,
    unknown,
    unsupported,
    usage,
    users,
    voice,
)


class RightGroup(Router):
    """Routers that only users with `right` reach or, not `granted`, only users without it."""

    def __init__(self, right: Right | str, *, granted: bool, name: str) -> None:
        super().__init__(name=name)
        self.right = right
        self.granted = granted


def needing(right: Right | str, *routers: Router, name: str) -> Router:
    """A group of routers for users with `right` only."""
    group = RightGroup(right, granted=True, name=name)
    group.message.filter(HasRight(right))
    group.edited_message.filter(HasRight(right))
    group.callback_query.filter(HasRight(right))
    group.include_routers(*routers)
    return group


def lacking(right: Right, *routers: Router, name: str) -> Router:
    """A group of routers for users without `right` (strangers asking for access)."""
    group = RightGroup(right, granted=False, name=name)
    group.message.filter(~HasRight(right))
    group.callback_query.filter(~HasRight(right))
    group.include_routers(*routers)
    return group


def get_routers(
    plugins: Sequence[tuple[str | None, Router]] = (),
    book: commands.CommandBook | None = None,
) -> list[Router]:
    """Every router in order; `plugins`: the plugins' routers with the right each needs
    (None: anyone), placed after ours and before the conversation, so that their dialogs
    take their steps' text before anything else does."""
    plugin_groups = [
        router if right is None else needing(right, router, name=f"plugin:{router.name}")
        for right, router in plugins
    ]
    routers = [
        # Groups first: whatever a group sends (once addressed to the bot) stops there.
        groups.create_router(),
        guest.create_router(),
        lacking(Right.CHAT, access_request.create_router(), name="strangers"),
        # Anyone may use these, in any state.
        start.create_router(),
        help.create_router(),
        cancel.create_router(),
        needing(
            Right.CHAT,
            stop.create_router(),
            conversation.create_router(),
            chats.create_router(),
            choose_persona.create_router(),
            persona_files.create_export_router(),
            memory.create_router(),
            profile.create_router(),
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
            groups.create_admin_router(),
            name="admin",
        ),
        *plugin_groups,
        # Inside a dialog, what no dialog step took; outside, chat and other content.
        needing(
            Right.CHAT,
            dialog_guard.create_router(),
            chat.create_router(),
            voice.create_router(),
            photo.create_router(),
            document.create_router(),
            unsupported.create_router(),
            name="conversation",
        ),
        # What is left: unknown commands and commands without the right, then everything
        # from users without access.
        unknown.create_router(),
        denied.create_router(),
        # Whatever any of them raised: one sentence to the user, one line in the log.
        errors.create_router(),
    ]
    check_command_rights(routers, book or commands.CommandBook())
    return routers


class CommandRightsMismatch(RuntimeError):
    """app/commands.py and the router groups disagree on a command (a programming error)."""


def check_command_rights(routers: Iterable[Router], book: commands.CommandBook) -> None:
    """Every command a router takes is listed in app/commands.py (or by its plugin) with the
    right of its group (none outside a group), and every listed command has a router."""
    routed: set[str] = set()
    for router in routers:
        group = router if isinstance(router, RightGroup) else None
        right = group.right if group is not None else None
        for name in sorted(commands_of(router)):
            routed.add(name)
            listed = book.by_name.get(name)
            if listed is None:
                raise CommandRightsMismatch(f"/{name} has a router but no line in app/commands.py")
            # A group for users without a right holds their version of an open command
            # (a stranger's /start): the command's own right is checked where it is routed.
            if group is not None and not group.granted:
                continue
            if listed.right != right:
                raise CommandRightsMismatch(
                    f"/{name} is routed for {_holders(right)} but app/commands.py lists it "
                    f"for {_holders(listed.right)}"
                )
    if unrouted := book.known - routed:
        names = ", ".join(f"/{name}" for name in sorted(unrouted))
        raise CommandRightsMismatch(f"app/commands.py lists {names}, which no router takes")


def commands_of(router: Router) -> set[str]:
    """The commands a router and the routers inside it take: aiogram records each handler's
    Command filters (CommandStart included) in its "commands" flag."""
    names = {
        str(command)
        for handler in router.message.handlers
        for command_filter in handler.flags.get("commands", ())
        for command in command_filter.commands
    }
    for sub_router in router.sub_routers:
        names |= commands_of(sub_router)
    return names


def _holders(right: Right | str | None) -> str:
    return "everyone" if right is None else f"users with {right}"
