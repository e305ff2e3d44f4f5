"""Content boxes: what of a file is the picture, once added frames and caption bands are left out.

The keeper policy counts the content's pixels, and the layouts flat pictures are compared by are drawn
from the content box: a caption band counted as picture makes a captioned copy look bigger than its
original and laid out otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from lookalike.embedder.traits import (
    caption_band,
    content_box,
    content_crop,
    hue_sixths,
    image_traits,
    thumbnail_pixels,
    tint_colours,
)

BLACK, WHITE = (0, 0, 0), (255, 255, 255)


def photo(size: tuple[int, int] = (400, 300), seed: int = 0) -> Image.Image:
    """Detail everywhere, no flat line at any edge: a stand-in for a photograph."""
    noise = np.random.default_rng(seed).integers(40, 216, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    return Image.fromarray(noise).resize(size, Image.Resampling.BILINEAR)


def drawing(size: tuple[int, int] = (400, 400)) -> Image.Image:
    """A round object drawn on white, its own white margin on every side."""
    picture = Image.new("RGB", size, WHITE)
    width, height = size
    ImageDraw.Draw(picture).ellipse((width // 5, height // 5, width * 4 // 5, height * 4 // 5),
                                    fill=(40, 60, 110), outline=BLACK, width=4)
    return picture


def captioned(picture: Image.Image, top: bool, fill=BLACK, ink=WHITE, words="me irl") -> Image.Image:
    """A meme caption: a band of one colour over a seventh of the picture, with a few words on it."""
    out = picture.copy()
    band = picture.height // 7
    y0 = 0 if top else picture.height - band
    draw = ImageDraw.Draw(out)
    draw.rectangle((0, y0, picture.width, y0 + band), fill=fill)
    draw.text((band // 3, y0 + band // 6), words, fill=ink, font_size=band * 2 // 3)
    return out


def box_of(picture: Image.Image) -> tuple[float, float, float, float]:
    """The content box as shares of the height and width (top, bottom, left, right)."""
    pixels = thumbnail_pixels(picture)
    top, bottom, left, right = content_box(pixels)
    height, width = pixels.shape[:2]
    return top / height, bottom / height, left / width, right / width


def test_a_photo_is_all_content():
    assert box_of(photo()) == (0, 1, 0, 1)


def test_a_frame_of_one_colour_is_left_out():
    framed = ImageOps.expand(photo(), border=50, fill=(128, 128, 128))  # 500 x 400
    assert box_of(framed) == pytest.approx((50 / 400, 350 / 400, 50 / 500, 450 / 500), abs=0.02)


def test_a_framed_copy_cropped_to_its_content_is_its_original_again():
    original = photo((800, 600))
    framed = ImageOps.expand(original, border=120, fill=WHITE)  # 1040 x 840
    inside = content_crop(framed)
    assert inside.size == pytest.approx((800, 600), abs=17)  # found on a 128 px thumbnail: 8 px a step
    def coarse(picture: Image.Image) -> np.ndarray:
        return np.asarray(picture.resize((20, 15), Image.Resampling.BOX), dtype=np.int16)

    assert np.abs(coarse(inside) - coarse(original)).mean() < 8
    assert content_crop(original).size == original.size  # nothing to take off


@pytest.mark.parametrize("top", [True, False], ids=["top", "bottom"])
def test_a_caption_band_over_a_photo_is_left_out(top):
    top_share, bottom_share, left, right = box_of(captioned(photo(), top))
    band = (300 // 7) / 300
    assert (left, right) == (0, 1)
    assert (top_share, bottom_share) == pytest.approx((band, 1) if top else (0, 1 - band), abs=0.02)


@pytest.mark.parametrize("top", [True, False], ids=["top", "bottom"])
def test_a_caption_over_a_drawing_on_white_leaves_the_drawing_as_its_original_has_it(top):
    """The band's edge and the drawing's own margin on the other three sides make a frame once the band
    is gone (the line the band's edge blurs into is taken with it): the copy's content is the drawing's,
    not the drawing with its margin, which would make the captioned copy the larger one to keep."""
    original = box_of(drawing())
    assert original == pytest.approx((0.2, 0.8, 0.2, 0.8), abs=0.02)
    assert box_of(captioned(drawing(), top)) == pytest.approx(original, abs=0.02)
    small = captioned(drawing(), top).resize((130, 130), Image.Resampling.BILINEAR)  # and shrunk: a blended
    assert box_of(small) == pytest.approx(original, abs=0.03)  # line between band and margin


def test_a_sky_above_and_a_ground_below_are_no_caption():
    """Flat at both ends and neither holding text: nothing says which, if either, was added."""
    picture = Image.new("RGB", (400, 300), (120, 170, 230))
    ImageDraw.Draw(picture).rectangle((0, 260, 400, 300), fill=(90, 70, 40))
    ImageDraw.Draw(picture).rectangle((0, 40, 400, 260), fill=(60, 120, 50))
    ImageDraw.Draw(picture).ellipse((120, 80, 280, 240), fill=(240, 200, 60))
    assert box_of(picture) == (0, 1, 0, 1)


def test_a_plain_bar_is_taken_off_but_what_it_leaves_is_not_peeled():
    """One flat band without text at the bottom may be a bar added or the ground under a sky: it goes,
    but a sky left on three sides is not then taken for a frame (only a caption's text says the band was
    put over a drawing on its own background)."""
    picture = Image.new("RGB", (400, 300), (120, 170, 230))
    ImageDraw.Draw(picture).rectangle((0, 250, 400, 300), fill=(90, 70, 40))
    ImageDraw.Draw(picture).ellipse((120, 80, 280, 240), fill=(240, 200, 60))
    assert box_of(picture) == pytest.approx((0, 250 / 300, 0, 1), abs=0.02)


def test_caption_band_reports_its_lines_and_whether_it_holds_text():
    pixels = thumbnail_pixels(captioned(photo(), top=True)).astype(np.float32)
    lines, text = caption_band(pixels, limit=40)
    assert text and lines == pytest.approx(pixels.shape[0] / 7, abs=2)
    plain = thumbnail_pixels(captioned(photo(), top=True, words="")).astype(np.float32)
    assert caption_band(plain, limit=40)[1] is False  # a plain bar: a band, without text
    assert caption_band(thumbnail_pixels(photo()).astype(np.float32), limit=40) == (0, False)


def test_the_keeper_counts_a_captioned_drawing_by_its_drawing():
    """The traits the keeper policy reads: a captioned copy's content is no larger than its original's."""
    original, copy = image_traits(drawing()), image_traits(captioned(drawing(), top=False))
    assert copy.content_pixels <= original.content_pixels * 1.05


@pytest.mark.parametrize("kind", ["noise", "blank", "half black", "black band"])
def test_every_box_is_inside_the_picture_and_never_empty_however_small(kind):
    """Hostile sizes: one pixel, a line, a picture that is all band or all frame."""
    rng = np.random.default_rng(0)
    for height in range(1, 12):
        for width in range(1, 12):
            pixels = {"noise": rng.integers(0, 256, (height, width, 3)).astype(np.float32),
                      "blank": np.full((height, width, 3), 255.0, np.float32)}.get(kind)
            if pixels is None:
                pixels = np.full((height, width, 3), 255.0, np.float32)
                pixels[: height // 2 if kind == "half black" else max(1, height // 4)] = 0.0
            top, bottom, left, right = content_box(pixels)
            assert 0 <= top < bottom <= height and 0 <= left < right <= width


def test_the_colour_grid_says_where_each_colour_is_and_is_empty_for_a_grey_picture():
    picture = Image.new("RGB", (160, 80), (230, 120, 30))  # orange on the left ...
    ImageDraw.Draw(picture).rectangle((80, 0, 160, 80), fill=(30, 90, 220))  # ... blue on the right
    grid = np.frombuffer(image_traits(picture).tint, dtype=np.int8).reshape(8, 8, 2)
    red_green, yellow_blue = grid[..., 0].astype(int), grid[..., 1].astype(int)
    assert (red_green[:, :4] > 40).all() and (yellow_blue[:, :4] > 40).all()  # warm
    assert (red_green[:, 4:] < -20).all() and (yellow_blue[:, 4:] < -60).all()  # cool
    assert image_traits(ImageOps.grayscale(picture).convert("RGB")).tint == b""


def test_the_cells_colours_come_back_from_the_colour_grid_and_the_luminance_thumbnail():
    """The duplicates' hue check needs each cell's red, green and blue: the stored opponent colours and
    the luminance give them back, to within the grid's rounding."""
    picture = Image.new("RGB", (160, 80), (230, 120, 30))
    ImageDraw.Draw(picture).rectangle((80, 0, 160, 80), fill=(30, 90, 220))
    traits = image_traits(picture)
    thumbnail = np.frombuffer(traits.thumbnail, dtype=np.uint8).reshape(1, 16, 16).astype(np.float32)
    grid = np.frombuffer(traits.tint, dtype=np.int8).reshape(1, 8, 8, 2).astype(np.float32)
    colours = tint_colours(thumbnail, grid)[0]
    assert np.abs(colours[:, :4] - (230, 120, 30)).max() <= 3
    assert np.abs(colours[:, 4:] - (30, 90, 220)).max() <= 3
    assert hue_sixths(colours[0, 0]) == pytest.approx(90 / 200, abs=0.03)  # orange: nearer red than yellow
