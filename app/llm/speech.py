"""Text to speech through the OpenAI-compatible `/audio/speech` endpoint, as Ogg/Opus:
the format Telegram shows as a voice message."""

from __future__ import annotations

import openai
from openai import AsyncOpenAI

from app.llm.chat import classify_failure


class Speaker:
    def __init__(self, client: AsyncOpenAI, model: str, voice: str) -> None:
        self.client = client
        self.model = model
        self.voice = voice

    async def speak(self, text: str) -> bytes:
        """Ogg/Opus audio of `text` (4,096 characters at most); raises LLMError."""
        try:
            response = await self.client.audio.speech.create(
                model=self.model, voice=self.voice, input=text, response_format="opus"
            )
            return response.content
        except openai.APIError as exc:
            raise classify_failure(exc) from exc
