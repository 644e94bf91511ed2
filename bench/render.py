"""Markdown rendering and message splitting throughput on the answers corpus.

Every answer in tests/data/answers goes through `render()` and then `split_rendered()`, as
a finished answer does before it is sent. One warm-up pass, then the best of 5 timed runs
(the best run is the one least disturbed by the rest of the machine).

    .venv/bin/python bench/render.py
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from app.delivery.render import render
from app.delivery.split import split_rendered

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "answers"
RUNS = 5
ROUNDS = 20  # corpus passes per run: long enough that timer resolution does not matter


def best_seconds(work: Callable[[], object]) -> float:
    work()  # warm-up: imports, parser caches, first allocations
    best = float("inf")
    for _ in range(RUNS):
        started = time.perf_counter()
        for _ in range(ROUNDS):
            work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    answers = [path.read_text(encoding="utf-8") for path in sorted(CORPUS.glob("*.md"))]
    size_mb = sum(len(answer.encode("utf-8")) for answer in answers) / 1e6
    rendered = [render(answer) for answer in answers]

    def render_all() -> None:
        for answer in answers:
            render(answer)

    def split_all() -> None:
        for item in rendered:
            split_rendered(item)

    def both() -> None:
        for answer in answers:
            split_rendered(render(answer))

    print(
        f"Corpus: {len(answers)} answers, {size_mb * 1000:.1f} kB of Markdown; "
        f"best of {RUNS} runs of {ROUNDS} passes after a warm-up."
    )
    print(f"{'step':<16}{'answers/s':>12}{'MB/s':>9}{'ms/answer':>11}")
    for name, work in (("render", render_all), ("split", split_all), ("render+split", both)):
        seconds = best_seconds(work) / ROUNDS
        print(
            f"{name:<16}{len(answers) / seconds:>12,.0f}{size_mb / seconds:>9.2f}"
            f"{seconds / len(answers) * 1000:>11.3f}"
        )
    longest = max(answers, key=len)
    seconds = best_seconds(lambda: split_rendered(render(longest))) / ROUNDS
    print(f"Longest answer ({len(longest):,} characters): {seconds * 1000:.2f} ms render+split.")


if __name__ == "__main__":
    main()
