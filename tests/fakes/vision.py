"""The fake OpenAI server's own count of image parts, written apart from app/memory/images.py
so that a mistake in one is not copied into the other.

Both follow OpenAI's "Images and vision" guide, "Calculating costs"
(https://developers.openai.com/api/docs/guides/images-vision#calculating-costs, undated, as
read in late 2026; models it no longer describes as a third-party copy of
https://platform.openai.com/docs/guides/images-vision taken on 2026-01-16 records them).
Here the rules are
one table of families, each row saying everything about its models, and the arithmetic is
spelled out step by step in the page's own terms.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from typing import Any

from PIL import Image, UnidentifiedImageError

__all__ = [
    "INVALID_IMAGE_CODE",
    "INVALID_IMAGE_MESSAGE",
    "INVALID_IMAGE_TYPE",
    "InvalidImage",
    "fake_image_tokens",
    "image_part_tokens",
]

# What OpenAI answers (HTTP 400) to an image it cannot read, as its API returns it (typo
# included) in the error reports quoted by projects that hit it, for example:
#   {"error": {"message": "You uploaded an unsupported image. Please make sure your image
#    has of one the following formats: ['png', 'jpeg', 'gif', 'webp'].",
#    "type": "invalid_request_error", "code": "invalid_image_format"}}
INVALID_IMAGE_MESSAGE = (
    "You uploaded an unsupported image. Please make sure your image has of one the "
    "following formats: ['png', 'jpeg', 'gif', 'webp']."
)
INVALID_IMAGE_TYPE = "invalid_request_error"
INVALID_IMAGE_CODE = "invalid_image_format"

# The file types the guide lists ("PNG, JPEG, WEBP, and non-animated GIF"), as Pillow names them.
ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "GIF", "WEBP"})


class InvalidImage(ValueError):
    """An image part whose bytes are not an image OpenAI takes: the fake answers 400."""

    def __init__(self) -> None:
        super().__init__(INVALID_IMAGE_MESSAGE)


# One row per family: (name prefix, rule, numbers).
# "tiles": (base tokens, tokens per 512-px tile).
# "patches": (multiplier in hundredths, {detail: (longest side in px or 0, patch budget or 0)});
#   0 means no limit.
NO_LIMIT = 0
OLD_PATCH_RULE = {"low": (NO_LIMIT, 1536), "high": (NO_LIMIT, 1536), "auto": (NO_LIMIT, 1536)}
BIG_PATCH_RULE = {"low": (2048, 6144), "high": (2048, 6144), "auto": (2048, 6144)}
FAMILIES: list[tuple[str, str, Any]] = [
    ("gpt-4o", "tiles", (85, 170)),
    ("chatgpt-4o-latest", "tiles", (85, 170)),
    ("gpt-4o-mini", "tiles", (2833, 5667)),
    ("gpt-4.1", "tiles", (85, 170)),
    ("gpt-4.5", "tiles", (85, 170)),
    ("gpt-4-turbo", "tiles", (85, 170)),
    ("gpt-4-vision-preview", "tiles", (85, 170)),
    ("gpt-4-1106-vision-preview", "tiles", (85, 170)),
    ("gpt-5", "tiles", (70, 140)),
    ("gpt-5.1", "tiles", (70, 140)),
    ("o1", "tiles", (75, 150)),
    ("o3", "tiles", (75, 150)),
    ("computer-use-preview", "tiles", (65, 129)),
    ("gpt-4.1-mini", "patches", (162, BIG_PATCH_RULE)),
    ("gpt-4.1-nano", "patches", (246, OLD_PATCH_RULE)),
    ("o4-mini", "patches", (172, OLD_PATCH_RULE)),
    ("gpt-5-mini", "patches", (120, OLD_PATCH_RULE)),
    ("gpt-5-nano", "patches", (150, OLD_PATCH_RULE)),
    ("gpt-5.2", "patches", (120, BIG_PATCH_RULE)),
    (
        "gpt-5.4",
        "patches",
        (120, {"low": (2048, 6144), "high": (2048, 2500), "auto": (2048, 2500)}),
    ),
    (
        "gpt-5.5",
        "patches",
        (120, {"low": (512, NO_LIMIT), "high": (2048, 2500), "auto": (6000, 10000)}),
    ),
    (
        "gpt-5.6",
        "patches",
        (120, {"low": (512, NO_LIMIT), "high": (2048, 2500), "auto": (65535, NO_LIMIT)}),
    ),
]
# A model the table does not know is priced like gpt-4o.
UNKNOWN_FAMILY = ("", "tiles", (85, 170))


def _family(model: str) -> tuple[str, str, Any]:
    for row in sorted(FAMILIES, key=lambda row: -len(row[0])):
        if model.startswith(row[0]):
            return row
    return UNKNOWN_FAMILY


def fake_image_tokens(model: str, width: int, height: int, detail: str) -> int:
    """Tokens OpenAI bills for one image of width x height sent to `model` with `detail`."""
    if detail not in ("auto", "low", "high"):
        raise ValueError(f"unknown detail {detail!r}")
    _, rule, numbers = _family(model)
    if rule == "tiles":
        base, per_tile = numbers
        if detail == "low":
            return base
        return base + per_tile * _tiles(width, height)
    hundredths, sizing = numbers
    longest_side, budget = sizing[detail]
    patches = _patches(width, height, longest_side, budget)
    # Round the product up, in whole hundredths so that no float gets in the way.
    return (patches * hundredths + 99) // 100


def _tiles(w: int, h: int) -> int:
    # 1. Fit in 2048 x 2048 (only ever down), rounding down.
    # (One division per side: w * 2048 / longest is the exact quotient correctly rounded,
    # which w * (2048 / longest) is not, and the floor of it would then slip below 2048.)
    if w > 2048 or h > 2048:
        longest = max(w, h)
        w = max(1, math.floor(w * 2048 / longest))
        h = max(1, math.floor(h * 2048 / longest))
    # 2. Bring the shortest side to 768 if it is longer, rounding the other side down.
    if w <= h and w > 768:
        h = max(1, math.floor(h * 768 / w))
        w = 768
    elif h < w and h > 768:
        w = max(1, math.floor(w * 768 / h))
        h = 768
    # 3. 512-px squares to cover it.
    return math.ceil(w / 512) * math.ceil(h / 512)


def _patches(w: int, h: int, longest_side: int, budget: int) -> int:
    # Fit within the level's pixel limit, to the nearest whole pixel, never enlarging.
    if longest_side != NO_LIMIT and max(w, h) > longest_side:
        longest = max(w, h)
        w = max(1, math.floor(w * longest_side / longest + 0.5))
        h = max(1, math.floor(h * longest_side / longest + 0.5))
    # A. Patches to cover the image.
    count = math.ceil(w / 32) * math.ceil(h / 32)
    if budget == NO_LIMIT or count <= budget:
        return count
    # B. Shrink to the budget, then so that one side is a whole number of patches.
    shrink_factor = math.sqrt((32**2 * budget) / (w * h))
    adjusted_shrink_factor = shrink_factor * min(
        math.floor(w * shrink_factor / 32) / (w * shrink_factor / 32),
        math.floor(h * shrink_factor / 32) / (h * shrink_factor / 32),
    )
    # C. Round the sides down and cover again.
    resized_w = max(1, math.floor(w * adjusted_shrink_factor))
    resized_h = max(1, math.floor(h * adjusted_shrink_factor))
    return math.ceil(resized_w / 32) * math.ceil(resized_h / 32)


def image_part_tokens(model: str, part: dict[str, Any]) -> int:
    """Tokens of one chat content part of type image_url with a base64 data URL.

    Raises ValueError for a part that is not shaped like one, and InvalidImage (a
    ValueError carrying OpenAI's message) for bytes that are not a PNG, JPEG, GIF or WEBP
    image. The fake cannot fetch http(s) URLs, so those are refused as malformed too.
    """
    if not isinstance(part, dict) or part.get("type") != "image_url":
        raise ValueError("not an image_url content part")
    image_url = part.get("image_url")
    if not isinstance(image_url, dict) or not isinstance(image_url.get("url"), str):
        raise ValueError("image_url must be an object with a string url")
    detail = image_url.get("detail", "auto")
    if detail not in ("auto", "low", "high"):
        raise ValueError(f"detail must be one of auto, low, high, not {detail!r}")
    header, comma, payload = image_url["url"].partition(",")
    if not comma or not header.startswith("data:") or not header.endswith(";base64"):
        raise ValueError("the fake takes images as base64 data URLs only")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage() from None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise InvalidImage() from None
    if image_format not in ACCEPTED_FORMATS:
        raise InvalidImage()
    return fake_image_tokens(model, width, height, detail)
