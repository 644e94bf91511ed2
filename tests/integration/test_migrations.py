"""Migrations: upgrade, downgrade and upgrade again, on SQLite and PostgreSQL."""

from sqlalchemy import inspect

from app.db.engine import create_engine
from app.db.migrate import downgrade, upgrade
from app.db.models import Base


async def tables(url: str) -> set[str]:
    engine = create_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    # SQLite's full-text index for recall is a virtual table with shadow tables of its own.
    return {name for name in names if not name.startswith("messages_fts")} - {"alembic_version"}


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
