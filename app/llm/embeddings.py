"""Embeddings from an OpenAI-compatible /embeddings endpoint: vectors for recall by meaning.

A separate server may serve them (EMBEDDINGS_BASE_URL: Ollama's nomic-embed-text, a local
text-embeddings server), with its own key only: the model server's key is never sent to
another server.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from openai import APIError, AsyncOpenAI, omit

from app.config import EmbeddingsSettings, OpenAISettings

log = logging.getLogger(__name__)

# The longest text embedded, in characters: the endpoints refuse inputs past their model's
# window (8,191 tokens for OpenAI's; 512 for small local ones, which cut silently). The
# beginning of a long turn says what it is about.
MAX_CHARS = 8000


class EmbeddingFailed(Exception):
    """No vectors: the server failed, was too slow, or answered something else."""


class Embedder:
    """Turns texts into unit-length vectors of one model."""

    def __init__(
        self,
        client: AsyncOpenAI,
        model: str,
        *,
        timeout: float,
        owns_client: bool = False,
        dimensions: int | None = None,
    ) -> None:
        # How long an answer waits for the new message's vector (EMBEDDINGS_TIMEOUT).
        self.client = client
        self.model = model
        self.timeout = timeout
        self.owns_client = owns_client
        self.dimensions = dimensions  # EMBEDDINGS_DIMENSIONS, asked of the model

    @property
    def key(self) -> str:
        """What the vectors are stored under: the model, and the size asked of it, so that
        vectors of another size are never compared with these (and are made anew)."""
        return self.model if self.dimensions is None else f"{self.model}@{self.dimensions}"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order; raises EmbeddingFailed (the caller bounds the time
        it waits with asyncio.timeout: the client's retries go on within it)."""
        inputs = [text[:MAX_CHARS] or " " for text in texts]
        if not inputs:
            return []
        try:
            # No encoding_format: the client then asks for base64 (a quarter of the JSON
            # of floats to read) and decodes it, and takes floats from a server that
            # answers them anyway (Ollama).
            response = await self.client.embeddings.create(
                model=self.model,
                input=inputs,
                dimensions=omit if self.dimensions is None else self.dimensions,
            )
        except APIError as exc:
            raise EmbeddingFailed(type(exc).__name__) from exc
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(inputs) or any(not item.embedding for item in data):
            raise EmbeddingFailed("the server returned a different number of vectors")
        return [_unit(item.embedding) for item in data]

    async def close(self) -> None:
        if self.owns_client:
            await self.client.close()


def _unit(vector: Sequence[float]) -> list[float]:
    """Scaled to length 1 (OpenAI's are already; local models' often are not), so that a
    dot product is the cosine similarity."""
    norm = sum(x * x for x in vector) ** 0.5
    return [float(x) / norm for x in vector] if norm > 0 else [float(x) for x in vector]


def create_embedder(
    openai_settings: OpenAISettings, settings: EmbeddingsSettings, llm: AsyncOpenAI
) -> Embedder | None:
    """None when no embedding model is in use (recall by words only)."""
    model = openai_settings.embeddings_model(separate_server=settings.base_url is not None)
    if model is None:
        return None
    if settings.base_url is None:
        return Embedder(llm, model, timeout=settings.timeout, dimensions=settings.dimensions)
    key = settings.api_key
    client = AsyncOpenAI(
        api_key=key.get_secret_value() if key else "not-needed",
        base_url=settings.base_url,
        timeout=openai_settings.timeout,
        max_retries=openai_settings.max_retries,
    )
    return Embedder(
        client, model, timeout=settings.timeout, owns_client=True, dimensions=settings.dimensions
    )
