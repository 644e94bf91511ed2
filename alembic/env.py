"""Alembic environment: runs on the app's own connection when called from the app."""

import asyncio
import warnings

from alembic.autogenerate.api import AutogenContext
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SAWarning
from sqlalchemy.ext.asyncio import async_engine_from_config

from alembic import context
from app.db.models import Base, Vector

config = context.config
target_metadata = Base.metadata

# SQLAlchemy cannot reflect pgvector's types, so alembic compares nothing for a vector
# column converted to halfvec or vector (app/db/vectors.py): what we want, since real[] as
# made and either type are all one to the migrations. Its warning would say so each time.
warnings.filterwarnings(
    "ignore", message="Did not recognize type '(halfvec|vector)'", category=SAWarning
)


# Full-text indexes for recall are made by hand in their migration (autogenerate cannot
# express them); without this, autogenerate would propose dropping them.
HAND_MADE = (
    "messages_fts",
    "ix_messages_content_tsv",
    "document_chunks_fts",
    "ix_document_chunks_content_tsv",
)


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    return not (name and type_ in ("table", "index") and name.startswith(HAND_MADE))


def render_item(type_: str, obj: object, autogen_context: AutogenContext) -> str | bool:
    """Our own column types as the plain types they store, so that no migration imports
    the app's models (which change after it)."""
    if type_ == "type" and isinstance(obj, Vector):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return 'sa.LargeBinary().with_variant(postgresql.ARRAY(sa.REAL()), "postgresql")'
    return False


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=include_name,
        render_item=render_item,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    connectable = async_engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
        hide_parameters=True,  # as the app's engines: no stored text in an error
    )
    async with connectable.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await connectable.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
elif (connection := config.attributes.get("connection")) is not None:
    # Called by app.db.migrate with a connection of the app's engine.
    do_run_migrations(connection)
else:
    # The alembic command line: `alembic revision --autogenerate`, `alembic upgrade head`.
    asyncio.run(run_async_migrations())
