"""Finding and loading plugins: the `telegram_bot_assistant.plugins` entry points of the
installed packages, and the modules in PLUGINS_PATH; only those named in PLUGINS are
loaded. A plugin that fails to import, to build or to start is logged with one WARNING and
left out: the bot runs without it."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from app.plugins.api import Plugin, PluginContext

log = logging.getLogger(__name__)

GROUP = "telegram_bot_assistant.plugins"

Factory = Callable[[PluginContext], Plugin]


@dataclass(frozen=True, slots=True)
class Found:
    """A plugin by the name PLUGINS lists it under, and where its factory comes from."""

    name: str
    origin: str  # "entry point pkg.module:plugin" or "file /path/name.py"
    load: Callable[[], Any]


def discover(path: Path | None) -> dict[str, Found]:
    """Every plugin that could be loaded, by name: entry points first, then the modules
    (`name.py`, or packages `name/__init__.py`) in `path`, which take precedence."""
    found: dict[str, Found] = {}
    for point in entry_points(group=GROUP):
        found[point.name] = Found(point.name, f"entry point {point.value}", point.load)
    if path is not None and path.is_dir():
        for module in sorted(path.iterdir()):
            name = module.stem if module.suffix == ".py" else module.name
            if module.name.startswith(("_", ".")):
                continue
            if module.suffix == ".py" or (module / "__init__.py").is_file():
                found[name] = Found(name, f"file {module}", _from_folder(path, name))
    return found


def _from_folder(path: Path, name: str) -> Callable[[], Any]:
    def load() -> Any:
        folder = str(path.resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)  # a plugin package may import its own modules
        return importlib.import_module(name).plugin

    return load


def load_plugins(
    names: Iterable[str], path: Path | None, context: Callable[[str], PluginContext]
) -> list[tuple[Plugin, PluginContext]]:
    """The plugins PLUGINS names, built with their contexts, in that order; any that is
    missing, fails to import or to build is logged and left out."""
    available = discover(path)
    loaded: list[tuple[Plugin, PluginContext]] = []
    for name in names:
        found = available.get(name)
        if found is None:
            log.warning(
                "Plugin %r is in PLUGINS but not installed (no %s entry point, nothing in "
                "PLUGINS_PATH); left out",
                name,
                GROUP,
            )
            continue
        plugin_context = context(name)
        try:
            factory = found.load()
            plugin = factory(plugin_context)
            if not isinstance(plugin, Plugin):
                raise TypeError(f"its factory returned {type(plugin).__name__}, not a Plugin")
        except Exception as exc:  # a plugin's failure must not stop the bot
            log.warning(
                "Plugin %r (%s) failed to load and is left out: %s: %s",
                name,
                found.origin,
                type(exc).__name__,
                exc,
            )
            log.debug("Plugin %r failed", name, exc_info=True)
            continue
        log.info("Plugin %r loaded (%s)", name, found.origin)
        loaded.append((plugin, plugin_context))
    return loaded
