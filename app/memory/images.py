"""What an image costs in tokens, counted before the request the way OpenAI bills it, and
which models take images at all."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from app.domain.enums import ImageDetail
from app.memory.models import longest_prefix

# Source: OpenAI, "Images and vision", section "Calculating costs"
#   https://developers.openai.com/api/docs/guides/images-vision#calculating-costs
# The page states no date or version. Read here as it stood in late 2026 (it lists the
# gpt-5.6 family and marks gpt-5-mini, gpt-5-nano, gpt-4.1-nano, o4-mini, gpt-5, o1, o3 as
# deprecated); called "the current page" below. Where it is silent about a model it still
# serves, the earlier page at https://platform.openai.com/docs/guides/images-vision fills in,
# as a third-party copy of it taken on 2026-01-16 records it ("the 2026-01 page" below).
#
# The page describes two mechanisms, and says which models use which (openai-python issue
# 2851 is about an older page that mixed them without saying so):
# - Tiles: `detail: low` costs the model's base tokens whatever the size. `high` and `auto`
#   scale the image down to fit 2048 x 2048, then, if the shortest side exceeds 768 px,
#   scale it down to 768 px and round the other side down ("Smaller images are not
#   enlarged"), then cost base + tile tokens for every 512-px square that covers it.
# - Patches: fit the image within the detail level's pixel limit (rounding to whole pixels,
#   never enlarging), cover it with 32-px patches, and when that exceeds the level's patch
#   budget shrink it by the documented factor; the billable tokens are the patch count times
#   the model's multiplier, rounded up. The page adds that floating-point rounding in
#   billing "can make the final count differ from the estimate by one token": the margin of
#   ContextBudget absorbs that.
#
# `detail: auto` is what is sent when `detail` is left out. For tile models the page counts
# it as `high`; for patch models its sizing table says which level `auto` sizes like. The
# deprecated patch models are not in that table, and the 2026-01 page's patch rule for them
# takes no detail at all: every level sizes alike, so nothing is left to guess. The server
# still decides at request time; these counts are what the docs say it bills.

TILE_SIZE = 512
TILE_FIT = 2048  # the square a tile-priced image is first fitted into
TILE_SHORT_SIDE = 768  # then its shortest side is brought down to this, if longer
PATCH_SIZE = 32


@dataclass(frozen=True, slots=True)
class Tiles:
    """A tile-priced model: `base` tokens per image, plus `tile` per 512-px square at high."""

    base: int
    tile: int


@dataclass(frozen=True, slots=True)
class Sizing:
    """How a patch model sizes an image at one detail level."""

    max_side: int | None  # the image is fitted within max_side x max_side pixels
    budget: int | None  # the most patches; a larger image is shrunk to fit them


@dataclass(frozen=True, slots=True)
class Patches:
    """A patch-priced model: 32-px patches, sized per detail level, times a multiplier."""

    multiplier: Fraction  # exact, so 2500 x 1.2 is 3000 and not 3000.0000000000005
    low: Sizing
    high: Sizing
    auto: Sizing

    def sizing(self, detail: ImageDetail) -> Sizing:
        if detail is ImageDetail.LOW:
            return self.low
        if detail is ImageDetail.HIGH:
            return self.high
        return self.auto


def _patches(
    multiplier: str, low: Sizing, high: Sizing | None = None, auto: Sizing | None = None
) -> Patches:
    """A patch model whose levels default to `low`'s sizing: the page's "same sizing limits"."""
    return Patches(Fraction(multiplier), low, high or low, auto or high or low)


# The current page's table: 85/170 for gpt-4o and gpt-4.1. The 2026-01 page gave gpt-4.5 the
# same; gpt-4-turbo and the gpt-4 vision previews had these numbers when the vision guide
# was first written, and chatgpt-4o-latest is gpt-4o as served in ChatGPT.
GPT_4O = Tiles(base=85, tile=170)

# Patch sizings. The deprecated patch models are in neither the current page's sizing table
# nor its calculator; the 2026-01 page gives them one rule for any detail: at most 1536
# patches, no pixel limit (its worked examples: 1024 x 1024 is 1024 patches, 1800 x 2400
# shrinks to 1056 x 1408, 1452 patches).
LEGACY_PATCHES = Sizing(max_side=None, budget=1536)
# gpt-4.1-mini and gpt-5.2, every level: "a 2048-pixel maximum dimension and a 6,144-patch
# budget" (the 2026-01 page gave gpt-4.1-mini the 1536-patch rule; the current one is used).
WIDE_PATCHES = Sizing(max_side=2048, budget=6144)
# gpt-5.4, gpt-5.5, gpt-5.6 at high: "up to 2,500 patches and a 2048-pixel maximum dimension".
HIGH_PATCHES = Sizing(max_side=2048, budget=2500)
# gpt-5.5 and gpt-5.6 at low: "fits within 512 x 512 pixels" (at most 256 patches anyway).
LOW_PATCHES = Sizing(max_side=512, budget=None)

# Matched by the longest prefix, like the context windows (app/memory/window.py), so that
# "gpt-4o-2024-08-06" is gpt-4o while "gpt-4o-mini" and "gpt-4.1-mini" keep their own rows.
IMAGE_PRICING: dict[str, Tiles | Patches] = {
    # Tiles: the current page's table, then the 2026-01 page's for models it dropped.
    "gpt-4o": GPT_4O,
    "chatgpt-4o-latest": GPT_4O,
    "gpt-4o-mini": Tiles(base=2833, tile=5667),
    "gpt-4.1": GPT_4O,
    "gpt-4.5": GPT_4O,
    "gpt-4-turbo": GPT_4O,
    "gpt-4-vision-preview": GPT_4O,
    "gpt-4-1106-vision-preview": GPT_4O,
    "gpt-5": Tiles(base=70, tile=140),  # and gpt-5-chat-latest, gpt-5-pro, gpt-5-codex
    "gpt-5.1": Tiles(base=70, tile=140),
    "o1": Tiles(base=75, tile=150),  # and o1-pro
    "o3": Tiles(base=75, tile=150),  # and o3-pro
    "computer-use-preview": Tiles(base=65, tile=129),  # the 2026-01 page
    # Patches: the current page's multipliers (the 2026-01 page had gpt-5-mini at 1.62 and
    # gpt-5-nano at 2.46, the figures of gpt-4.1-mini and gpt-4.1-nano).
    "gpt-4.1-mini": _patches("1.62", WIDE_PATCHES),
    "gpt-4.1-nano": _patches("2.46", LEGACY_PATCHES),
    "o4-mini": _patches("1.72", LEGACY_PATCHES),
    "gpt-5-mini": _patches("1.2", LEGACY_PATCHES),
    "gpt-5-nano": _patches("1.5", LEGACY_PATCHES),
    "gpt-5.2": _patches("1.2", WIDE_PATCHES),
    # gpt-5.4 (and -mini, -nano): low "can use more tokens than high"; auto sizes like high.
    "gpt-5.4": _patches("1.2", WIDE_PATCHES, HIGH_PATCHES, HIGH_PATCHES),
    # gpt-5.5 and gpt-5.6: auto sizes like `original`, which this bot does not send.
    "gpt-5.5": _patches("1.2", LOW_PATCHES, HIGH_PATCHES, Sizing(max_side=6000, budget=10_000)),
    "gpt-5.6": _patches("1.2", LOW_PATCHES, HIGH_PATCHES, Sizing(max_side=65_535, budget=None)),
}

# For a model the table does not know (a local server, a model newer than the table):
# gpt-4o's tiles. It is the rule the page has always given first and the one its general
# advice quotes ("a budget of ~85 tokens" at low), and servers that speak the protocol but
# count images their own way (llava, qwen-vl on Ollama or vLLM) either ignore it or land
# near it: a few hundred to a couple of thousand tokens for a photo.
FALLBACK_PRICING = GPT_4O

# Models that accept images, as prefixes; NOT_VISION_MODELS are longer prefixes inside
# those families that do not (matched by the longest prefix too): o1-mini, o1-preview and
# o3-mini take text only, gpt-4-turbo-preview is the text-only gpt-4-0125-preview, and the
# audio, realtime, transcription and speech models of the gpt-4o family take no images.
KNOWN_VISION_MODELS: tuple[str, ...] = (
    "gpt-4o",
    "chatgpt-4o-latest",
    "gpt-4.1",
    "gpt-4.5",
    "gpt-4-turbo",
    "gpt-4-vision-preview",
    "gpt-4-1106-vision-preview",
    "gpt-5",
    "o1",
    "o3",
    "o4-mini",
    "computer-use-preview",
)
NOT_VISION_MODELS: tuple[str, ...] = (
    "o1-mini",
    "o1-preview",
    "o3-mini",
    "gpt-4-turbo-preview",
    "gpt-4o-audio",
    "gpt-4o-mini-audio",
    "gpt-4o-realtime",
    "gpt-4o-mini-realtime",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-tts",
)


def image_tokens(model: str, width: int, height: int, detail: ImageDetail) -> int:
    """Tokens one image costs in a request to `model`.

    Unknown models: the tile formula of gpt-4o (85 base, 170 a tile), the documented default
    that most OpenAI-compatible servers either ignore or come close to (FALLBACK_PRICING).
    """
    if width < 1 or height < 1:
        raise ValueError(f"an image has no pixels at {width} x {height}")
    prefix = longest_prefix(model, IMAGE_PRICING)
    pricing = IMAGE_PRICING[prefix] if prefix is not None else FALLBACK_PRICING
    if isinstance(pricing, Tiles):
        return _tile_tokens(pricing, width, height, detail)
    patches = _patch_count(width, height, pricing.sizing(detail))
    return math.ceil(patches * pricing.multiplier)


def sees_images(model: str, extra: Iterable[str] = ()) -> bool:
    """True when the model is a known vision model, or matches one of `extra`.

    `extra` is OPENAI_VISION_MODELS: exact names, or prefixes ending in '*' ("llava*"), for
    the models of other servers. Known names match by the longest prefix, so 'o3-mini' is
    not taken for 'o3'.
    """
    for pattern in extra:
        if model == pattern or (pattern.endswith("*") and model.startswith(pattern[:-1])):
            return True
    prefix = longest_prefix(model, KNOWN_VISION_MODELS + NOT_VISION_MODELS)
    return prefix is not None and prefix in KNOWN_VISION_MODELS


def _scaled_down(side: int, scale_to: int, scale_from: int) -> int:
    """side x scale_to / scale_from rounded down, in integers, and never to nothing."""
    return max(1, side * scale_to // scale_from)


def _tile_tokens(pricing: Tiles, width: int, height: int, detail: ImageDetail) -> int:
    if detail is ImageDetail.LOW:
        return pricing.base
    longest = max(width, height)
    if longest > TILE_FIT:
        width = _scaled_down(width, TILE_FIT, longest)
        height = _scaled_down(height, TILE_FIT, longest)
    shortest = min(width, height)
    if shortest > TILE_SHORT_SIDE:
        width = _scaled_down(width, TILE_SHORT_SIDE, shortest)
        height = _scaled_down(height, TILE_SHORT_SIDE, shortest)
    tiles = -(-width // TILE_SIZE) * -(-height // TILE_SIZE)
    return pricing.base + tiles * pricing.tile


def _patch_count(width: int, height: int, sizing: Sizing) -> int:
    """Patches that cover the image once sized: the page's steps A to C."""
    longest = max(width, height)
    if sizing.max_side is not None and longest > sizing.max_side:
        # "rounding to integer pixels": to the nearest, halves up, in integers.
        width = max(1, (2 * width * sizing.max_side + longest) // (2 * longest))
        height = max(1, (2 * height * sizing.max_side + longest) // (2 * longest))
    patches = -(-width // PATCH_SIZE) * -(-height // PATCH_SIZE)
    if sizing.budget is None or patches <= sizing.budget:
        return patches
    # Step B in the page's own floating-point formula ("keep full precision until
    # calculating the final dimensions"): shrink to the budget, then a little more so that
    # one side fills a whole number of patches; step C rounds the sides down.
    shrink = math.sqrt((PATCH_SIZE**2 * sizing.budget) / (width * height))
    across = width * shrink / PATCH_SIZE
    down = height * shrink / PATCH_SIZE
    shrink *= min(math.floor(across) / across, math.floor(down) / down)
    resized_width = max(1, math.floor(width * shrink))
    resized_height = max(1, math.floor(height * shrink))
    return -(-resized_width // PATCH_SIZE) * -(-resized_height // PATCH_SIZE)
