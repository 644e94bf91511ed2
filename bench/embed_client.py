"""What one embedding request costs the bot itself: the app's Embedder (the openai client)
against an OpenAI-compatible /embeddings server in another process (the project's fake,
which answers at once), so that the round trip is the bot's share: building the request,
the loopback, reading the JSON of the vector. bench/recall.py's model server shares the
bot's process and event loop, so there its HTTP work counts as the bot's.

    .venv/bin/python bench/embed_client.py
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import sys
import time
from pathlib import Path

from openai import AsyncOpenAI

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.llm.embeddings import Embedder  # noqa: E402

RUNS, WARMUP = 200, 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def main() -> int:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.openai",
        "--port",
        str(port),
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    client = AsyncOpenAI(api_key="test-key", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    embedder = Embedder(client, "text-embedding-3-small", timeout=5)
    try:
        for _ in range(100):  # until the server listens
            try:
                await embedder.embed(["warm up"])
                break
            except Exception:  # noqa: BLE001 - not up yet
                await asyncio.sleep(0.1)
        times = []
        for run in range(WARMUP + RUNS):
            started = time.perf_counter()
            await embedder.embed([f"Where do I keep my two-wheeler? ({run})"])
            if run >= WARMUP:
                times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p50, p95 = statistics.median(times), times[int(len(times) * 0.95)]
        print(
            f"one embedding request (256 dimensions, server in another process), {RUNS} "
            f"requests: round trip p50 {p50:.2f} ms, p95 {p95:.2f} ms"
        )
    finally:
        await client.close()
        server.terminate()
        await server.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
