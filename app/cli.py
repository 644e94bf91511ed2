"""The owner's command line: users and personas in the bot's database, without the bot.

Needs only DATABASE_URL (and ADMIN_IDS, ALLOWED_USER_IDS to protect admins and explain
changes); never the bot token. Migrates the database first, as the bot does at start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import (
    AccessSettings,
    BudgetSettings,
    DatabaseSettings,
    McpSettings,
    OpenAISettings,
    PluginsSettings,
    SettingsError,
    load_sections,
)
from app.db.engine import create_engine, create_sessionmaker
from app.db.migrate import upgrade
from app.domain.rights import Right, parse_right, parse_tool_right
from app.domain.user_admin import Change, Note, Spent, UserAdminError, UserStatus, UserSummary
from app.mcp.config import load_config
from app.mcp.tools import right_name
from app.memory.tokens import load_counter
from app.memory.window import ContextBudget
from app.plugin_host import PluginHost
from app.services.personas import PersonaError, PersonaService, ensure_default_persona
from app.services.user_admin import UserAdminService

PAGE = 50  # users listed without --all

NOTES: dict[Note, str] = {
    Note.CREATED: "they had never written to the bot, so a record was made for them",
    Note.NEEDS_CHAT: "it counts only once they may chat (users allow {id})",
    Note.ADMIN_HAS_ALL: "as an admin they may still do everything (users revoke {id} admin)",
    Note.EVERYONE_ALLOWED: "ALLOWED_USER_IDS=* still lets them chat; block them to keep them out",
    Note.LISTED_ALLOWED: (
        "they are listed in ALLOWED_USER_IDS, so the bot gives chat back when it starts; "
        "remove them there too"
    ),
    Note.WAS_ADMIN: "they are no longer an admin",
}

STATUS: dict[UserStatus, str] = {
    UserStatus.ADMIN: "admin",
    UserStatus.PENDING: "pending request",
    UserStatus.ALLOWED: "allowed",
    UserStatus.NO_ACCESS: "no access",
    UserStatus.BLOCKED: "blocked",
}


class ToolError(Exception):
    """A command that cannot be done; the message is one sentence for the terminal."""


@dataclass(frozen=True, slots=True)
class UserTool:
    """What the `users` commands need: the database and the access settings."""

    database: DatabaseSettings
    access: AccessSettings
    budget: BudgetSettings  # the currency usage costs are shown in
    plugins: PluginsSettings  # whose rights `grant` and `revoke` know
    mcp: McpSettings  # and the MCP servers' (mcp_<server>)


@dataclass(frozen=True, slots=True)
class PersonaTool:
    """What the `personas` commands need: the database and the model, to count tokens."""

    database: DatabaseSettings
    openai: OpenAISettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app", description="Run the bot (default), or manage it from the shell."
    )
    parser.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    # Also after a command (`migrate --env-file x`); unset there, so the default above holds.
    env_file = argparse.ArgumentParser(add_help=False)
    env_file.add_argument("--env-file", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    def add(
        group: Any, name: str, text: str, handler: Callable[..., Awaitable[str]] | None = None
    ) -> argparse.ArgumentParser:
        command: argparse.ArgumentParser = group.add_parser(name, help=text, parents=[env_file])
        if handler is not None:
            command.set_defaults(handler=handler)
        return command

    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add(commands, "run", "run the bot (the default)")
    add(commands, "migrate", "bring the database to the latest schema")

    users = add(commands, "users", "list users; allow, block; grant and revoke rights")
    actions = users.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = add(actions, "list", f"admins, requests, allowed... (first {PAGE})", users_list)
    listing.add_argument("--all", action="store_true", help="list every user")
    allow = add(actions, "allow", "let a user chat (also before they write)", users_allow)
    block = add(actions, "block", "block a user", users_block)
    rights = ", ".join(right.value for right in Right) + ", or a plugin's right"
    grant = add(actions, "grant", f"grant a right: {rights}", users_grant)
    revoke = add(actions, "revoke", f"revoke a right: {rights}", users_revoke)
    for action in (allow, block, grant, revoke):
        action.add_argument("id", type=_user_id, help="Telegram user id")
    for action in (grant, revoke):
        action.add_argument("right", help=rights)

    personas = add(commands, "personas", "list, export and import personas")
    actions = personas.add_subparsers(dest="action", metavar="ACTION", required=True)
    add(actions, "list", "every persona", personas_list)
    export = add(actions, "export", "a persona as JSON, as /export_persona", personas_export)
    export.add_argument("name", help="the persona's name")
    export.add_argument("-o", "--output", type=Path, help="write to this file (default: stdout)")
    imported = add(actions, "import", "a persona from an exported JSON file", personas_import)
    imported.add_argument("file", type=Path)
    imported.add_argument("--shared", action="store_true", help="every user may choose it")
    return parser


def main(args: argparse.Namespace) -> int:
    """Run a `users` or `personas` command; 0 done, 1 refused or failed, 2 bad settings."""
    try:
        tool: UserTool | PersonaTool
        if args.command == "personas":
            # The key is never used here: the model's name and window count the tokens.
            unused = {"api_key": SecretStr("unused")}
            tool = load_sections(PersonaTool, args.env_file, openai=unused)
        else:
            tool = load_sections(UserTool, args.env_file)
    except SettingsError as exc:
        print(exc.sentence(), file=sys.stderr)
        return 2
    # One-shot commands: their own errors are printed as sentences; library warnings
    # (such as a tokenizer download falling back to the bundled one) would only be noise.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    async def command(session: AsyncSession) -> str:
        if isinstance(tool, PersonaTool):
            return str(await args.handler(session, args, await _persona_service(session, tool)))
        return str(await args.handler(session, args, tool))

    try:
        # Printed once committed: a confirmation is never shown for a change that was lost.
        print(asyncio.run(_run(tool.database.url, command)))
    except (ToolError, UserAdminError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


async def _run(url: str, command: Callable[[AsyncSession], Awaitable[str]]) -> str:
    """Migrate, then run the command in one transaction."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with create_sessionmaker(engine)() as session, session.begin():
            return await command(session)
    except (OSError, SQLAlchemyError) as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise ToolError(f"Cannot use the database at {where}: {_first_line(exc)}.") from exc
    finally:
        await engine.dispose()


# --- users -----------------------------------------------------------------------------------


async def users_list(session: AsyncSession, args: argparse.Namespace, tool: UserTool) -> str:
    users, total = await UserAdminService(tool.access).list_users(
        session, limit=None if args.all else PAGE
    )
    if not users:
        return "No users yet: they appear when they write to the bot, or when you allow them."
    rows = [
        (
            str(user.id),
            user.display_name or "(never wrote)",
            STATUS[user.status],
            _rights(user),
            user.persona_name or "(default)",
            _usage(user.today, tool.budget.currency),
            _usage(user.month, tool.budget.currency),
        )
        for user in users
    ]
    headers = ("ID", "NAME", "STATUS", "RIGHTS", "PERSONA", "TODAY", "THIS MONTH")
    text = table(headers, rows, right={0, 5, 6})
    if len(users) < total:
        text += f"\nShowing {len(users)} of {total} users; --all lists everyone."
    return text


async def users_allow(session: AsyncSession, args: argparse.Namespace, tool: UserTool) -> str:
    change = await UserAdminService(tool.access).allow(session, args.id)
    return _confirm(change, "Allowed {who} to chat", "{who} could already chat")


async def users_block(session: AsyncSession, args: argparse.Namespace, tool: UserTool) -> str:
    change = await UserAdminService(tool.access).block(session, args.id)
    return _confirm(change, "Blocked {who}", "{who} was already blocked")


async def users_grant(session: AsyncSession, args: argparse.Namespace, tool: UserTool) -> str:
    right = _right(args.right, tool)
    change = await _set_right(session, args.id, right, tool, granted=True)
    return _confirm(change, f"Granted {right} to {{who}}", f"{{who}} already had {right}")


async def users_revoke(session: AsyncSession, args: argparse.Namespace, tool: UserTool) -> str:
    right = _right(args.right, tool)
    change = await _set_right(session, args.id, right, tool, granted=False)
    return _confirm(change, f"Revoked {right} from {{who}}", f"{{who}} did not have {right}")


async def _set_right(
    session: AsyncSession, user_id: int, right: Right | str, tool: UserTool, *, granted: bool
) -> Change:
    service = UserAdminService(tool.access)
    if not isinstance(right, Right):  # a tool's right: a name of a plugin's or a server's
        return await service.set_tool_right(session, user_id, right, granted)
    if granted:
        return await service.grant(session, user_id, right)
    return await service.revoke(session, user_id, right)


# --- personas --------------------------------------------------------------------------------


async def personas_list(
    session: AsyncSession, args: argparse.Namespace, service: PersonaService
) -> str:
    personas = await service.list_all(session)
    rows = [
        (
            str(p.id),
            p.name,
            "admins" if p.owner_id is None else str(p.owner_id),
            "default" if p.is_default else "shared" if p.shared else "owner only",
            str(p.entries),
            f"{p.memory_tokens:,}",
        )
        for p in personas
    ]
    return table(("ID", "NAME", "OWNER", "USED BY", "ENTRIES", "TOKENS"), rows, right={0, 4, 5})


async def personas_export(
    session: AsyncSession, args: argparse.Namespace, service: PersonaService
) -> str:
    try:
        ref = await service.find(session, args.name)
    except PersonaError as exc:
        raise ToolError(f"{_sentence(exc)}; python -m app personas list shows them.") from exc
    raw = await service.export(session, ref.id)
    if args.output is None:
        return raw.decode()
    try:
        args.output.write_bytes(raw)
    except OSError as exc:
        raise ToolError(f"Cannot write {args.output}: {exc.strerror or exc}.") from exc
    return f"Exported persona “{ref.name}” to {args.output}."


async def personas_import(
    session: AsyncSession, args: argparse.Namespace, service: PersonaService
) -> str:
    try:
        raw = args.file.read_bytes()
    except OSError as exc:
        raise ToolError(f"Cannot read {args.file}: {exc.strerror or exc}.") from exc
    try:
        # Owned by nobody: the admins' persona, as the default one is.
        ref, entries = await service.import_file(session, None, raw)
        if args.shared:
            await service.set_shared(session, ref.id, True)
    except PersonaError as exc:
        raise ToolError(f"Cannot import {args.file}: {exc}.") from exc
    who = "every user" if args.shared else "the admins"
    return (
        f"Imported persona “{ref.name}” (id {ref.id}) with {entries} memory "
        f"{'entry' if entries == 1 else 'entries'}; {who} may choose it."
    )


async def _persona_service(session: AsyncSession, tool: PersonaTool) -> PersonaService:
    openai = tool.openai
    counter = load_counter(openai.model)
    try:
        budget = ContextBudget.for_model(
            openai.model,
            window=openai.context_window,
            answer_reserve=openai.max_answer_tokens,
            margin=openai.safety_margin_tokens,
        )
    except ValueError as exc:
        raise ToolError(f"{exc}.") from exc
    # As at the bot's start: a persona imported before it ever ran must not take the
    # default persona's name.
    await ensure_default_persona(session, counter)
    return PersonaService(counter, lambda: budget)


# --- output ----------------------------------------------------------------------------------


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()
) -> str:
    """Columns padded to their widest cell, a rule under the headers; `right`: columns
    aligned right (numbers)."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def _confirm(change: Change, done: str, already: str) -> str:
    user = change.user
    who = f"{user.display_name} ({user.id})" if user.display_name else f"user {user.id}"
    sentence = (done if change.changed else already).format(who=who)
    notes = [NOTES[note].format(id=user.id) for note in change.notes]
    return _sentence("; ".join([sentence, *notes])) + "."


def _rights(user: UserSummary) -> str:
    if user.status is UserStatus.ADMIN:
        return "all (admin)"
    rights = [right.value for right in Right if right in user.rights]
    return ", ".join(rights + sorted(user.tool_rights)) or "-"


def _usage(usage: Spent, currency: str) -> str:
    if not usage.tokens and not usage.cost:
        return "-"
    text = f"{usage.tokens:,} tok"
    if usage.cost:
        text += f" {currency}{usage.cost:.2f}" if usage.cost >= 0.01 else f" {currency}<0.01"
    return text


def _right(value: str, tool: UserTool) -> Right | str:
    """A built-in right, or one a plugin in PLUGINS declares (its factory is run to know),
    or an MCP server's of MCP_CONFIG."""
    try:
        return parse_right(value)
    except ValueError as exc:
        known = PluginHost.declared_rights(tool.plugins)
        if tool.mcp.config is not None:
            known |= {
                right_name(server.name): server.name for server in load_config(tool.mcp.config)
            }
        try:
            name = parse_tool_right(value)
        except ValueError:
            name = ""
        if name in known:
            return name
        more = f"; the tools' rights: {', '.join(sorted(known))}" if known else ""
        raise ToolError(_sentence(exc) + more + ".") from exc


def _user_id(value: str) -> int:
    try:
        user_id = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a Telegram user id") from None
    if user_id <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a Telegram user id (positive)")
    return user_id


def _sentence(what: object) -> str:
    text = str(what)
    return text[:1].upper() + text[1:]


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return (str(original).strip().splitlines() or [type(original).__name__])[0].rstrip(".")
