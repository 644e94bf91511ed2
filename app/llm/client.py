"""Builds the process's one AsyncOpenAI client for OpenAI or any compatible server."""

from __future__ import annotations

from openai import AsyncOpenAI, DefaultAioHttpClient

from app.config import OpenAISettings


def create_llm_client(settings: OpenAISettings) -> AsyncOpenAI:
    # The client retries 429, 5xx and connection errors itself, with exponential backoff
    # and Retry-After; we only choose how often and how long to wait per attempt.
    # aiohttp carries the requests (openai[aiohttp]), not httpx over anyio: with many answers
    # streaming at once it reads each chunk with less work on the event loop, which every
    # other user's database round trip waits behind (bench/load.py at 50 users).
    return AsyncOpenAI(
        api_key=settings.api_key.get_secret_value() if settings.api_key else "not-needed",
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        http_client=DefaultAioHttpClient(timeout=settings.timeout),
    )
