"""Your own handwritten digit, prepared the way MNIST was made, so that a trained model can read it.

    x = mlp.images.load_digit("my_seven.png")          # float32 (784,) in [0, 1]
    model.predict(x.reshape(1, -1))

MNIST digits are white ink on black, scaled so that the larger side of the ink's bounding box is
20 pixels (keeping the aspect ratio, antialiased), then placed in a 28x28 field so that the centre
of mass of the ink is at the centre. :func:`preprocess_digit` repeats those steps on any greyscale
(or RGB/RGBA) NumPy image:

1. greyscale in [0, 1]: integer images are divided by their dtype's maximum (255 for uint8), float
   images are taken as [0, 1] (or as 0..255 when their maximum is above 1); colour is reduced by
   luminance (ITU-R 601) and transparency is composited onto white paper;
2. inversion to white ink on black: ``invert="auto"`` inverts when the mean of the border pixels is
   above 0.5 (light paper), ``True``/``False`` force it;
3. contrast: the paper level (median of the border) becomes 0 and the brightest ink 1; values at or
   below ``INK_THRESHOLD`` (0.05) count as paper and are set to 0, which removes faint marks such
   as JPEG artefacts before cropping. On noisy paper (a photo) the threshold rises to
   ``NOISE_SIGMAS`` (5) times the paper's noise, a robust standard deviation of the border (from
   its median absolute deviation). An image whose ink is less than ``MIN_CONTRAST`` (0.1) above its
   paper has no digit: ``ValueError``;
4. crop to the bounding box of the remaining ink and resize it so that its larger side is
   ``DIGIT_SIZE`` (20) pixels, with an antialiased linear (triangle) filter, as Pillow's bilinear
   resize does: pure NumPy, so this function does not need Pillow. The result is rescaled so that
   its brightest pixel is 1, as in every MNIST digit (thin strokes fade when shrunk);
5. paste into a 28x28 canvas and shift by whole pixels so that the centre of mass lands on pixel
   (14, 14), rows and columns counted from 0 (MNIST's own digits are all within half a pixel of
   it). The shift is an integer one, which keeps the strokes sharp; the centre of mass then lies
   within half a pixel of the centre. If centring would push ink off the canvas, the shift is
   clamped so that the whole digit stays visible.

Limits: stray marks (dust, a ruled line, a second digit) enlarge the bounding box and shrink the
digit; crop the photo to the one digit first. Strokes much thinner or thicker than a pen's on
paper of the digit's size may read worse than MNIST's.

:func:`load_digit` reads a PNG, JPEG or any image Pillow opens (Pillow is part of the optional
``plot`` extra: ``pip install "mlp-from-scratch[plot]"``), applies the EXIF orientation of phone photos,
and calls :func:`preprocess_digit`; it also takes a NumPy array or a Pillow image directly.

Hostile files: the dimensions in the file's header are checked against ``MAX_IMAGE_PIXELS`` (40
million, a 7300 x 5500 photo) before any pixel is decoded, so a small file declaring 10^8 pixels
(a decompression bomb) is a ``ValueError`` naming the file and its size, never an out-of-memory
crash or Pillow's own ``DecompressionBombError``. Every failure to decode is a ``ValueError``.
"""

from __future__ import annotations

import os
import struct
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from ._files import open_regular_file

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = [
    "CANVAS_SIZE",
    "DIGIT_SIZE",
    "INK_THRESHOLD",
    "MAX_IMAGE_PIXELS",
    "MIN_CONTRAST",
    "NOISE_SIGMAS",
    "load_digit",
    "preprocess_digit",
]

CANVAS_SIZE = 28  #: side of the output image, as MNIST
DIGIT_SIZE = 20  #: the larger side of the digit's bounding box after scaling, as MNIST
INK_THRESHOLD = 0.05  #: after contrast stretching, values at or below this are paper
MIN_CONTRAST = 0.1  #: ink must be at least this much brighter than the paper (after inversion)
NOISE_SIGMAS = 5.0  #: on noisy paper, values within this many noise deviations of it are paper too
MAX_IMAGE_PIXELS = 40_000_000  #: larger images are refused before decoding (one digit needs far fewer)
_CENTRE = CANVAS_SIZE // 2  # (14, 14): where MNIST puts the centre of mass, 0-based


def _require_pillow() -> tuple[Any, Any]:
    try:
        import PIL  # noqa: F401
        from PIL import Image, ImageOps
    except ImportError as error:
        raise ImportError(
            "reading image files needs Pillow, which is part of the optional plot extra: "
            'pip install "mlp-from-scratch[plot]"'
        ) from error
    return Image, ImageOps


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def load_digit(
    path_or_array: str | os.PathLike[str] | np.ndarray | PILImage, *, invert: str | bool = "auto"
) -> np.ndarray:
    """Read a handwritten digit and return it as MNIST would have it: float32 (784,) in [0, 1].

    path_or_array: a path to an image file (PNG, JPEG, ...), a Pillow image, or a 2-D greyscale
    (or H x W x 3/4 colour) NumPy array. invert: "auto" (invert light paper), True or False.
    See the module documentation for the steps.

    Raises FileNotFoundError for a missing file, ValueError for a file that is not an image or an
    image with no ink, both naming the file.
    """
    if isinstance(path_or_array, (str, os.PathLike)):
        path = Path(path_or_array)
        image = _read_image(path)
        try:
            return preprocess_digit(image, invert=invert)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
    return preprocess_digit(path_or_array, invert=invert)


def _is_pil_image(obj: object) -> TypeGuard[PILImage]:
    PIL_Image = getattr(sys.modules.get("PIL"), "Image", None)  # never imports Pillow itself
    return PIL_Image is not None and isinstance(obj, PIL_Image.Image)


def _read_image(path: Path) -> np.ndarray:
    if not path.exists():
        raise FileNotFoundError(2, "no such image file", str(path))
    if path.is_dir():
        raise IsADirectoryError(21, "expected an image file, got a folder", str(path))
    Image, _ = _require_pillow()
    handle = open_regular_file(path, "image file")  # a FIFO or a device is refused, never waited on
    try:
        with handle:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is lower
                opened = Image.open(handle)  # reads the header only
            with opened as image:
                _check_pixels(image.size, path)
                image.load()
                return _pil_to_array(image)
    except Image.DecompressionBombError as error:  # over Pillow's limit: refused at open
        raise ValueError(
            f"{path}: the image is too large to read safely ({error}); crop it to the digit or scale it down"
        ) from None
    except Image.UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file Pillow can read (PNG, JPEG, ...)") from None
    except ValueError as error:
        if str(error).startswith(f"{path}:"):
            raise
        raise ValueError(f"{path}: the image could not be decoded: {error}") from None
    except (OSError, SyntaxError, EOFError, struct.error, IndexError, TypeError, KeyError) as error:
        # truncated or corrupt data; Pillow's decoders raise any of these on malformed files
        raise ValueError(f"{path}: the image could not be decoded: {error}") from None


def _check_pixels(size: tuple[int, int], where: object = None) -> None:
    """Refuse an image of more than MAX_IMAGE_PIXELS pixels (size: width, height)."""
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        prefix = f"{where}: " if where is not None else ""
        raise ValueError(
            f"{prefix}the image is {width} x {height} = {width * height:,} pixels, more than "
            f"mlp.images.MAX_IMAGE_PIXELS ({MAX_IMAGE_PIXELS:,}); crop it to the digit or scale it down"
        )


def _pil_to_array(image: PILImage) -> np.ndarray:
    """Greyscale (or greyscale composited onto white) NumPy array of a Pillow image, upright."""
    _, ImageOps = _require_pillow()
    _check_pixels(image.size)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(image).astype(np.uint16)  # scaled by 65535 in preprocess_digit
    if image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = float(values.max()) if values.size else 0.0
        return values / (65535.0 if top > 255 else 255.0 if top > 1 else 1.0)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        return np.asarray(image.convert("RGBA"))  # alpha composited onto white in preprocess_digit
    return np.asarray(image.convert("L"))


# --------------------------------------------------------------------------------------------
# Preprocessing (NumPy only)
# --------------------------------------------------------------------------------------------
def preprocess_digit(image: np.ndarray | PILImage, *, invert: str | bool = "auto") -> np.ndarray:
    """MNIST-style preprocessing of one digit image: float32 (784,) in [0, 1], white ink on black,
    larger side 20 px, centre of mass at pixel (14, 14). See the module documentation.

    image: a 2-D greyscale array (H, W), or (H, W, C) with C = 1 (grey), 2 (grey + alpha),
    3 (RGB) or 4 (RGBA); any integer or float dtype. invert: "auto", True or False.
    """
    grey = _to_grey(image)
    if invert == "auto":
        invert = bool(_border(grey).mean() > 0.5)
    elif not isinstance(invert, (bool, np.bool_)):
        raise ValueError(f'invert must be "auto", True or False, got {invert!r}')
    if invert:
        grey = 1.0 - grey

    border = _border(grey)
    paper = float(np.median(border))
    top = float(grey.max())
    if top - paper < MIN_CONTRAST:
        raise ValueError(
            f"the image has no ink: its brightest ink is only {top - paper:.3f} above the paper "
            f"(at least {MIN_CONTRAST} needed); is it blank, or is invert={invert!r} wrong?"
        )
    ink = np.clip((grey - paper) / (top - paper), 0.0, 1.0)
    noise = 1.4826 * float(np.median(np.abs(border - paper))) / (top - paper)  # robust std of the paper
    ink[ink <= max(INK_THRESHOLD, NOISE_SIGMAS * noise)] = 0.0
    if not ink.any():
        raise ValueError(
            "the image has no ink that stands out of the paper's noise (the paper varies as much as "
            "the brightest ink); is it a photo of one digit on plain paper?"
        )

    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]

    height, width = ink.shape
    scale = DIGIT_SIZE / max(height, width)
    new_height = min(DIGIT_SIZE, max(1, round(height * scale)))
    new_width = min(DIGIT_SIZE, max(1, round(width * scale)))
    digit = _resize(ink, new_height, new_width)
    digit /= digit.max()  # every MNIST digit reaches full ink, however thin its strokes

    canvas = np.zeros((CANVAS_SIZE, CANVAS_SIZE), dtype=np.float64)
    mass = digit.sum()
    com_row = (digit.sum(axis=1) @ np.arange(new_height)) / mass
    com_col = (digit.sum(axis=0) @ np.arange(new_width)) / mass
    top_row = _clamped_offset(_CENTRE - com_row, new_height)
    left_col = _clamped_offset(_CENTRE - com_col, new_width)
    canvas[top_row : top_row + new_height, left_col : left_col + new_width] = digit
    return np.clip(canvas, 0.0, 1.0).astype(np.float32).reshape(-1)


def _to_grey(image: np.ndarray | PILImage) -> np.ndarray:
    """float64 (H, W) in [0, 1]; colour by luminance, alpha composited onto white."""
    if _is_pil_image(image):  # a Pillow image given directly
        image = _pil_to_array(image)
    array = np.asarray(image)
    if array.ndim >= 2:
        _check_pixels((array.shape[1], array.shape[0]))
    if array.dtype == bool:
        array = array.astype(np.float64)
    elif np.issubdtype(array.dtype, np.integer):
        if array.size and array.min() < 0:
            raise ValueError("pixel values must not be negative")
        array = array.astype(np.float64) / np.iinfo(array.dtype).max
    elif np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise ValueError("the image contains NaN or infinity")
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError(
                f"float pixel values must lie in [0, 1] (or 0..255); got {array.min():g}..{array.max():g}"
            )
        if array.size and array.max() > 1:
            array = array / 255.0
    else:
        raise TypeError(f"expected an image of numbers, got dtype {array.dtype}")

    if array.ndim == 3 and array.shape[2] in (1, 2, 3, 4):
        channels = array.shape[2]
        colour = array[..., : 1 if channels <= 2 else 3]
        grey = colour[..., 0] if colour.shape[2] == 1 else colour @ np.array([0.299, 0.587, 0.114])
        if channels in (2, 4):  # transparent pixels are paper (white)
            alpha = array[..., -1]
            grey = grey * alpha + (1.0 - alpha)
        array = grey
    if array.ndim != 2:
        raise ValueError(
            f"expected a 2-D greyscale image (H, W) or a colour one (H, W, 3 or 4); got shape {array.shape}"
        )
    if min(array.shape) < 1:
        raise ValueError(f"the image is empty: shape {array.shape}")
    return array


def _border(grey: np.ndarray) -> np.ndarray:
    """The pixels of a frame about 2 % of the smaller side wide (at least one pixel)."""
    width = max(1, round(0.02 * min(grey.shape)))
    mask = np.zeros(grey.shape, dtype=bool)
    mask[:width, :] = mask[-width:, :] = True
    mask[:, :width] = mask[:, -width:] = True
    return grey[mask]


def _resample_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) weights of an antialiased linear resize along one axis.

    Output pixel i is centred at input coordinate (i + 0.5) * n_in / n_out - 0.5; its weights are a
    triangle of half-width max(1, n_in / n_out) input pixels (wider when shrinking, which is the
    antialiasing), normalised to sum to 1. The same filter as Pillow's bilinear resize.
    """
    ratio = n_in / n_out
    support = max(1.0, ratio)
    centres = (np.arange(n_out) + 0.5) * ratio - 0.5
    weights = np.maximum(0.0, 1.0 - np.abs(np.arange(n_in)[None, :] - centres[:, None]) / support)
    return weights / weights.sum(axis=1, keepdims=True)


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    if image.shape == (height, width):
        return image.copy()
    return _resample_matrix(height, image.shape[0]) @ image @ _resample_matrix(width, image.shape[1]).T


def _clamped_offset(shift: float, size: int) -> int:
    """Integer position of a block of `size` pixels moved by `shift`, kept inside the canvas."""
    return int(min(max(round(shift), 0), CANVAS_SIZE - size))
