"""`python -m app`: run the bot (default), `migrate`, or manage `users` and `personas`."""

from __future__ import annotations

import asyncio
import sys

from app import cli
from app.config import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    args = cli.build_parser().parse_args(argv)
    if args.command in ("users", "personas"):
        return cli.main(args)
    from app.runner import configure_logging, loop_factory, migrate, run  # only to run the bot

    try:
        settings = Settings.load(args.env_file)
    except SettingsError as exc:
        print(exc.sentence(), file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(migrate(settings) if args.command == "migrate" else run(settings))


if __name__ == "__main__":
    sys.exit(main())
