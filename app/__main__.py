"""`python -m app`: run the bot (default) or `python -m app migrate`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from app.config import Settings, SettingsError
from app.runner import configure_logging, migrate, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "migrate"])
    parser.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.load(args.env_file)
    except SettingsError as exc:
        print(exc.sentence(), file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    return asyncio.run(migrate(settings) if args.command == "migrate" else run(settings))


if __name__ == "__main__":
    sys.exit(main())
