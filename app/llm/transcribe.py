"""Speech to text through the OpenAI-compatible `/audio/transcriptions` endpoint: OpenAI's
own models, or a local Whisper server (faster-whisper-server, whisper.cpp, LocalAI...)."""

from __future__ import annotations

from dataclasses import dataclass

import openai
from openai import AsyncOpenAI

from app.config import OpenAISettings, TranscribeSettings
from app.llm.chat import LLMError, TokenUsage, classify_failure


@dataclass(frozen=True, slots=True)
class Transcript:
    """What was said, and what it cost: the tokens the server reported (gpt-4o-transcribe
    models do; Whisper servers report none) and the seconds of audio (what the per-minute
    prices of BUDGET_PRICES apply to)."""

    text: str
    usage: TokenUsage
    seconds: float


class Transcriber:
    """One model on one server; `close()` closes the client if it is its own."""

    def __init__(self, client: AsyncOpenAI, model: str, *, owns_client: bool = False) -> None:
        self.client = client
        self.model = model
        self._owns_client = owns_client

    async def transcribe(self, audio: bytes, file_name: str, seconds: float) -> Transcript:
        """Raises LLMError (the same kinds as a chat request) when the server fails."""
        try:
            result = await self.client.audio.transcriptions.create(
                model=self.model, file=(file_name, audio)
            )
        except openai.APIError as exc:
            raise classify_failure(exc) from exc
        text = result if isinstance(result, str) else getattr(result, "text", "")
        return Transcript(str(text or "").strip(), *_usage(getattr(result, "usage", None), seconds))

    async def close(self) -> None:
        if self._owns_client:
            await self.client.close()


def _usage(usage: object, seconds: float) -> tuple[TokenUsage, float]:
    """Tokens when the server reports them ({"type": "tokens", ...}); the seconds it reports
    ({"type": "duration", ...}), else the audio's own length."""
    tokens = TokenUsage(0, 0)
    if getattr(usage, "type", None) == "tokens":
        tokens = TokenUsage(
            int(getattr(usage, "input_tokens", 0) or 0),
            int(getattr(usage, "output_tokens", 0) or 0),
        )
    elif getattr(usage, "type", None) == "duration":
        seconds = float(getattr(usage, "seconds", seconds) or seconds)
    return tokens, seconds


def create_transcriber(
    openai_settings: OpenAISettings, settings: TranscribeSettings, llm: AsyncOpenAI
) -> Transcriber:
    """On TRANSCRIBE_BASE_URL when set (its own client, with TRANSCRIBE_API_KEY only: the
    model server's key is never sent to another server; retries and timeout as the model
    server's), else on the model server through its client."""
    model = openai_settings.transcribe_model
    if settings.base_url is None:
        return Transcriber(llm, model)
    key = settings.api_key
    client = AsyncOpenAI(
        api_key=key.get_secret_value() if key else "not-needed",
        base_url=settings.base_url,
        timeout=openai_settings.timeout,
        max_retries=openai_settings.max_retries,
    )
    return Transcriber(client, model, owns_client=True)


__all__ = ["LLMError", "Transcriber", "Transcript", "create_transcriber"]
