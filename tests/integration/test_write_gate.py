"""The write gate: chat-path writes take turns on SQLite, and never hold a connection while
they wait."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from app.db.engine import WriteGate, create_engine, create_sessionmaker


async def test_sections_run_one_at_a_time(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}")
    pool = create_sessionmaker(engine)
    gate = WriteGate.for_engine(engine)
    order: list[str] = []

    async def section(name: str, hold: float) -> None:
        async with pool() as session:
            await session.execute(text("SELECT 1"))  # a read holds a connection...
            async with gate.section(session):  # ...handed back before queueing
                assert not session.in_transaction()
                order.append(f"{name} in")
                await asyncio.sleep(hold)
                order.append(f"{name} out")

    await asyncio.gather(section("a", 0.05), section("b", 0.01), section("c", 0))
    # Whoever comes first, no section starts before the one ahead of it has ended.
    assert len(order) == 6
    for index in range(0, 6, 2):
        name = order[index].split()[0]
        assert order[index : index + 2] == [f"{name} in", f"{name} out"]
    await engine.dispose()


async def test_more_waiters_than_connections_do_not_deadlock(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}")
    pool = create_sessionmaker(engine)
    gate = WriteGate.for_engine(engine)
    async with pool() as session, session.begin():
        await session.execute(text("CREATE TABLE t (n INTEGER)"))

    async def writer(n: int) -> None:
        async with pool() as session:
            if n % 2 == 0:  # has read (holds a connection); the others have none yet
                await session.execute(text("SELECT count(*) FROM t"))
            async with gate.section(session):
                await session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                await session.commit()

    # The pool holds 15 connections. Were the readers to keep theirs while they wait, a
    # holder without one would wait for the pool forever: 40 writers must all get through.
    await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(40))), timeout=20)
    async with pool() as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 40
    await engine.dispose()


async def test_on_postgresql_urls_the_gate_lets_everyone_through() -> None:
    gate = WriteGate()
    entered: list[int] = []

    async def section(n: int) -> None:
        async with gate.section(None):  # type: ignore[arg-type]  # never touched without a lock
            entered.append(n)
            await asyncio.sleep(0.05)

    await asyncio.wait_for(asyncio.gather(*(section(n) for n in range(5))), timeout=0.2)
    assert sorted(entered) == list(range(5))
