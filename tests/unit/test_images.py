"""Image tokens as OpenAI bills them: the docs' worked examples for each family, model
matching, the detail levels, odd sizes, and agreement with the fake server's own count."""

from __future__ import annotations

import base64
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from app.domain.enums import ImageDetail
from app.memory.images import IMAGE_PRICING, image_tokens, sees_images
from tests.fakes.vision import (
    FAMILIES,
    INVALID_IMAGE_MESSAGE,
    InvalidImage,
    fake_image_tokens,
    image_part_tokens,
)

LOW, HIGH, AUTO = ImageDetail.LOW, ImageDetail.HIGH, ImageDetail.AUTO


# "Calculating costs", tile-based, the examples for gpt-4o.
@pytest.mark.parametrize(
    ("width", "height", "detail", "tokens"),
    [
        (1024, 1024, HIGH, 765),  # 768 x 768: 4 tiles, 170 * 4 + 85
        (2048, 4096, HIGH, 1105),  # 1024 x 2048, then 768 x 1536: 6 tiles, 170 * 6 + 85
        (4096, 8192, LOW, 85),  # low is the base, whatever the size
    ],
)
def test_the_docs_gpt_4o_examples(
    width: int, height: int, detail: ImageDetail, tokens: int
) -> None:
    assert image_tokens("gpt-4o", width, height, detail) == tokens


@pytest.mark.parametrize(
    ("model", "low", "high"),
    [
        ("gpt-4o", 85, 85 + 4 * 170),
        ("gpt-4.1", 85, 85 + 4 * 170),
        ("gpt-4.5-preview", 85, 85 + 4 * 170),
        ("gpt-4-turbo", 85, 85 + 4 * 170),
        ("chatgpt-4o-latest", 85, 85 + 4 * 170),
        ("gpt-4o-mini", 2833, 2833 + 4 * 5667),
        ("gpt-5", 70, 70 + 4 * 140),
        ("gpt-5-chat-latest", 70, 70 + 4 * 140),
        ("gpt-5.1", 70, 70 + 4 * 140),
        ("o1", 75, 75 + 4 * 150),
        ("o1-pro", 75, 75 + 4 * 150),
        ("o3", 75, 75 + 4 * 150),
        ("computer-use-preview", 65, 65 + 4 * 129),
    ],
)
def test_each_tile_family_has_its_own_base_and_tile(model: str, low: int, high: int) -> None:
    assert image_tokens(model, 1024, 1024, LOW) == low
    assert image_tokens(model, 1024, 1024, HIGH) == high


def test_a_small_image_is_not_enlarged_to_768() -> None:
    # 500 x 500 stays one tile; scaled up to 768 it would take four.
    assert image_tokens("gpt-4o", 500, 500, HIGH) == 85 + 170


# "Calculating costs", patch-based: 1024 x 1024 is 1024 patches; 1800 x 2400 (4275 patches
# over the 1536 budget) shrinks to 1056 x 1408, 33 x 44 = 1452 patches. Tokens are the
# patches times the model's multiplier, rounded up.
@pytest.mark.parametrize(
    ("model", "multiplied_1024", "multiplied_1452"),
    [
        ("gpt-5-mini", 1229, 1743),  # 1.2
        ("gpt-5-nano", 1536, 2178),  # 1.5
        ("gpt-4.1-nano", 2520, 3572),  # 2.46
        ("o4-mini", 1762, 2498),  # 1.72
    ],
)
def test_the_docs_patch_examples(model: str, multiplied_1024: int, multiplied_1452: int) -> None:
    assert image_tokens(model, 1024, 1024, HIGH) == multiplied_1024
    assert image_tokens(model, 1800, 2400, HIGH) == multiplied_1452


def test_the_docs_gpt_5_4_examples() -> None:
    # 1024 x 1024: 1024 patches, ceil(1024 * 1.2); 2048 x 2048: 4096 patches over the
    # 2,500 budget, shrunk to 1600 x 1600, ceil(2500 * 1.2).
    assert image_tokens("gpt-5.4", 1024, 1024, HIGH) == 1229
    assert image_tokens("gpt-5.4", 2048, 2048, HIGH) == 3000


def test_gpt_4_1_mini_fits_2048_pixels_and_6144_patches() -> None:
    # 1800 x 2400 fits 2048 as 1536 x 2048: 48 x 64 = 3072 patches, under 6144; x 1.62.
    assert image_tokens("gpt-4.1-mini", 1800, 2400, HIGH) == 4977


def test_gpt_5_4_low_may_cost_more_than_high_and_auto_sizes_like_high() -> None:
    # Low: 2048 px and 6144 patches: 4096 patches; high: 2500 patches.
    assert image_tokens("gpt-5.4-mini", 4000, 4000, LOW) == 4916
    assert image_tokens("gpt-5.4-mini", 4000, 4000, HIGH) == 3000
    assert image_tokens("gpt-5.4-mini", 4000, 4000, AUTO) == 3000


def test_gpt_5_5_low_fits_512_pixels() -> None:
    assert image_tokens("gpt-5.5", 4000, 4000, LOW) == 308  # 16 x 16 patches, x 1.2 rounded up


@pytest.mark.parametrize("model", ["gpt-5-mini", "gpt-5-nano", "gpt-4.1-nano", "o4-mini"])
def test_the_older_patch_models_size_every_detail_alike(model: str) -> None:
    counts = {image_tokens(model, 1800, 2400, detail) for detail in ImageDetail}
    assert len(counts) == 1


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini", "gpt-5", "o3", "unknown-model"])
def test_auto_on_a_tile_model_counts_as_high(model: str) -> None:
    assert image_tokens(model, 3000, 2000, AUTO) == image_tokens(model, 3000, 2000, HIGH)


@pytest.mark.parametrize(
    ("snapshot", "family"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("gpt-5-2025-08-07", "gpt-5"),
        ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
        ("o3-2025-04-16", "o3"),
        ("o4-mini-2025-04-16", "o4-mini"),
        ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
    ],
)
def test_snapshots_match_their_family(snapshot: str, family: str) -> None:
    for detail in ImageDetail:
        assert image_tokens(snapshot, 1800, 2400, detail) == image_tokens(
            family, 1800, 2400, detail
        )


def test_mini_models_do_not_take_their_big_siblings_numbers() -> None:
    assert image_tokens("gpt-4o-mini", 1024, 1024, LOW) == 2833
    assert image_tokens("gpt-4.1-mini", 1024, 1024, LOW) == 1659  # patches, not 85
    assert image_tokens("gpt-4.1", 1024, 1024, LOW) == 85


def test_an_unknown_model_is_priced_like_gpt_4o() -> None:
    for detail in ImageDetail:
        assert image_tokens("llava:13b", 2048, 4096, detail) == image_tokens(
            "gpt-4o", 2048, 4096, detail
        )


@pytest.mark.parametrize(
    ("model", "tokens"),
    [("gpt-4o", 85 + 170), ("gpt-4o-mini", 2833 + 5667), ("gpt-5-mini", 2), ("gpt-5.4", 2)],
)
def test_a_one_pixel_image_takes_one_tile_or_one_patch(model: str, tokens: int) -> None:
    assert image_tokens(model, 1, 1, HIGH) == tokens


@pytest.mark.parametrize(("width", "height"), [(10_000, 10), (10, 10_000)])
def test_extreme_aspect_ratios(width: int, height: int) -> None:
    # Tiles: fitted to 2048 x 2 (or 2 x 2048), four tiles in a row.
    assert image_tokens("gpt-4o", width, height, HIGH) == 85 + 4 * 170
    # Patches: 313 x 1 = 313, under the budget; x 1.2 rounded up.
    assert image_tokens("gpt-5-mini", width, height, HIGH) == 376
    # gpt-5.2 first fits 2048 px: 2048 x 2 is 64 patches.
    assert image_tokens("gpt-5.2", width, height, HIGH) == 77


def test_an_image_without_pixels_is_refused() -> None:
    with pytest.raises(ValueError, match="no pixels"):
        image_tokens("gpt-4o", 0, 10, HIGH)


# Both tables' families (a family missing from one of them shows up as a disagreement),
# a snapshot, a sibling under a family prefix, and a model neither knows.
MODELS = sorted(
    {*IMAGE_PRICING, *(row[0] for row in FAMILIES)}
    | {"gpt-4o-2024-08-06", "gpt-5.4-nano", "some-local-model"}
)


@settings(max_examples=2000, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    width=st.integers(1, 10_000),
    height=st.integers(1, 10_000),
    detail=st.sampled_from(list(ImageDetail)),
)
def test_our_count_agrees_with_the_fake_servers(
    model: str, width: int, height: int, detail: ImageDetail
) -> None:
    assert image_tokens(model, width, height, detail) == fake_image_tokens(
        model, width, height, detail.value
    )


@pytest.mark.parametrize(
    ("model", "sees"),
    [
        ("o3", True),
        ("o3-2025-04-16", True),
        ("o3-mini", False),
        ("o3-mini-2025-01-31", False),
        ("o1", True),
        ("o1-mini", False),
        ("o1-preview", False),
        ("o4-mini", True),
        ("gpt-4o-2024-08-06", True),
        ("gpt-4o-mini", True),
        ("gpt-4o-audio-preview", False),
        ("gpt-4o-mini-transcribe", False),
        ("chatgpt-4o-latest", True),
        ("gpt-4.1-nano", True),
        ("gpt-4.5-preview", True),
        ("gpt-4-turbo", True),
        ("gpt-4-turbo-preview", False),
        ("gpt-4", False),
        ("gpt-5-chat-latest", True),
        ("gpt-5.4-mini", True),
        ("gpt-3.5-turbo", False),
        ("llava:13b", False),
    ],
)
def test_known_vision_models(model: str, sees: bool) -> None:
    assert sees_images(model) is sees


def test_extra_vision_models_by_prefix_or_exact_name() -> None:
    extra = ["llava*", "qwen2.5-vl:7b"]
    assert sees_images("llava:13b", extra)
    assert sees_images("llava", extra)
    assert sees_images("qwen2.5-vl:7b", extra)
    assert not sees_images("qwen2.5-vl:72b", extra)  # exact names are exact
    assert not sees_images("qwen2.5:7b", extra)
    assert sees_images("gpt-4o", extra)


def _data_url(width: int, height: int, image_format: str = "PNG") -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format=image_format)
    kind = image_format.lower()
    return f"data:image/{kind};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def test_the_fake_reads_the_size_from_the_data_url() -> None:
    part = {"type": "image_url", "image_url": {"url": _data_url(1024, 1024), "detail": "high"}}
    assert image_part_tokens("gpt-4o", part) == 765
    jpeg = {"type": "image_url", "image_url": {"url": _data_url(300, 200, "JPEG")}}
    assert image_part_tokens("gpt-4o", jpeg) == 255  # detail left out is auto


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64," + base64.b64encode(b"not an image").decode(),
        "data:image/png;base64,@@@",
        _data_url(10, 10, "BMP"),  # Pillow reads it; OpenAI takes PNG, JPEG, GIF, WEBP
    ],
)
def test_the_fake_refuses_what_openai_cannot_read(url: str) -> None:
    with pytest.raises(InvalidImage) as raised:
        image_part_tokens("gpt-4o", {"type": "image_url", "image_url": {"url": url}})
    assert str(raised.value) == INVALID_IMAGE_MESSAGE


@pytest.mark.parametrize(
    "part",
    [
        {"type": "text", "text": "hi"},
        {"type": "image_url", "image_url": "data:image/png;base64,AAAA"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": _data_url(4, 4), "detail": "original"}},
    ],
)
def test_the_fake_refuses_malformed_parts(part: dict[str, object]) -> None:
    with pytest.raises(ValueError) as raised:
        image_part_tokens("gpt-4o", part)
    assert not isinstance(raised.value, InvalidImage)
