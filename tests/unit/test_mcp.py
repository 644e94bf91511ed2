"""MCP as pure logic (issue 15): the servers' file read as other clients read it, every
problem named with the file; tool and right names made what the API accepts; results as
text for the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp.types import CallToolResult, ImageContent, TextContent

from app.mcp.config import HttpServer, McpConfigError, StdioServer, load_config, parse_config
from app.mcp.tools import object_schema, result_text, right_name, tool_name
from app.tools.base import NAME


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_a_stdio_and_an_http_server_are_read_and_unknown_keys_ignored(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "mcpServers": {
                "files": {
                    "command": "npx",
                    "args": ["-y", "server-filesystem", "/srv"],
                    "env": {"TOKEN": "${FILES_TOKEN}", "LEVEL": 3},
                    "cwd": "/tmp",
                    "alwaysAllow": ["read"],  # Cline's: not ours, ignored
                },
                "search": {
                    "type": "http",
                    "url": "https://search.example/mcp",
                    "headers": {"Authorization": "Bearer ${SEARCH_TOKEN}"},
                },
                "later": {"command": "x", "disabled": True},
            },
            "otherClientSetting": True,
        },
    )
    files, search = load_config(path, {"FILES_TOKEN": "f", "SEARCH_TOKEN": "s"})
    assert files == StdioServer(
        "files", "npx", ("-y", "server-filesystem", "/srv"), {"TOKEN": "f", "LEVEL": "3"}, "/tmp"
    )
    assert search == HttpServer(
        "search", "https://search.example/mcp", {"Authorization": "Bearer s"}
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("{not json", "is not valid JSON"),
        ({"servers": {}}, '"mcpServers"'),
        ({"mcpServers": {"a": "npx"}}, "mcpServers.a must be an object"),
        ({"mcpServers": {"a": {"args": []}}}, 'mcpServers.a needs either "command"'),
        ({"mcpServers": {"a": {"command": "x", "url": "http://h"}}}, "needs either"),
        ({"mcpServers": {"a": {"command": "x", "args": "-v"}}}, "mcpServers.a.args must be"),
        ({"mcpServers": {"a": {"command": "x", "env": ["A=1"]}}}, "mcpServers.a.env must be"),
        ({"mcpServers": {"a": {"url": "ftp://h"}}}, "must start with http"),
        ({"mcpServers": {"a": {"url": "http://h", "type": "sse"}}}, "SSE transport"),
        ({"mcpServers": {"a": {"command": "${NOPE}"}}}, "environment variable NOPE, unset"),
    ],
)
def test_a_malformed_file_is_named_with_its_problem(
    tmp_path: Path, data: Any, problem: str
) -> None:
    path = write(tmp_path, data)
    with pytest.raises(McpConfigError) as error:
        load_config(path, {})
    assert str(error.value).startswith(f"MCP_CONFIG file {path}")
    assert problem in str(error.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(McpConfigError, match="cannot be read"):
        load_config(tmp_path / "absent.json")


def test_an_empty_list_is_no_server() -> None:
    assert parse_config({"mcpServers": {}}, {}) == []


@pytest.mark.parametrize(
    ("server", "tool", "name"),
    [
        ("fake", "add", "fake__add"),
        ("my server", "get.weather", "my_server__get_weather"),
        ("файлы", "read/file", "x__read_file"),
        ("a-b", "c_d", "a-b__c_d"),
    ],
)
def test_tool_names_are_namespaced_and_sanitised(server: str, tool: str, name: str) -> None:
    assert tool_name(server, tool) == name


def test_long_names_are_cut_and_stay_apart() -> None:
    one, two = tool_name("s" * 40, "t" * 40 + "1"), tool_name("s" * 40, "t" * 40 + "2")
    assert len(one) == len(two) == 64
    assert one != two
    assert NAME.match(one) and NAME.match(two)


def test_the_right_is_named_for_the_server() -> None:
    assert right_name("fake") == "mcp_fake"
    assert right_name("my server!") == "mcp_my_server"


def test_schemas_are_objects() -> None:
    assert object_schema({}) == {"type": "object", "properties": {}}
    schema = {"properties": {"a": {"type": "number"}}, "required": ["a"]}
    assert object_schema(schema) == {"type": "object", **schema}


def test_results_join_text_and_name_what_the_model_cannot_see() -> None:
    result = CallToolResult(
        content=[
            TextContent(type="text", text="first"),
            ImageContent(type="image", data="AAAA", mime_type="image/png"),
            TextContent(type="text", text="second"),
        ]
    )
    assert result_text(result) == "first\n[image omitted]\nsecond"
    assert result_text(CallToolResult(content=[], structured_content={"n": 1})) == '{"n": 1}'
