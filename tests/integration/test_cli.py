"""The owner's command line: `python -m app users ...` and `personas ...` on the bot's database.

Run in-process through `main([...])`, one subprocess without the bot's settings, and once
against PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.__main__ import main
from app.db.engine import create_engine, create_sessionmaker
from app.db.migrate import upgrade
from app.db.models import AccessRequest, MemoryEntry, Persona, Usage, User
from app.domain.enums import MemoryKind, Role
from app.domain.rights import Right


class Cli:
    """Runs `python -m app` in-process on one database and answers (exit code, out, err)."""

    def __init__(self, url: str, env_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.url = url
        self.env_file = env_file
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        try:
            code = main(["--env-file", str(self.env_file), *args])
        except SystemExit as exit_:  # argparse's usage errors
            code = int(exit_.code or 0)
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *args: str) -> str:
        code, out, err = self(*args)
        assert (code, err) == (0, ""), err
        return out

    def db(self, work: Callable[[AsyncSession], Coroutine[Any, Any, Any]]) -> Any:
        """Do something in the database (migrated first) and return its result."""

        async def run() -> Any:
            engine = create_engine(self.url)
            try:
                await upgrade(engine)
                async with create_sessionmaker(engine)() as session, session.begin():
                    return await work(session)
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def add(self, *rows: Any) -> None:
        async def work(session: AsyncSession) -> None:
            for row in rows:
                session.add(row)
                await session.flush()

        self.db(work)

    def user(self, user_id: int) -> User | None:
        async def work(session: AsyncSession) -> User | None:
            return await session.get(User, user_id)

        return self.db(work)  # type: ignore[no-any-return]


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what the command line reads; the bot's own settings are left unset."""
    for name in ("NEW_USER_RIGHTS", "BUDGET_CURRENCY", "BUDGET_UNIT"):
        monkeypatch.delenv(name, raising=False)
    # A model tiktoken does not know: counted with the bundled vocabulary, no download.
    monkeypatch.setenv("OPENAI_MODEL", "test-model")
    monkeypatch.setenv("OPENAI_CONTEXT_WINDOW", "16000")


@pytest.fixture
def cli(
    settings_env: None,
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Cli]:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    yield Cli(sqlite_url, tmp_path / "absent.env", capsys)


def persona_file(tmp_path: Path, name: str = "Pirate", **values: Any) -> Path:
    path = tmp_path / f"{name}.json"
    document = {
        "format": "telegram-bot-assistant/persona",
        "version": 1,
        "name": name,
        "system_prompt": "You are a pirate.",
        "memory": [
            {"kind": "fact", "text": "Has a parrot."},
            {"kind": "qa", "text": "Where is the gold?", "answer": "Buried, arr."},
        ],
        **values,
    }
    path.write_text(json.dumps(document))
    return path


# --- users list ------------------------------------------------------------------------------


def test_users_list_on_a_fresh_database_migrates_and_says_there_are_none(cli: Cli) -> None:
    assert cli.ok("users", "list").startswith("No users yet")


def test_users_list_is_a_table_with_status_rights_persona_and_usage(cli: Cli) -> None:
    today = datetime.now(UTC).date()
    cli.add(
        Persona(id=5, name="Pirate", system_prompt="Arr."),
        User(id=1000, first_name="Owner", username="boss", role=Role.ADMIN),
        User(id=42, first_name="Ann", has_access=True, persona_id=5),
        User(id=43, first_name="Bob"),
        AccessRequest(user_id=43),
        Usage(user_id=42, day=today, model="m", prompt_tokens=1000, completion_tokens=234, cost=2),
    )
    lines = cli.ok("users", "list").splitlines()
    assert lines[0].split() == [
        "ID",
        "NAME",
        "STATUS",
        "RIGHTS",
        "PERSONA",
        "TODAY",
        "THIS",
        "MONTH",
    ]
    assert set(lines[1]) == {"-", " "}
    owner, bob, ann = lines[2:]  # admins, pending requests, allowed
    assert "Owner @boss" in owner and "admin" in owner and "all (admin)" in owner
    assert "allowed" in ann and "chat, create_personas, edit_personas" in ann
    assert "Pirate" in ann and ann.count("1,234 tok $2.00") == 2
    assert "pending request" in bob and "(default)" in bob


def test_users_list_shows_fifty_users_unless_all(cli: Cli) -> None:
    cli.add(*(User(id=i, first_name=f"U{i}") for i in range(1, 56)))
    page = cli.ok("users", "list").splitlines()
    everyone = cli.ok("users", "list", "--all").splitlines()
    assert len(page) == 2 + 50 + 1
    assert page[-1] == "Showing 50 of 55 users; --all lists everyone."
    assert len(everyone) == 2 + 55


# --- allow and block -------------------------------------------------------------------------


def test_allow_creates_a_user_who_never_wrote(cli: Cli) -> None:
    out = cli.ok("users", "allow", "777")
    row = cli.user(777)
    assert out == (
        "Allowed user 777 to chat; they had never written to the bot, so a record was made "
        "for them.\n"
    )
    assert row is not None and row.has_access and not row.blocked


def test_allow_of_a_blocked_user_unblocks_them(cli: Cli) -> None:
    cli.add(User(id=5, first_name="Eve", username="eve", blocked=True))
    assert cli.ok("users", "allow", "5") == "Allowed Eve @eve (5) to chat.\n"
    row = cli.user(5)
    assert row is not None and (row.has_access, row.blocked) == (True, False)


def test_allow_twice_says_they_could_already(cli: Cli) -> None:
    cli.ok("users", "allow", "5")
    assert cli.ok("users", "allow", "5") == "User 5 could already chat.\n"


@pytest.mark.parametrize("bad", ["abc", "0", "-5"])
def test_a_user_id_that_is_not_one_is_a_usage_error(cli: Cli, bad: str) -> None:
    code, _, err = cli("users", "allow", bad)
    assert code == 2
    assert "is not a Telegram user id" in err


def test_block_takes_access_away_and_blocks(cli: Cli) -> None:
    cli.add(User(id=5, first_name="Eve", has_access=True))
    assert cli.ok("users", "block", "5") == "Blocked Eve (5).\n"
    row = cli.user(5)
    assert row is not None and (row.has_access, row.blocked) == (False, True)


def test_block_of_an_unknown_user_fails(cli: Cli) -> None:
    code, out, err = cli("users", "block", "404")
    assert (code, out) == (1, "")
    assert err.startswith("User 404 is not known to the bot")
    assert err.count("\n") == 1


def test_block_of_an_admin_in_admin_ids_is_refused(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_IDS", "1000,1001")
    cli.add(User(id=1000, role=Role.ADMIN), User(id=1001, role=Role.ADMIN))
    code, _, err = cli("users", "block", "1000")
    assert code == 1
    assert "User 1000 is listed in ADMIN_IDS and cannot be blocked" in err
    assert cli.user(1000).blocked is False  # type: ignore[union-attr]


def test_block_of_the_last_admin_is_refused(cli: Cli) -> None:
    cli.add(User(id=1000, role=Role.ADMIN))
    code, _, err = cli("users", "block", "1000")
    assert code == 1
    assert "User 1000 is the last admin" in err


# --- grant and revoke ------------------------------------------------------------------------


@pytest.mark.parametrize("right", list(Right))
def test_grant_then_revoke_each_right(cli: Cli, right: Right) -> None:
    cli.add(
        User(id=1000, role=Role.ADMIN),  # so that revoking admin is not of the last admin
        User(
            id=5,
            has_access=right is not Right.CHAT,
            can_create_personas=False,
            can_edit_personas=False,
        ),
    )
    granted = cli.ok("users", "grant", "5", right.value)
    revoked = cli.ok("users", "revoke", "5", right.value)
    assert granted == f"Granted {right} to user 5.\n"
    assert revoked == f"Revoked {right} from user 5.\n"


def test_rights_are_accepted_with_hyphens(cli: Cli) -> None:
    cli.add(User(id=5, has_access=True, can_create_personas=False))
    assert cli.ok("users", "grant", "5", "Create-Personas") == (
        "Granted create_personas to user 5.\n"
    )
    assert cli.user(5).can_create_personas is True  # type: ignore[union-attr]


def test_grant_of_a_right_without_chat_says_it_counts_only_with_chat(cli: Cli) -> None:
    cli.add(User(id=5, can_edit_personas=False))
    assert cli.ok("users", "grant", "5", "edit_personas") == (
        "Granted edit_personas to user 5; it counts only once they may chat (users allow 5).\n"
    )


def test_grant_to_a_user_who_never_wrote_creates_them(cli: Cli) -> None:
    assert cli.ok("users", "grant", "9", "admin").startswith("Granted admin to user 9; they had")
    assert cli.user(9).role is Role.ADMIN  # type: ignore[union-attr]


def test_grant_of_a_right_they_have_says_so(cli: Cli) -> None:
    cli.add(User(id=5, has_access=True, can_create_personas=True))
    assert cli.ok("users", "grant", "5", "create_personas") == (
        "User 5 already had create_personas.\n"
    )


def test_revoke_chat_leaves_no_access_not_blocked(cli: Cli) -> None:
    cli.add(User(id=5, has_access=True))
    cli.ok("users", "revoke", "5", "chat")
    row = cli.user(5)
    assert row is not None and (row.has_access, row.blocked) == (False, False)


def test_an_unknown_right_fails_with_the_list_of_rights(cli: Cli) -> None:
    cli.add(User(id=5))
    code, out, err = cli("users", "grant", "5", "superpowers")
    assert (code, out) == (1, "")
    assert err == (
        "Unknown right 'superpowers'; the rights are: chat, create_personas, edit_personas, "
        "admin; the tools' rights: images.\n"  # the default PLUGINS' (the images plugin's)
    )


def test_revoke_admin_of_a_user_in_admin_ids_is_refused(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_IDS", "1000")
    cli.add(User(id=1000, role=Role.ADMIN), User(id=1001, role=Role.ADMIN))
    code, _, err = cli("users", "revoke", "1000", "admin")
    assert code == 1
    assert err == (
        "User 1000 is listed in ADMIN_IDS and cannot lose the admin role; remove them from "
        "ADMIN_IDS in .env first.\n"
    )
    assert cli.user(1000).role is Role.ADMIN  # type: ignore[union-attr]


def test_revoke_of_an_unknown_user_fails(cli: Cli) -> None:
    code, _, err = cli("users", "revoke", "404", "chat")
    assert code == 1
    assert err.startswith("User 404 is not known")


def test_users_without_an_action_is_a_usage_error(cli: Cli) -> None:
    code, _, err = cli("users")
    assert code == 2
    assert "ACTION" in err


# --- personas --------------------------------------------------------------------------------


def test_personas_list_has_the_default_persona_on_a_fresh_database(cli: Cli) -> None:
    lines = cli.ok("personas", "list").splitlines()
    assert lines[0].split() == ["ID", "NAME", "OWNER", "USED", "BY", "ENTRIES", "TOKENS"]
    assert lines[2].split()[1:5] == ["Assistant", "admins", "default", "0"]


def test_personas_list_counts_entries_and_tokens(cli: Cli) -> None:
    cli.ok("personas", "list")
    cli.add(
        Persona(id=7, name="Pirate", system_prompt="Arr.", system_message_tokens=20, owner_id=42),
        MemoryEntry(persona_id=7, kind=MemoryKind.FACT, text="Parrot.", position=1, token_count=3),
        MemoryEntry(
            persona_id=7, kind=MemoryKind.QA, text="Q", answer="A", position=2, token_count=11
        ),
    )
    pirate = cli.ok("personas", "list").splitlines()[3].split()
    assert pirate == ["7", "Pirate", "42", "owner", "only", "2", "31"]


def test_export_writes_json_to_stdout(cli: Cli) -> None:
    document = json.loads(cli.ok("personas", "export", "assistant"))
    assert document["format"] == "telegram-bot-assistant/persona"
    assert document["name"] == "Assistant"


def test_export_to_a_file(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    out = cli.ok("personas", "export", "Assistant", "-o", str(target))
    assert out == f"Exported persona “Assistant” to {target}.\n"
    assert json.loads(target.read_text())["name"] == "Assistant"


def test_export_of_an_unknown_persona_fails(cli: Cli) -> None:
    code, out, err = cli("personas", "export", "Nobody")
    assert (code, out) == (1, "")
    assert err == "No persona is named “Nobody”; python -m app personas list shows them.\n"


def test_export_to_an_unwritable_place_fails(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("personas", "export", "Assistant", "-o", str(tmp_path / "no" / "x.json"))
    assert code == 1
    assert err.startswith("Cannot write ")


def test_import_creates_an_admins_persona_with_its_memory(cli: Cli, tmp_path: Path) -> None:
    out = cli.ok("personas", "import", str(persona_file(tmp_path)))
    assert out.startswith("Imported persona “Pirate” (id 2) with 2 memory entries")

    async def pirate(session: AsyncSession) -> Persona | None:
        return await session.get(Persona, 2)

    persona = cli.db(pirate)
    assert persona is not None
    assert (persona.owner_id, persona.shared) == (None, False)
    assert persona.system_message_tokens > 0


def test_import_shared(cli: Cli, tmp_path: Path) -> None:
    out = cli.ok("personas", "import", str(persona_file(tmp_path)), "--shared")
    assert out.endswith("every user may choose it.\n")


def test_export_then_import_round_trips_under_a_numbered_name(cli: Cli, tmp_path: Path) -> None:
    cli.ok("personas", "import", str(persona_file(tmp_path)))
    exported = tmp_path / "exported.json"
    cli.ok("personas", "export", "Pirate", "-o", str(exported))
    out = cli.ok("personas", "import", str(exported))
    assert out.startswith("Imported persona “Pirate 2”")
    again = json.loads(cli.ok("personas", "export", "Pirate 2"))
    assert again == {**json.loads(exported.read_text()), "name": "Pirate 2"}


def test_import_of_a_bad_file_fails_with_the_reason(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    code, out, err = cli("personas", "import", str(bad))
    assert (code, out) == (1, "")
    assert err == f"Cannot import {bad}: the file is not JSON.\n"


def test_import_of_a_file_of_another_kind_names_the_field(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("personas", "import", str(persona_file(tmp_path, format="other")))
    assert code == 1
    assert "it is not a persona export (format:" in err


def test_import_of_a_missing_file_fails(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("personas", "import", str(tmp_path / "missing.json"))
    assert code == 1
    assert err == f"Cannot read {tmp_path / 'missing.json'}: No such file or directory.\n"


# --- settings and processes ------------------------------------------------------------------


def test_a_bad_database_url_is_a_settings_error(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://nope")
    code, _, err = cli("users", "list")
    assert code == 2
    assert "DATABASE_URL is not valid" in err


def test_the_env_file_is_read_and_may_follow_the_command(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL")
    env_file = tmp_path / "owner.env"
    env_file.write_text(f"DATABASE_URL={cli.url}\nADMIN_IDS=1000\n")
    cli.add(User(id=1000, role=Role.ADMIN), User(id=1001, role=Role.ADMIN))
    code, _, err = cli("users", "block", "1000", "--env-file", str(env_file))
    assert code == 1
    assert "listed in ADMIN_IDS" in err


def test_an_unreachable_database_fails_in_one_sentence(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    code, _, err = cli("users", "list")
    assert code == 1
    assert err.startswith("Cannot use the database at postgresql+asyncpg://nobody@127.0.0.1:1/")
    assert err.count("\n") == 1


def test_users_list_runs_as_a_process_without_the_bot_settings(
    settings_env: None, sqlite_url: str, repo_root: Path, tmp_path: Path
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "OPENAI_", "DATABASE_"))
    }
    env["DATABASE_URL"] = sqlite_url
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "--env-file",
            str(tmp_path / "absent.env"),
            "users",
            "allow",
            "5",
        ],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    listed = subprocess.run(
        [sys.executable, "-m", "app", "--env-file", str(tmp_path / "absent.env"), "users", "list"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (listed.returncode, listed.stderr) == (0, "")
    assert listed.stdout.splitlines()[2].split()[:3] == ["5", "(never", "wrote)"]


def test_the_commands_on_postgresql(
    settings_env: None,
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    cli = Cli(postgres_url, tmp_path / "absent.env", capsys)
    cli.ok("users", "grant", "1000", "admin")
    cli.ok("users", "allow", "42")
    cli.ok("users", "grant", "42", "create-personas")
    cli.ok("users", "revoke", "42", "edit_personas")
    today = datetime.now(UTC).date()
    cli.add(Usage(user_id=42, day=today, model="m", prompt_tokens=5, completion_tokens=7, cost=0))
    lines = cli.ok("users", "list").splitlines()
    assert lines[2].split()[:3] == ["1000", "(never", "wrote)"]
    assert "allowed" in lines[3] and "chat, create_personas" in lines[3]
    assert lines[3].count("12 tok") == 2
    assert cli("users", "block", "1000")[0] == 1  # the last admin
    cli.ok("users", "block", "42")
    cli.ok("personas", "import", str(persona_file(tmp_path)))
    cli.ok("personas", "export", "pirate", "-o", str(tmp_path / "out.json"))
    assert cli.ok("personas", "import", str(tmp_path / "out.json")).startswith(
        "Imported persona “Pirate 2”"
    )
    assert "Pirate 2" in cli.ok("personas", "list")


def test_a_plugins_right_is_granted_and_revoked_by_name(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example plugin (installed in the test environment) declares the right "dice"."""
    monkeypatch.setenv("PLUGINS", "dice")
    cli.add(User(id=5, has_access=True))
    assert cli.ok("users", "grant", "5", "dice") == "Granted dice to user 5.\n"
    assert cli.user(5).tool_rights == "dice"  # type: ignore[union-attr]
    assert cli.ok("users", "revoke", "5", "dice") == "Revoked dice from user 5.\n"
    assert cli.user(5).tool_rights is None  # type: ignore[union-attr]
    code, _, err = cli("users", "grant", "5", "dicee")
    assert code == 1 and err.endswith("admin; the tools' rights: dice.\n")
