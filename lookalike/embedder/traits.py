"""What a duplicate clean-up needs to know about a picture beyond its vector, read cheaply while decoding.

- **Content size**: the picture's own pixels, without a uniform border or a caption band someone added.
  "Keep the most pixels" must not keep the copy with a white frame around it.
- **Greyscale**: a greyscale copy of a colour photo has lost something; the colour one is kept.
- **Quality**: lossless files are 100; a JPEG's quality is estimated from its quantisation table, so the
  least recompressed copy can be preferred.
- **Colours**: a hue histogram weighted by saturation. Two versions of one design in other colours
  (a purple and a blue wallpaper) look alike to an ImageNet model; their hues do not.
- **Thumbnail**: the whole picture's luminance at ``THUMBNAIL_SIDE`` pixels a side (256 bytes), so a pair the
  model finds alike only once turned or shrunk can be checked pixel by pixel without decoding again.

All of it comes from a thumbnail of at most ``THUMB`` pixels a side: well under a millisecond next to
the decode itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image

THUMB = 128
HUE_BINS = 16
UNIFORM_TOLERANCE = 14  # per channel, out of 255: JPEG noise on a flat band stays within it
BORDER_SHARE = 0.97  # a border row: nearly all of it one colour
CAPTION_SHARE = 0.6  # a caption row: mostly the band colour, the rest its text
MAX_TRIM = 0.4  # no more than this share of a side is ever taken for a border or a band
MAX_CAPTION = 0.2  # a caption band is at most this share of the height
EDGE_SHARE = 0.3  # share of the first picture line that must differ clearly from the band before it
GREY_CHROMA = 10  # max(R,G,B) - min(R,G,B) below this at the 99th percentile: a grey picture
COLOURFUL = 0.04  # mean saturation (0-1) over which the hue histogram says something
THUMBNAIL_SIDE = 16
TINT_SIDE = 8  # cells a side of the colour grid (:func:`tint_grid`): colours change more slowly than shapes
TRAITS_VERSION = 3
"""Bumped whenever what :func:`image_traits` finds for the same file changes, so an index can tell the
traits it holds are stale (read again from the file; ``lookalike index`` refreshes them in place).
2: a caption band over a drawing on white takes its blended edge lines and leaves the drawing alone.
3: the colours where they are (``Traits.tint``)."""


ORIENTED = 0.1
"""A picture at least this much wider than high (width / height >= 1.1), or as much higher than wide,
has an orientation that a quarter turn swaps and every other copy keeps (:func:`orientations`)."""
TURNED_VIEWS = np.array([False, True, False, True]).repeat(2)
"""Which of the eight views of a square grid (quarter turns 0-3, each as drawn then mirrored: the order
the thumbnail and layout comparisons use) are turned a quarter, and so swap a picture's shape."""


def orientations(widths: ArrayLike, heights: ArrayLike) -> np.ndarray:
    """1 for landscape, -1 for portrait (``ORIENTED``), 0 for near-square or an unknown size."""
    widths, heights = np.asarray(widths, dtype=np.float64), np.asarray(heights, dtype=np.float64)
    known = np.minimum(widths, heights) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(known, widths / heights, 1.0)
    return np.where(ratio >= 1 + ORIENTED, 1, np.where(ratio <= 1 / (1 + ORIENTED), -1, 0)).astype(np.int8)


@dataclass(frozen=True)
class Traits:
    content_width: int  # in the image's own pixels
    content_height: int
    greyscale: bool
    quality: int  # 100 for lossless, else the estimated JPEG quality (1-99)
    colours: bytes  # HUE_BINS saturation-weighted hue bins (uint8, summing to about 255); empty if grey
    colourfulness: float  # mean saturation, 0-1
    thumbnail: bytes = b""  # THUMBNAIL_SIDE^2 luminance bytes of the whole picture (a content box
    # would not turn with it: caption bands are sought at the top and bottom); empty if not recorded
    tint: bytes = b""  # the whole picture's colours cell by cell (:func:`tint_grid`); empty if grey or
    # not recorded

    @property
    def content_pixels(self) -> int:
        return self.content_width * self.content_height


TRAIT_FIELDS = ("content_width", "content_height", "greyscale", "quality", "colours", "colourfulness",
                "thumbnail", "tint", "traits_version")
"""How traits are stored, in an index row and a shard row alike: their fields, then the
``TRAITS_VERSION`` that found them."""


def stored_traits(traits: Traits | None) -> tuple:
    """``traits`` as stored (``TRAIT_FIELDS``); all None for none, and an empty thumbnail is None (not
    recorded)."""
    if traits is None:
        return (None,) * len(TRAIT_FIELDS)
    return (traits.content_width, traits.content_height, traits.greyscale, traits.quality, traits.colours,
            traits.colourfulness, traits.thumbnail or None, traits.tint or None, TRAITS_VERSION)


def traits_from_stored(width: int | None, height: int | None, greyscale: bool | None, quality: int | None,
                       colours: bytes | None, colourfulness: float | None, thumbnail: bytes | None,
                       tint: bytes | None, version: int | None) -> Traits | None:
    """Traits back from their stored fields (``TRAIT_FIELDS``); None when missing or found by another
    ``TRAITS_VERSION``: stale, to be read again from the file."""
    if width is None or version != TRAITS_VERSION:
        return None
    return Traits(width, height, bool(greyscale), quality, colours or b"", colourfulness, thumbnail or b"",
                  tint or b"")


def image_traits(image: Image.Image, quality: int = 100, size: tuple[int, int] | None = None) -> Traits:
    """Traits of a decoded RGB image (oriented as seen); ``quality`` from :func:`jpeg_quality`;
    ``size`` the original's size when ``image`` was decoded at reduced scale."""
    pixels = thumbnail_pixels(image)
    top, bottom, left, right = content_box(pixels)
    width, height = size or image.size
    scale_x, scale_y = width / pixels.shape[1], height / pixels.shape[0]
    content = pixels[top:bottom, left:right]
    chroma = content.max(axis=2) - content.min(axis=2)
    greyscale = bool(np.percentile(chroma, 99) < GREY_CHROMA)
    colours, colourfulness = hue_histogram(content)
    return Traits(
        max(1, round((right - left) * scale_x)), max(1, round((bottom - top) * scale_y)),
        greyscale, quality, b"" if greyscale else colours, colourfulness, luminance_thumbnail(pixels),
        b"" if greyscale else tint_grid(pixels),
    )


def content_crop(image: Image.Image) -> Image.Image:
    """The picture inside its added border and caption band (:func:`content_box`), at its own pixels:
    what a framed copy is compared by (the duplicates' frame look)."""
    pixels = thumbnail_pixels(image)
    top, bottom, left, right = content_box(pixels)
    scale_x, scale_y = image.width / pixels.shape[1], image.height / pixels.shape[0]
    return image.crop((round(left * scale_x), round(top * scale_y), round(right * scale_x),
                       round(bottom * scale_y)))


def thumbnail_pixels(image: Image.Image) -> np.ndarray:
    """The picture at most ``THUMB`` pixels a side as RGB pixels [h, w, 3] (int16): what every trait,
    the content box among them, is read from."""
    thumb = image.copy()
    thumb.thumbnail((THUMB, THUMB), Image.Resampling.BOX)
    return np.asarray(thumb.convert("RGB"), dtype=np.int16)


def luminance_thumbnail(pixels: np.ndarray) -> bytes:
    """RGB pixels [h, w, 3] as ``THUMBNAIL_SIDE`` x ``THUMBNAIL_SIDE`` luminance bytes (PIL's "L")."""
    grey = Image.fromarray(pixels.astype(np.uint8), "RGB").convert("L")
    return grey.resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BOX).tobytes()


def tint_grid(pixels: np.ndarray) -> bytes:
    """RGB pixels [h, w, 3] as ``TINT_SIDE`` x ``TINT_SIDE`` cells of two opponent colours, red-green
    (R - G) / 2 and yellow-blue ((R + G) / 2 - B) / 2, as int8 bytes [side, side, 2]: the whole picture,
    laid out as the luminance thumbnail is, so the turn that lines two thumbnails up lines these up too.
    A hue histogram cannot see where the colours are: a design whose orange and blue parts swap places
    (a negative beside a dark mode of one wallpaper) keeps the same hues."""
    small = Image.fromarray(pixels.astype(np.uint8), "RGB").resize((TINT_SIDE, TINT_SIDE),
                                                                   Image.Resampling.BOX)
    red, green, blue = np.asarray(small, dtype=np.int16).transpose(2, 0, 1)
    opponents = np.stack([(red - green) // 2, ((red + green) // 2 - blue) // 2], axis=-1)
    return np.clip(opponents, -128, 127).astype(np.int8).tobytes()


def thumbnail_matrix(thumbnails: Sequence[bytes]) -> np.ndarray:
    """Thumbnails as rows of a uint8 matrix [n, side * side]; a missing one is a row of zeros (flat)."""
    size = THUMBNAIL_SIDE * THUMBNAIL_SIDE
    return np.frombuffer(b"".join(t if len(t) == size else bytes(size) for t in thumbnails),
                         dtype=np.uint8).reshape(-1, size)


def thumbnail_signals(thumbnails: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thumbnail rows (:func:`thumbnail_matrix`) as [n, side, side] with zero mean and unit norm, and
    which of them say anything (not flat, so not missing either): two multiplied and summed give
    their correlation, which brightness and contrast changes leave alone."""
    values = thumbnails.reshape(-1, THUMBNAIL_SIDE, THUMBNAIL_SIDE).astype(np.float32)
    values -= values.mean(axis=(1, 2), keepdims=True)
    norms = np.sqrt(np.einsum("nij,nij->n", values, values))
    valid = norms > 1e-3
    return values / np.where(valid, norms, 1.0)[:, None, None], valid


def content_box(pixels: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the picture inside added uniform borders and caption bands.

    Frames are peeled layer by layer while every side is one colour (a grey frame around a white
    background around a drawing); then a caption band, at the top or the bottom, is taken off
    (:func:`caption_band`; neither when both ends look like one: a sky and a ground), and what a caption
    with text leaves is peeled again: a caption put over a drawing on white leaves the drawing's own
    margin on three sides and the band's edge on the fourth (a plain bar may be the ground under a sky:
    what it leaves is not peeled).
    """
    height, width = pixels.shape[:2]
    top, bottom, left, right = _peel_frames(pixels, (0, height, 0, width))
    box = pixels[top:bottom, left:right]
    band_top, text_top = caption_band(box, int(height * MAX_CAPTION))
    band_bottom, text_bottom = caption_band(box[::-1], int(height * MAX_CAPTION))
    if bool(band_top) == bool(band_bottom):  # neither, or both: a sky and a ground, not a caption
        return top, bottom, left, right
    box = top + band_top, bottom - band_bottom, left, right
    return _peel_frames(pixels, box) if text_top or text_bottom else box  # a plain bar may be the ground


def _uniform_share(lines: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """The share of each line's pixels [..., w, 3] within ``UNIFORM_TOLERANCE`` of ``colour`` (of one
    line, a single number): all of a band's lines at once, a Python loop no more."""
    return (np.abs(lines - colour).max(axis=-1) <= UNIFORM_TOLERANCE).mean(axis=-1)


def _edge(lines: np.ndarray, colour: np.ndarray) -> float:
    """Share of the first picture line that differs clearly from a band's ``colour``. A band added to a
    picture ends in an edge; the first line past it may be a blend of both, so the better of two counts.
    A gradient (sky, a wallpaper) drifts away line by line and has none."""
    far = [float((np.abs(line - colour).max(axis=-1) > 3 * UNIFORM_TOLERANCE).mean()) for line in lines[:2]]
    return max(far, default=0.0)


def _border(lines: np.ndarray, limit: int) -> int:
    """Lines of one flat border from the edge inwards (``lines[0]`` is the edge); 0 if none."""
    if len(lines) < 3 or limit < 1:
        return 0
    colour = np.median(lines[0], axis=0)
    taken = 0
    while taken < min(len(lines), limit + 1) and _uniform_share(lines[taken], colour) >= BORDER_SHARE:
        taken += 1
    return 0 if taken > limit or taken >= len(lines) - 2 else taken


def _peel_frames(pixels: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """``box`` shrunk by the frames around its content: at most three layers, each one colour on all
    four sides (a frame needs no edge of its own: that is evidence enough; a sky is not on every side)."""
    height, width = pixels.shape[:2]
    top, bottom, left, right = box
    for _ in range(3):
        inside = pixels[top:bottom, left:right]
        across = inside.transpose(1, 0, 2)
        sides = (_border(inside, int(height * MAX_TRIM)), _border(inside[::-1], int(height * MAX_TRIM)),
                 _border(across, int(width * MAX_TRIM)), _border(across[::-1], int(width * MAX_TRIM)))
        corners = [inside[0, 0], inside[-1, -1], inside[0, -1], inside[-1, 0]]
        same = max(np.abs(a - b).max() for a in corners for b in corners) <= 2 * UNIFORM_TOLERANCE
        if not all(sides) or not same:
            break
        top, bottom, left, right = top + sides[0], bottom - sides[1], left + sides[2], right - sides[3]
    return top, bottom, left, right


def caption_band(lines: np.ndarray, limit: int) -> tuple[int, bool]:
    """Lines of a caption band from the edge inwards (``lines[0]`` is the edge) and whether it holds text
    (any of its lines not clear); (0, False) if there is none. A caption is text on a flat colour: lines
    of at least ``CAPTION_SHARE`` of the band's colour, at most ``limit`` of them, ending in an edge.
    Lines of one colour between the band's and the picture's are the band's blurred edge (resampling,
    JPEG) and go with it (:func:`_blended`), so that a drawing's own margin left on the other sides is
    seen as a frame."""
    if len(lines) < 3 or limit < 1:
        return 0, False
    colour = np.median(lines[0], axis=0)
    shares = _uniform_share(lines[:limit + 2], colour)
    taken = next((i for i, share in enumerate(shares) if share < CAPTION_SHARE), len(shares))
    if taken > limit or taken < 2 or taken >= len(lines) - 2 or _edge(lines[taken:], colour) < EDGE_SHARE:
        return 0, False
    text = bool(shares[:taken].min() < BORDER_SHARE)
    while taken + 1 < min(len(lines) - 2, limit + 2) and _blended(lines[taken], colour, lines[taken + 1]):
        taken += 1
    return taken, text


def _blended(line: np.ndarray, band: np.ndarray, after: np.ndarray) -> bool:
    """``line`` is one colour, between the ``band``'s and that of the line ``after`` it, and clearly
    apart from both: the band's edge blurred by resampling or JPEG."""
    blend, next_colour = np.median(line, axis=0), np.median(after, axis=0)
    between = np.all((blend >= np.minimum(band, next_colour)) & (blend <= np.maximum(band, next_colour)))
    apart = min(np.abs(blend - band).max(), np.abs(blend - next_colour).max()) > UNIFORM_TOLERANCE
    return bool(between and apart and _uniform_share(line, blend) >= BORDER_SHARE)


def hue_histogram(pixels: np.ndarray) -> tuple[bytes, float]:
    """Saturation-weighted hue histogram (soft-binned, circular) and the mean saturation."""
    rgb = pixels.reshape(-1, 3).astype(np.float32) / 255.0
    high, low = rgb.max(axis=1), rgb.min(axis=1)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1e-6), 0.0)
    hue = hue_sixths(rgb) / 6.0  # 0-1, circular
    weight = saturation * high  # vivid, not dark
    position = hue * HUE_BINS
    lower = np.floor(position).astype(int) % HUE_BINS
    upper_share = position - np.floor(position)
    histogram = np.bincount(lower, weight * (1 - upper_share), HUE_BINS)
    histogram += np.bincount((lower + 1) % HUE_BINS, weight * upper_share, HUE_BINS)
    total = histogram.sum()
    if total <= 0:
        return bytes(HUE_BINS), 0.0
    return np.round(histogram / total * 255).astype(np.uint8).tobytes(), float(saturation.mean())


def hue_sixths(rgb: np.ndarray) -> np.ndarray:
    """The HSV hue of RGB colours [..., 3] in sixths of a turn, 0-6: red 0, yellow 1, green 2, cyan 3,
    blue 4, magenta 5 (grey is red)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    high, low = across_channels(np.maximum, rgb), across_channels(np.minimum, rgb)
    safe = np.maximum(high - low, 1e-6)
    return np.select([high == r, high == g], [((g - b) / safe) % 6.0, (b - r) / safe + 2.0],
                     (r - g) / safe + 4.0)


def across_channels(combine: np.ufunc, colours: np.ndarray) -> np.ndarray:
    """``combine`` (``np.maximum``, ``np.minimum``) over the three channels of colours [..., 3]: much
    faster than a reduction along an axis of three."""
    return combine(combine(colours[..., 0], colours[..., 1]), colours[..., 2])


BRIGHTENING = 2.0
CLIPS = 150.0
DROP = 12.0
EVEN = 1.1
EVEN_TOL = 0.05
"""See :func:`turn_beyond_brightening`: brightening by up to ``BRIGHTENING`` times (the bench brightens 1.3
to 1.6 times) explains a turn only where the lighter colour's brightest channel reaches ``CLIPS`` (out of
255; under it nothing clipped) and none of its channels fell by more than ``DROP``; and any turn of a
colour whose channels all rose, by ``EVEN`` times at least, by ``BRIGHTENING`` at most, the darkest channel
most (within ``EVEN_TOL``). Measured with the colour grid's cells (``HUE_TURN`` in
:mod:`lookalike.index.looks`)."""


def turn_beyond_brightening(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Degrees by which the hue of each cell [..., 3] (RGB: :func:`tint_colours`, or pixels)
    turned beyond what brightening the darker of the two could do to it.

    Brightening by k (a brightness slider, exposure) clips the brightest channel first, which moves a hue
    away from its primary (red, green or blue: the brightest channel) towards the secondary beside it
    (the next brightest joins in), never past it, and by at most k (255 - n) / (255 - kn) times its
    distance from the primary (n the darkest channel, unclipped); a pure primary does not turn at all,
    nor does a cell where nothing clipped (``CLIPS``) or a channel went down (``DROP``). A hue that
    turned towards the primary, past the secondary, or further than ``BRIGHTENING`` allows, was
    recoloured: a design turned by 30 degrees of hue moves its colours about as far as brightening moves
    a copy's (bench/hue_turns.py), but not the same way."""
    luminance = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    theirs_lighter = (theirs @ luminance >= mine @ luminance)[..., None]
    dark, light = np.where(theirs_lighter, mine, theirs), np.where(theirs_lighter, theirs, mine)
    hue_dark, hue_light = hue_sixths(dark), hue_sixths(light)
    primary = 2 * np.round(hue_dark / 2) % 6

    def from_primary(hue: np.ndarray) -> np.ndarray:  # signed, in sixths of a turn, -3 to 3
        return (hue - primary + 3) % 6 - 3

    start, ended = from_primary(hue_dark), from_primary(hue_light)
    side = np.sign(start)
    reached = np.where(side != 0, ended * side, np.abs(ended))
    start = np.abs(start)
    darkest = across_channels(np.minimum, dark)
    unclipped = np.clip(darkest, 0, 254)
    headroom = 255 - BRIGHTENING * unclipped
    reach = np.where(headroom > 0, np.minimum(1, start * BRIGHTENING * (255 - unclipped)
                                              / np.maximum(headroom, 1e-3)), 1)
    clipped = across_channels(np.maximum, light) >= CLIPS
    reach = np.where(clipped & (across_channels(np.maximum, dark - light) <= DROP), reach, start)
    turned = 60 * np.maximum(np.maximum(start - reached, reached - reach), 0)
    # Brightened cell by cell, a cell of many small colours (pixel art) clips some of its pixels and not
    # others, and its average hue may go anywhere; but every channel rises, the darkest (which clips
    # last) the most, and none more than ``BRIGHTENING`` times.
    ratios = light / np.maximum(dark, 1)
    most = across_channels(np.maximum, ratios)
    darkest_ratio = np.where(dark[..., 0] == darkest, ratios[..., 0],
                             np.where(dark[..., 1] == darkest, ratios[..., 1], ratios[..., 2]))
    evenly = ((across_channels(np.minimum, ratios) >= EVEN) & (most <= BRIGHTENING)
              & (darkest_ratio * (1 + EVEN_TOL) >= most))
    return np.where(evenly, 0.0, turned)


def cell_luminance(thumbnail: np.ndarray, side: int = TINT_SIDE) -> np.ndarray:
    """Luminance thumbnails [n, THUMBNAIL_SIDE, THUMBNAIL_SIDE] averaged over the colour grid's cells
    [n, side, side]: the luminance each cell of :func:`tint_grid` was laid over."""
    cells = thumbnail.shape[-1] // side
    return thumbnail.reshape(-1, side, cells, side, cells).mean(axis=(2, 4))


def tint_colours(thumbnail: np.ndarray, tint: np.ndarray) -> np.ndarray:
    """RGB colours [n, side, side, 3] of the colour grid's cells, rebuilt from luminance thumbnails
    [n, THUMBNAIL_SIDE, THUMBNAIL_SIDE] and colour grids [n, side, side, 2] read back as stored
    (:func:`tint_grid`, int8): the luminance, averaged over each cell, and the two opponent colours
    give the three channels (PIL's "L" is 0.299 R + 0.587 G + 0.114 B)."""
    luminance = cell_luminance(thumbnail, tint.shape[1])
    red_green, yellow_blue = tint[..., 0] * 2.0, tint[..., 1] * 2.0  # R - G and (R + G) / 2 - B
    green = luminance - 0.356 * red_green + 0.114 * yellow_blue
    return np.stack([green + red_green, green, green + red_green / 2 - yellow_blue], axis=-1)


def greyed_cells(thumbnail: np.ndarray, tint: np.ndarray) -> np.ndarray:
    """The colour grid's cells [n, 5, side, side] (:func:`tint_colours`) as the common greyscale
    conversions would turn them: Rec. 601 luma (PIL, OpenCV), Rec. 709 luma (scikit-image), the
    channels' plain average, HSL lightness (the desaturate of GIMP and Photoshop), CIE L* (GIMP's
    luminance; 0-100 read as 0-255). A greyscale copy keeps its original's luminance under one of them;
    a design drawn grey beside its colour version (a black balloon beside a blue one) keeps none. Cells
    are averages, so the formulas that are not linear in the channels are met within a few levels: made
    from the dev, unseen and series originals at full size, HSL copies stay within 10 of theirs, L* ones
    within 18; the linear ones within 1."""
    rgb = np.clip(tint_colours(thumbnail, tint), 0, 255)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    linear = np.where(rgb <= 10.31, rgb / 3294.6, ((rgb / 255 + 0.055) / 1.055) ** 2.4)  # sRGB decoded
    light = linear[..., 0] * 0.2126 + linear[..., 1] * 0.7152 + linear[..., 2] * 0.0722
    lightness = np.where(light > 216 / 24389, np.cbrt(light), (24389 / 27 * light + 16) / 116) * 116 - 16
    return np.stack([0.299 * red + 0.587 * green + 0.114 * blue,
                     0.2126 * red + 0.7152 * green + 0.0722 * blue,
                     (red + green + blue) / 3,
                     (across_channels(np.maximum, rgb) + across_channels(np.minimum, rgb)) / 2,
                     lightness * 2.55], axis=1)


def colour_distance(a: bytes, b: bytes) -> float | None:
    """1 - intersection of two hue histograms (0: the same hues, 1: none shared); None if either is grey."""
    if not a or not b:
        return None
    ha = np.frombuffer(a, np.uint8).astype(np.float32)
    hb = np.frombuffer(b, np.uint8).astype(np.float32)
    if ha.sum() == 0 or hb.sum() == 0:
        return None
    return float(1.0 - np.minimum(ha / ha.sum(), hb / hb.sum()).sum())


def jpeg_quality(image: Image.Image) -> int:
    """The IJG quality a JPEG was saved at, estimated from its luminance table; 100 for other formats."""
    tables = getattr(image, "quantization", None)
    if image.format != "JPEG" or not tables:
        return 100
    table = np.asarray(tables[0], dtype=np.float64)
    scale = float(np.mean(table * 100.0 / _IJG_LUMINANCE))  # the IJG scale factor, 1-5000
    quality = (200.0 - scale) / 2.0 if scale <= 100 else 5000.0 / scale
    return int(np.clip(round(quality), 1, 99))


_IJG_LUMINANCE = np.array([  # the standard table (Annex K), in zigzag order as Pillow reports tables
    16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40, 26, 24, 22, 22, 24, 49, 35, 37,
    29, 40, 58, 51, 61, 60, 57, 51, 56, 55, 64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80, 109, 81, 87,
    95, 98, 103, 104, 103, 62, 77, 113, 121, 112, 100, 120, 92, 101, 103, 99,
], dtype=np.float64)
