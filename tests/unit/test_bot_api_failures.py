"""Bot API failures classified without a server: undecodable answers by their status, draft
refusals by their scope, and every description one line without a body."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramServerError,
)
from aiogram.methods import GetMe, SendMessageDraft

from app.delivery.errors import NotBotApiAnswer, brief, describe_body
from app.delivery.session import BotApiSession
from app.delivery.stream import DraftSupport

PAGE = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
DRAFT = SendMessageDraft(chat_id=1, draft_id=1, text="x")


@pytest.fixture
async def bot() -> AsyncIterator[Bot]:
    bot = Bot("42:TEST", session=BotApiSession())
    yield bot
    await bot.session.close()


@pytest.mark.parametrize(
    ("body", "described"),
    [
        (PAGE, 'an HTML page ("502 Bad Gateway")'),
        ("<!doctype html><p>oops</p>", "an HTML page"),
        ("", "an empty body"),
        ("  \n", "an empty body"),
        ('{"error": {"message": "Invalid URL"}}', "JSON of another kind"),
        ("Bad Gateway", "11 characters of text"),
    ],
)
def test_a_body_that_is_no_bot_api_answer_is_described_in_a_few_words(
    body: str, described: str
) -> None:
    assert describe_body(body) == described


@pytest.mark.parametrize("body", [PAGE, ""])
def test_an_unreadable_5xx_is_a_server_error(bot: Bot, body: str) -> None:
    with pytest.raises(TelegramServerError) as raised:
        bot.session.check_response(bot, GetMe(), 502, body)
    assert raised.value.message.startswith("HTTP 502: ")
    assert "nginx" not in str(raised.value)


@pytest.mark.parametrize("status", [200, 404])
def test_an_unreadable_answer_below_500_is_no_bot_api_answer(bot: Bot, status: int) -> None:
    with pytest.raises(NotBotApiAnswer) as raised:
        bot.session.check_response(bot, GetMe(), status, PAGE)
    assert raised.value.status_code == status
    assert isinstance(raised.value, ClientDecodeError)  # what aiogram users expect
    assert str(raised.value) == (
        f'HTTP {status}: an HTML page ("502 Bad Gateway") instead of a Bot API answer'
    )


def test_bot_api_errors_are_unchanged(bot: Bot) -> None:
    body = '{"ok": false, "error_code": 404, "description": "Not Found"}'
    with pytest.raises(TelegramNotFound):
        bot.session.check_response(bot, GetMe(), 404, body)


def test_brief_leaves_out_what_aiogram_prints_of_a_body() -> None:
    aiogram_own = ClientDecodeError("Failed to decode object", ValueError("x"), PAGE)
    assert brief(aiogram_own) == "ClientDecodeError: Failed to decode object"
    assert brief(TelegramBadRequest(DRAFT, "Bad Request: chat not found")) == (
        "TelegramBadRequest: Bad Request: chat not found"
    )
    assert brief(ValueError(f"could not parse {PAGE}")) == "ValueError"


@pytest.mark.parametrize(
    "unknown",
    [
        TelegramNotFound(DRAFT, "Not Found"),
        TelegramBadRequest(DRAFT, "Bad Request: method not found"),
        NotBotApiAnswer(404, "<html><title>404 Not Found</title></html>", ValueError()),
    ],
)
def test_a_server_that_does_not_know_drafts_switches_them_off_everywhere(
    unknown: Exception,
) -> None:
    drafts = DraftSupport()
    assert drafts.refused(1, unknown)
    assert not drafts.usable(1) and not drafts.usable(2)


def test_a_chat_that_refuses_a_draft_switches_them_off_for_that_chat_only() -> None:
    drafts = DraftSupport()
    refusal = TelegramBadRequest(DRAFT, "Bad Request: method is not available for this chat")
    assert drafts.refused(1, refusal)
    assert not drafts.usable(1)
    assert drafts.usable(2)


@pytest.mark.parametrize(
    "passing",
    [
        TelegramServerError(DRAFT, "Internal Server Error"),
        TelegramNetworkError(DRAFT, "ClientConnectionError"),
        TelegramBadRequest(DRAFT, "Bad Request: can't parse entities: unsupported start tag"),
        NotBotApiAnswer(200, "", ValueError()),
    ],
)
def test_a_passing_failure_costs_one_preview_only(passing: Exception) -> None:
    drafts = DraftSupport()
    assert not drafts.refused(1, passing)
    assert drafts.usable(1)
