"""Which models are offered tools: the families known to call them well, plus
OPENAI_TOOL_MODELS. Offering tools to a model that cannot use them costs the schemas'
tokens on every request, or a refusal (Ollama answers 400 "does not support tools")."""

from __future__ import annotations

from collections.abc import Iterable

# Prefixes, matched by the longest (so "o1-mini" is not taken for "o1").
KNOWN_TOOL_MODELS = (
    # OpenAI
    "gpt-5",
    "gpt-4.1",
    "gpt-4o",
    "gpt-4-turbo",
    "gpt-4-0613",
    "gpt-4",
    "gpt-3.5-turbo",
    "o1",
    "o3",
    "o4-mini",
    "chatgpt-4o",
    # Open models as Ollama, vLLM and LM Studio name them
    "qwen2.5",
    "qwen3",
    "qwq",
    "llama3.1",
    "llama3.2",
    "llama3.3",
    "llama4",
    "mistral-nemo",
    "mistral-small",
    "mistral-large",
    "mixtral",
    "command-r",
    "firefunction",
    "hermes3",
    "granite3",
    "deepseek-chat",
    "deepseek-v3",
    "gpt-oss",
    "Qwen/Qwen2.5",
    "Qwen/Qwen3",
    "meta-llama/Llama-3.1",
    "meta-llama/Llama-3.3",
    "mistralai/Mistral",
)
NOT_TOOL_MODELS = (
    "o1-mini",
    "o1-preview",
    "gpt-4-vision",
    "gpt-4o-realtime",
    "gpt-4o-audio",
    "gpt-4o-search",
    "gpt-4o-mini-search",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-tts",
    "gpt-3.5-turbo-instruct",
    "gpt-4-32k-0314",
    "gpt-4-0314",
)


def calls_tools(model: str, extra: Iterable[str] = ()) -> bool:
    """True for a known tool-calling model, or one matching OPENAI_TOOL_MODELS (names, or
    prefixes ending in '*'; '*' alone: every model)."""
    for pattern in extra:
        if model == pattern or (pattern.endswith("*") and model.startswith(pattern[:-1])):
            return True
    # Ollama's tags ("qwen3:8b") and vendor paths match by their start.
    matches = [p for p in KNOWN_TOOL_MODELS + NOT_TOOL_MODELS if model.startswith(p)]
    return bool(matches) and max(matches, key=len) in KNOWN_TOOL_MODELS
