"""Migrations: upgrade, downgrade and upgrade again, on SQLite and PostgreSQL, one revision at
a time, and the models agree with the schema the migrations make (what `alembic check` says).
"""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from app.db.engine import create_engine, create_sessionmaker
from app.db.migrate import alembic_config, downgrade, upgrade
from app.db.models import Base
from app.db.vectors import VectorRepository

# Oldest first: each step is tried on a database at the revision before it.
REVISIONS: list[Script] = list(
    reversed(list(ScriptDirectory.from_config(alembic_config("sqlite://")).walk_revisions()))
)


async def tables(url: str) -> set[str]:
    engine = create_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    # SQLite's full-text indexes (recall, document parts) are virtual tables with shadow
    # tables of their own.
    hand_made = ("messages_fts", "document_chunks_fts")
    return {name for name in names if not name.startswith(hand_made)} - {"alembic_version"}


def _schema(connection: Connection) -> dict[str, Any]:
    """Tables with their columns, indexes, unique constraints and foreign keys, by name."""
    inspector = inspect(connection)
    return {
        table: {
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ),
            "indexes": sorted(str(i["name"]) for i in inspector.get_indexes(table)),
            "unique": sorted(str(u["name"]) for u in inspector.get_unique_constraints(table)),
            "foreign_keys": sorted(
                (str(fk["referred_table"]), tuple(fk["constrained_columns"]))
                for fk in inspector.get_foreign_keys(table)
            ),
        }
        for table in inspector.get_table_names()
        if table != "alembic_version"
    }


async def schema(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_schema)
    finally:
        await engine.dispose()


async def current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )
    finally:
        await engine.dispose()


async def test_stairway_upgrade_downgrade_upgrade(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        assert await tables(database_url) == set(Base.metadata.tables)
        await downgrade(engine, "base")
        assert await tables(database_url) == set()
        await upgrade(engine)
        assert await tables(database_url) == set(Base.metadata.tables)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("revision", REVISIONS, ids=[r.revision for r in REVISIONS])
async def test_each_revision_upgrades_downgrades_to_where_it_was_and_upgrades_again(
    database_url: str, revision: Script
) -> None:
    before = revision.down_revision or "base"
    assert isinstance(before, str), "a merge revision: step down each parent in turn"
    engine = create_engine(database_url)
    try:
        await upgrade(engine, before)
        schema_before = await schema(database_url)
        await upgrade(engine, revision.revision)
        assert await current_revision(database_url) == revision.revision
        schema_after = await schema(database_url)
        await downgrade(engine, before)
        assert await current_revision(database_url) == revision.down_revision
        assert await schema(database_url) == schema_before
        await upgrade(engine, revision.revision)
        assert await schema(database_url) == schema_after
    finally:
        await engine.dispose()


def _differences(connection: Connection, url: str) -> list[Any]:
    """compare_metadata with the options alembic/env.py gives autogenerate (the tables it
    leaves out, type comparison), as `alembic check` runs it."""
    config = alembic_config(url)
    config.attributes["connection"] = connection
    script = ScriptDirectory.from_config(config)
    found: list[Any] = []

    def compare(_heads: Any, context: MigrationContext) -> list[Any]:
        found.extend(compare_metadata(context, Base.metadata))
        return []  # nothing to run: only the comparison is wanted

    with EnvironmentContext(config, script, fn=compare):
        script.run_env()
    return found


async def test_the_models_agree_with_the_migrations(database_url: str) -> None:
    """As migrated; and on PostgreSQL, still once the app has turned the vector columns
    into pgvector's halfvec (app/db/vectors.py): no migration would turn them back."""
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        url = engine.url.render_as_string(hide_password=False)
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences, url)
        if engine.dialect.name == "postgresql":
            async with create_sessionmaker(engine)() as session:
                assert await VectorRepository(session).has_pgvector()
                await session.commit()
            async with engine.connect() as connection:
                differences += await connection.run_sync(_differences, url)
    finally:
        await engine.dispose()
    assert differences == []
