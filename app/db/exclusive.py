"""One bot process per SQLite file: a second one refuses to start, saying what to run instead.

Two processes on one SQLite file would both take updates (two polling loops fight over
getUpdates; two webhook replicas behind a balancer split them), while SQLite can neither
claim an update atomically across them nor let them write at once. So the file is claimed
with an advisory `flock` on `<file>.lock` beside it, held for the process's life and freed
by the kernel however the process ends (SIGKILL too), so a crash never leaves a stale lock.
`python -m app users ...` and `migrate` do not claim it: they may run beside the bot.
Hand-written: the standard library's fcntl is all it takes (POSIX only; elsewhere no check).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

try:
    import fcntl
except ImportError:  # Windows: no advisory locks of this kind
    fcntl = None  # type: ignore[assignment]


class SqliteClaim:
    """The claim on a SQLite file, released by `release()` or by the process ending."""

    def __init__(self, handle: IO[str] | None) -> None:
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file drops the lock
            self._handle = None


def claim_sqlite_file(url: str) -> SqliteClaim | str:
    """The claim, or the sentence saying that another process uses the file. Any other
    database (or an in-memory one) needs no claim."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return SqliteClaim(None)
    if parsed.database == ":memory:" or fcntl is None:
        return SqliteClaim(None)
    path = Path(parsed.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path.with_name(path.name + ".lock"), "a+")  # noqa: SIM115 - held open
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        who = f" (process {holder})" if holder else ""
        return (
            f"another bot process{who} already uses the database {path}. On SQLite run one "
            "process; for several replicas use PostgreSQL (DATABASE_URL) and Redis "
            "(REDIS_URL), as docs/deploy.md shows."
        )
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return SqliteClaim(handle)
