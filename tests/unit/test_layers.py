"""The import graph of app/ stays a tower: each layer imports only what is below it (the
table in shared CONVENTIONS.md), so no package cycle can come back. Read with `ast`, so
nothing is imported to check it."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"

# The layers below the services that see only the tool interface and the domain (tools,
# mcp, plugins) never import these; each adds what else it must not.
BELOW_SERVICES = {
    "db",
    "config",
    "memory",
    "llm",
    "services",
    "views",
    "handlers",
    "delivery",
    "middlewares",
}

# package -> what it must never import (of ours, or third-party roots); "*" is every package
# of ours but the domain (which the domain itself does not count as importing).
FORBIDDEN: dict[str, set[str]] = {
    "domain": {"*"},  # nothing of ours at all
    "db": {"config", "memory", "llm", "services", "views", "handlers", "delivery", "aiogram"},
    "config": {"db", "memory", "llm", "services", "views", "handlers", "delivery", "aiogram"},
    "llm": {"db", "memory", "services", "views", "handlers", "delivery", "aiogram"},
    "memory": {"services", "views", "handlers", "delivery", "aiogram"},
    "delivery": {"db", "memory", "services", "views", "handlers"},
    "services": {"views", "handlers", "middlewares", "factory"},
    "views": {"db", "memory", "llm", "services", "handlers", "middlewares", "aiogram.methods"},
    "handlers": {"db", "sqlalchemy.orm", "sqlalchemy.sql"},
    # What the model may call: below the services, above the domain; gettext of aiogram
    # for what a tool's preview says, nothing else of it.
    "tools": BELOW_SERVICES
    | {
        "aiogram.types",
        "aiogram.methods",
        "mcp",  # the MCP servers' tools sit above, in app/mcp
    },
    # MCP servers' tools wrapped as ours: the tool interface and the domain, and the SDK.
    "mcp": BELOW_SERVICES
    | {
        "aiogram",
    },
    # What plugins see (api) and how they are found (loader): the tools and the domain,
    # never the bot's services, storage or handlers (app/plugin_host.py wires them in).
    "plugins": BELOW_SERVICES
    | {
        "factory",
    },
    # Pure readers of files, run in threads: the domain of ours, and no framework or I/O client.
    "documents": {"*", "aiogram", "sqlalchemy", "redis", "openai", "aiohttp"},
}


def imports_of(package: str) -> set[str]:
    """Every module a package's files import: ours as 'db', 'services', ...; others by name."""
    found: set[str] = set()
    root = APP / package
    files = list(root.rglob("*.py")) if root.is_dir() else [APP / f"{package}.py"]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name == "app" or name.startswith("app."):
                    parts = name.split(".")
                    if len(parts) > 1 and parts[1] != package:
                        found.add(parts[1])
                    elif isinstance(node, ast.ImportFrom) and name == "app":
                        found.update(alias.name for alias in node.names)
                else:
                    found.add(name)
    return found


def our_packages() -> list[str]:
    return sorted(
        p.stem if p.is_file() else p.name
        for p in APP.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py")
        if p.name != "__init__.py"
    )


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(package: str) -> None:
    imported = imports_of(package)
    ours = set(our_packages()) - {"domain"}
    bad = {
        name
        for name in imported
        for banned in FORBIDDEN[package]
        if (banned == "*" and name in ours) or name == banned or name.startswith(banned + ".")
    }
    assert not bad, f"app/{package} imports {sorted(bad)}"


def test_the_package_graph_has_no_cycle() -> None:
    ours = set(our_packages())
    graph: dict[str, set[str]] = defaultdict(set)
    for package in ours:
        # Less itself: app/mcp imports the SDK, whose root has the same name.
        graph[package] = (imports_of(package) & ours) - {package}
    # The entry points import everything by design and nothing imports them back.
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for package in sorted(ours):
        if package not in state:
            visit(package)
