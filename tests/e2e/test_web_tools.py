"""End to end: the model searches the web and reads pages (issue 15). Search goes to a fake
SearXNG or a fake Brave API on 127.0.0.1; pages come from a local server, which only the
test setting SEARCH_ALLOW_PRIVATE_ADDRESSES lets the reader reach, and only on the networks
it names: a redirect from there to another local address is refused as in production."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from app.config import SearchSettings, Settings, ToolsSettings
from tests.e2e.test_tools import tool_messages, tool_names
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.fakes.brave import FakeBrave
from tests.fakes.pages import FakePages
from tests.fakes.searxng import FakeSearxng
from tests.harness import ALLOWED, StartBot, UserChat

ARTICLE = """<!doctype html>
<html><head><title>The Cat Gazette</title></head>
<body>
<nav><a href="/">Home</a> | <a href="/about">About us</a> | <a href="/shop">Shop</a></nav>
<article>
<h1>Why cats sleep so much</h1>
<p>Cats sleep between twelve and sixteen hours a day. Their ancestors hunted at dawn and
dusk, and saved their energy for it in the hours between.</p>
<p>Kittens and old cats sleep even longer than grown cats in their prime.</p>
</article>
<footer>Copyright 2026 The Cat Gazette. All rights reserved. Subscribe to our newsletter.</footer>
</body></html>"""

SEARXNG_RESULTS = [
    {
        "title": "Why cats sleep so much - The Cat Gazette",
        "url": "https://cats.example/sleep",
        "content": "Cats sleep between twelve and sixteen hours a day.",
    },
    {
        "title": "Cat - Wikipedia",
        "url": "https://en.wikipedia.org/wiki/Cat",
        "content": "The cat is a small domesticated carnivorous mammal.",
    },
]


def web_settings(make_settings: Callable[..., Settings], **search: Any) -> Settings:
    """The test model offered tools, with these SEARCH_ values."""
    settings = make_settings(tool_models=("test-model",))
    return dataclasses.replace(
        settings,
        tools=ToolsSettings(_env_file=None),
        search=SearchSettings(**search, _env_file=None),
    )


@pytest.fixture
async def searxng() -> AsyncIterator[FakeSearxng]:
    fake = await FakeSearxng().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def pages() -> AsyncIterator[FakePages]:
    fake = await FakePages().start()
    yield fake
    await fake.stop()


async def ask(
    chat: UserChat, llm: FakeOpenAI, name: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """The user asks, the model calls one tool; the result the model is sent next."""
    llm.queue_tool_calls((name, arguments))
    llm.queue_reply("Done.")
    await chat.send("Please look it up")
    # The newest: the request also carries the rounds of earlier answers.
    return tool_messages(llm.requests[-1])[-1]


def previews(telegram: FakeTelegram) -> list[str]:
    """Every draft text sent (a draft's later texts replace the tools' preview in it)."""
    return [str(c.params.get("text")) for c in telegram.calls_of("sendMessageDraft", ALLOWED)]


async def read(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    url: str,
    **search: Any,
) -> str:
    bot = await start_bot(web_settings(make_settings, **search))
    chat = UserChat(bot, telegram, ALLOWED)
    return str((await ask(chat, llm, "read_page", {"url": url}))["content"])


# --- web search --------------------------------------------------------------------------------


async def test_searxng_results_reach_the_model_with_titles_and_links(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    searxng: FakeSearxng,
) -> None:
    searxng.results = SEARXNG_RESULTS
    bot = await start_bot(web_settings(make_settings, searxng_url=searxng.base_url))
    chat = UserChat(bot, telegram, ALLOWED)

    result = await ask(chat, llm, "web_search", {"query": "why do cats sleep"})

    assert "web_search" in tool_names(llm.requests[0])
    assert searxng.queries == [{"q": "why do cats sleep", "format": "json"}]
    assert result["content"] == (
        'Results for "why do cats sleep":\n'
        "1. Why cats sleep so much - The Cat Gazette\n"
        "   https://cats.example/sleep\n"
        "   Cats sleep between twelve and sixteen hours a day.\n"
        "2. Cat - Wikipedia\n"
        "   https://en.wikipedia.org/wiki/Cat\n"
        "   The cat is a small domesticated carnivorous mammal."
    )
    assert "🔧 Searching the web: why do cats sleep" in previews(telegram)


async def test_the_model_may_ask_for_fewer_results(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    searxng: FakeSearxng,
) -> None:
    searxng.results = SEARXNG_RESULTS
    bot = await start_bot(web_settings(make_settings, searxng_url=searxng.base_url))
    chat = UserChat(bot, telegram, ALLOWED)
    result = await ask(chat, llm, "web_search", {"query": "cats", "count": 1})
    assert "1. Why cats sleep" in result["content"] and "2." not in result["content"]


async def test_a_searxng_without_json_is_a_clear_error_and_one_warning(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    searxng: FakeSearxng,
    caplog: pytest.LogCaptureFixture,
) -> None:
    searxng.json_enabled = False
    bot = await start_bot(web_settings(make_settings, searxng_url=searxng.base_url))
    chat = UserChat(bot, telegram, ALLOWED)
    with caplog.at_level(logging.WARNING, logger="app.tools.search"):
        first = await ask(chat, llm, "web_search", {"query": "cats"})
        await ask(chat, llm, "web_search", {"query": "dogs"})
    assert first["content"] == (
        "Error: web search is not set up right (the search server refuses JSON); "
        "tell the user web search is not available now."
    )
    warnings = [r.getMessage() for r in caplog.records if r.name == "app.tools.search"]
    assert len(warnings) == 1, warnings
    assert "formats: [html, json]" in warnings[0]
    assert "cats" not in warnings[0]  # the user's words are not logged


async def test_brave_search_with_the_key(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    brave = await FakeBrave(key="brave-key").start()
    brave.results = [
        {
            "title": "Why <strong>cats</strong> sleep",
            "url": "https://cats.example/sleep",
            "description": "<strong>Cats</strong> sleep 12&ndash;16 hours a day.",
        }
    ]
    try:
        bot = await start_bot(
            web_settings(make_settings, brave_api_key="brave-key", brave_url=brave.url)
        )
        chat = UserChat(bot, telegram, ALLOWED)
        result = await ask(chat, llm, "web_search", {"query": "cats"})
    finally:
        await brave.stop()
    assert brave.queries == [{"q": "cats", "count": "5"}]
    assert result["content"] == (
        'Results for "cats":\n'
        "1. Why cats sleep\n"
        "   https://cats.example/sleep\n"
        "   Cats sleep 12–16 hours a day."
    )


async def test_without_a_backend_web_search_is_not_offered(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    bot = await start_bot(web_settings(make_settings))
    chat = UserChat(bot, telegram, ALLOWED)
    await chat.send("Hello")
    assert tool_names(llm.requests[0]) == ["calculator", "current_datetime", "read_page"]


# --- reading pages ----------------------------------------------------------------------------


async def test_a_page_is_read_as_its_readable_text(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    pages: FakePages,
) -> None:
    pages.page("/cats/sleep", ARTICLE)
    url = pages.base_url + "/cats/sleep"
    content = await read(
        start_bot,
        make_settings,
        telegram,
        llm,
        url,
        allow_private_addresses=("127.0.0.1/32",),
    )
    assert content.startswith(f"Title: Why cats sleep so much\nURL: {url}\n\n")
    assert "Cats sleep between twelve and sixteen hours a day." in content
    assert "Kittens and old cats sleep even longer" in content
    assert "About us" not in content and "newsletter" not in content  # menus and footers
    assert "🔧 Reading: 127.0.0.1/cats/sleep" in previews(telegram)


async def test_a_redirect_within_allowed_addresses_is_followed(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    pages: FakePages,
) -> None:
    pages.redirect("/old", "/cats/sleep", status=301)
    pages.page("/cats/sleep", ARTICLE)
    content = await read(
        start_bot,
        make_settings,
        telegram,
        llm,
        pages.base_url + "/old",
        allow_private_addresses=("127.0.0.1/32",),
    )
    assert f"URL: {pages.base_url}/cats/sleep" in content
    assert pages.hits == ["/old", "/cats/sleep"]


async def test_a_local_address_is_refused_without_the_test_setting(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    pages: FakePages,
) -> None:
    pages.page("/", ARTICLE)
    content = await read(start_bot, make_settings, telegram, llm, pages.base_url + "/")
    assert content == "Error: 127.0.0.1 is a private or local address; it is not read."
    assert pages.hits == []


async def test_a_name_that_resolves_to_a_local_address_is_refused(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    pages: FakePages,
) -> None:
    """Through the resolver (a name, not an address in the link): the check is on the
    address aiohttp would connect to."""
    pages.page("/", ARTICLE)
    content = await read(start_bot, make_settings, telegram, llm, f"http://localhost:{pages.port}/")
    assert content == "Error: localhost is a private or local address; it is not read."
    assert pages.hits == []


async def test_a_redirect_to_a_private_address_is_refused(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    pages: FakePages,
) -> None:
    """The allowed page (127.0.0.1) redirects to a server on 127.0.0.2, outside the allowed
    network: that server really listens, so only the check keeps the reader away."""
    secret = await FakePages().start(host="127.0.0.2")
    secret.page("/secret", "<html><body><p>The internal admin password is hunter2.</p></body>")
    pages.redirect("/go", f"http://127.0.0.2:{secret.port}/secret")
    try:
        content = await read(
            start_bot,
            make_settings,
            telegram,
            llm,
            pages.base_url + "/go",
            allow_private_addresses=("127.0.0.1/32",),
        )
    finally:
        await secret.stop()
    assert content == "Error: 127.0.0.2 is a private or local address; it is not read."
    assert pages.hits == ["/go"]
    assert secret.hits == []


async def test_a_file_link_is_refused(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    content = await read(start_bot, make_settings, telegram, llm, "file:///etc/passwd")
    assert content == "Error: only http and https links can be read, not file:."


@pytest.mark.parametrize("sent", ["whole", "chunked"])
async def test_a_page_over_the_size_cap_is_refused(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    pages: FakePages,
    sent: str,
) -> None:
    """With a Content-Length it is refused up front; without one, once the cap is passed."""
    if sent == "whole":
        pages.page("/big", "<html><body>" + "x" * 5000 + "</body></html>")
    else:
        pages.chunked("/big", 50_000)
    content = await read(
        start_bot,
        make_settings,
        telegram,
        llm,
        pages.base_url + "/big",
        allow_private_addresses=("127.0.0.1/32",),
        page_max_bytes=2048,
    )
    assert content == "Error: the page is larger than 2 KB; it is not read."


async def test_a_page_that_is_not_text_is_refused(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    pages: FakePages,
) -> None:
    pages.page("/cat.png", b"\x89PNG\r\n\x1a\n" + bytes(100), content_type="image/png")
    content = await read(
        start_bot,
        make_settings,
        telegram,
        llm,
        pages.base_url + "/cat.png",
        allow_private_addresses=("127.0.0.1/32",),
    )
    assert content == "Error: the page is image/png, not text or HTML; it is not read."


async def test_a_slow_page_times_out(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    pages: FakePages,
) -> None:
    released = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        await released.wait()
        return web.Response(text="too late")

    pages.routes["/slow"] = slow
    try:
        content = await read(
            start_bot,
            make_settings,
            telegram,
            llm,
            pages.base_url + "/slow",
            allow_private_addresses=("127.0.0.1/32",),
            page_timeout=0.3,
        )
    finally:
        released.set()
    assert content == "Error: the page did not load within 0.3 seconds."


async def test_a_redirect_loop_ends_after_five_redirects(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    pages: FakePages,
) -> None:
    pages.redirect("/loop", "/loop")
    content = await read(
        start_bot,
        make_settings,
        telegram,
        llm,
        pages.base_url + "/loop",
        allow_private_addresses=("127.0.0.1/32",),
    )
    assert content == "Error: the page redirected more than 5 times."
    assert len(pages.hits) == 6


async def test_a_brave_key_refused_is_told_to_the_model_and_the_owner(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    brave = await FakeBrave(key="the-right-key").start()
    try:
        bot = await start_bot(
            web_settings(make_settings, brave_api_key="a-wrong-key", brave_url=brave.url)
        )
        chat = UserChat(bot, telegram, ALLOWED)
        with caplog.at_level(logging.WARNING, logger="app.tools.search"):
            result = await ask(chat, llm, "web_search", {"query": "cats"})
    finally:
        await brave.stop()
    assert result["content"].startswith("Error: the search service refused the bot's key")
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "app.tools.search"]
    assert "SEARCH_BRAVE_API_KEY" in warning and "a-wrong-key" not in warning


async def test_a_long_page_is_shortened_to_its_share_and_the_window_holds(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    pages: FakePages,
) -> None:
    """A page far longer than what the request keeps for results: the model gets its start
    and a note saying so, and the server (which enforces its window) never refuses."""
    paragraphs = "".join(
        f"<p>Paragraph {n}: cats nap in the sun, all day long.</p>" for n in range(900)
    )
    pages.page(
        "/long",
        f"<html><head><title>Long</title></head><body><article>{paragraphs}</article></body></html>",
    )
    llm.context_window = 6_000
    settings = make_settings(tool_models=("test-model",), context_window=6_000)
    settings = dataclasses.replace(
        settings,
        tools=ToolsSettings(result_tokens=800, _env_file=None),
        search=SearchSettings(allow_private_addresses=("127.0.0.1/32",), _env_file=None),
    )
    bot = await start_bot(settings)
    chat = UserChat(bot, telegram, ALLOWED)
    result = await ask(chat, llm, "read_page", {"url": pages.base_url + "/long"})
    content = str(result["content"])
    assert content.startswith("Title: Long")
    assert "Paragraph 0:" in content and "Paragraph 899:" not in content
    assert "[The result was shortened to fit:" in content
    assert chat.last.text == "Done."
    # A follow-up carries that round in its history, within the window too.
    llm.queue_reply("Still fine.")
    assert (await chat.send("And?")).text == "Still fine."
    assert llm.context_errors == 0
