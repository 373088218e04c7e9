"""On-the-fly image augmentation: random affine maps and elastic distortions, sampled bilinearly.

    spec = Augment(shift=2, rotation=10, scale=0.1, shear=10, elastic_alpha=34, elastic_sigma=4)
    X_aug = augment(X, spec, seed=0)                       # a new batch, same namespace and device
    mlp.fit(X, y, augment=spec)                            # a fresh distortion of every batch

Every output pixel p = (x, y) (column, row) reads the input at the source point

    s(p) = M (p - c - t) + c + alpha * d(p)

c the image centre, t a shift, M the inverse of rotation x shear x scale (so the content moves by
t, rotates by the angle, grows by the scale), and d(p) Simard's displacement field: uniform noise
in [-1, 1] per pixel and axis, smoothed by a Gaussian of std `elastic_sigma` pixels (Simard,
Steinkraus and Platt 2003), here drawn with the same covariance from far fewer numbers
(`elastic_basis`). The value at s(p) is the bilinear mix of its four neighbours; neighbours outside
the image count as 0 (MNIST's paper is 0). Bilinear weights are a convex combination, so the output
stays in the input's range.

Random numbers are drawn on the host from a seeded NumPy Generator (`draw`) and moved to the data's
device once; the sampling itself (`apply_generic`) is gathers and arithmetic in the array API, so it
runs on NumPy, array-api-strict and CuPy alike. For C-contiguous NumPy float input with Numba
installed, `apply` calls the fused kernel `mlp_kernels.augment_rows` (gather, field, sampling in one
pass, GIL released), which training runs in a background thread while the current batch trains.
"""

from __future__ import annotations

import math
import numbers
from collections import abc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.random import Generator

from ._array_api import (
    Array,
    Device,
    DType,
    Namespace,
    dtype_name,
    from_host,
    get_namespace,
    index_dtype,
    is_numpy_namespace,
)
from ._validation import as_array

__all__ = [
    "Augment",
    "BatchAugmenter",
    "Prefetcher",
    "apply",
    "apply_generic",
    "apply_kernel",
    "augment",
    "check_augment",
    "check_images",
    "draw",
    "elastic_basis",
    "elastic_field",
    "smoothing_matrix",
]

T = TypeVar("T")

_LIMITS = {  # name: (low, high, what it is)
    "shift": (0.0, None, "largest shift in pixels along each axis"),
    "rotation": (0.0, 180.0, "largest rotation in degrees"),
    "scale": (0.0, 0.9, "largest relative change of size along each axis (0.1: 90 % to 110 %)"),
    "shear": (0.0, 60.0, "largest shear angle in degrees"),
    "elastic_alpha": (0.0, None, "strength of the elastic displacement field in pixels (0: off)"),
    "elastic_sigma": (0.0, None, "std of the Gaussian that smooths the elastic field, in pixels"),
}


@dataclass(frozen=True)
class Augment:
    """What to draw for each image: every amount is the half-width of a uniform range around none.

    shift: pixels along each axis; rotation, shear: degrees; scale: relative size change along each
    axis, drawn independently for x and y; elastic_alpha, elastic_sigma: Simard's elastic distortion
    (alpha 0 turns it off); image_shape: (height, width) of the rows of X, row-major.
    The defaults are moderate distortions that keep every MNIST digit readable.
    """

    shift: float = 2.0
    rotation: float = 10.0
    scale: float = 0.1
    shear: float = 10.0
    elastic_alpha: float = 34.0
    elastic_sigma: float = 4.0
    image_shape: tuple[int, int] = (28, 28)

    def __post_init__(self) -> None:
        for name, (low, high, what) in _LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise TypeError(f"augment {name} must be a finite number ({what}), got {value!r}")
            value = float(value)
            if value < low or (high is not None and value > high) or (name == "elastic_sigma" and value <= 0):
                bound = (
                    f"in [{low:g}, {high:g}]"
                    if high is not None
                    else ("> 0" if name == "elastic_sigma" else ">= 0")
                )
                raise ValueError(f"augment {name} must be {bound} ({what}), got {value!r}")
            object.__setattr__(self, name, float(value))
        shape: tuple[Any, ...] = self.image_shape
        try:
            shape = tuple(shape)
        except TypeError:
            raise TypeError(f"augment image_shape must be (height, width), got {shape!r}") from None
        if len(shape) != 2 or any(
            isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in shape
        ):
            raise ValueError(
                f"augment image_shape must be two positive integers (height, width), got {self.image_shape!r}"
            )
        object.__setattr__(self, "image_shape", (int(shape[0]), int(shape[1])))

    @property
    def n_features(self) -> int:
        return self.image_shape[0] * self.image_shape[1]

    @property
    def elastic(self) -> bool:
        return self.elastic_alpha > 0

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON values (model.config, checkpoints)."""
        values = asdict(self)
        values["image_shape"] = list(self.image_shape)
        return values

    def __str__(self) -> str:
        return ",".join(
            f"{f.name}={getattr(self, f.name):g}" for f in fields(self) if f.name != "image_shape"
        ) + (f",image_shape={self.image_shape[0]}x{self.image_shape[1]}")


def check_augment(value: Any, name: str = "augment") -> Augment | None:
    """None (no augmentation), or an `Augment` from: an `Augment`; True or "default" (the defaults);
    a dict of its fields; a string "shift=2,rotation=10,elastic_alpha=0,image_shape=28x28" (the
    command line's form, unnamed fields keep their defaults). False, "none" and "off" give None."""
    if value is None or value is False:
        return None
    if isinstance(value, Augment):
        return value
    if value is True:
        return Augment()
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("none", "off", ""):
            return None
        if text.lower() == "default":
            return Augment()
        return Augment(**_parse(text, name))
    if isinstance(value, dict):
        unknown = sorted(set(value) - {f.name for f in fields(Augment)})
        if unknown:
            raise ValueError(
                f"{name} has unknown field(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(f.name for f in fields(Augment))}"
            )
        return Augment(**value)
    raise TypeError(
        f"{name} must be None, True, 'default', a dict of {', '.join(f.name for f in fields(Augment))}, "
        f"or an mlp.augment.Augment; got {type(value).__name__}"
    )


def _parse(text: str, name: str) -> dict[str, Any]:
    known = {f.name for f in fields(Augment)}
    values: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, number = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in known:
            raise ValueError(
                f"{name} takes 'default', 'none' or fields like 'shift=2,rotation=10' "
                f"(known: {', '.join(sorted(known))}); could not read {part.strip()!r}"
            )
        if key == "image_shape":
            try:
                values[key] = tuple(int(s) for s in number.lower().split("x"))
            except ValueError:
                raise ValueError(
                    f"{name} image_shape takes HEIGHTxWIDTH such as 28x28, got {number!r}"
                ) from None
            continue
        try:
            values[key] = float(number)
        except ValueError:
            raise ValueError(f"{name} {key} takes a number, got {number!r}") from None
    return values


# ---- the random numbers: on the host, from a seed ---------------------------------------------------
def draw(spec: Augment, rng: Generator, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(affine, noise) for n images. affine (n, 6) float64: the source point of pixel (x, y) is
    (a0 x + a1 y + a2, a3 x + a4 y + a5) before the elastic field; noise (n, 2, r_y, r_x) float32
    normals of variance 1/3, the x then y displacement's coordinates in the blur's leading eigenvectors
    (`elastic_basis`), or None without the elastic part.
    Always the same count of numbers in the same order, so a seed fixes the batch."""
    height, width = spec.image_shape
    u = rng.random((n, 6)) * 2.0 - 1.0
    angle = np.deg2rad(spec.rotation) * u[:, 0]
    shear = np.deg2rad(spec.shear) * u[:, 1]
    sx, sy = 1.0 + spec.scale * u[:, 2], 1.0 + spec.scale * u[:, 3]
    tx, ty = spec.shift * u[:, 4], spec.shift * u[:, 5]
    # forward map A = rotation @ shear @ scale; the sampler needs its inverse M
    cos, sin, tan = np.cos(angle), np.sin(angle), np.tan(shear)
    a00, a01 = cos * sx, (cos * tan - sin) * sy
    a10, a11 = sin * sx, (sin * tan + cos) * sy
    det = a00 * a11 - a01 * a10
    m00, m01, m10, m11 = a11 / det, -a01 / det, -a10 / det, a00 / det
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    px, py = cx + tx, cy + ty  # s = M (p - c - t) + c = M p + (c - M (c + t))
    affine = np.stack([m00, m01, cx - (m00 * px + m01 * py), m10, m11, cy - (m10 * px + m11 * py)], axis=1)
    noise = None
    if spec.elastic:
        rank_y = elastic_basis(height, spec.elastic_sigma).shape[1]
        rank_x = elastic_basis(width, spec.elastic_sigma).shape[1]
        noise = rng.standard_normal((n, 2, rank_y, rank_x), dtype=np.float32)
        noise *= np.float32(1.0 / math.sqrt(3.0))  # the variance of Simard's uniform noise in [-1, 1]
    return affine, noise


@lru_cache(maxsize=16)
def _smoothing(size: int, sigma: float) -> tuple[np.ndarray, int]:
    radius = min(math.ceil(3.0 * sigma), size - 1)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    G = np.zeros((size, size))
    for i in range(size):
        for k in range(max(0, i - radius), min(size, i + radius + 1)):
            G[i, k] = weights[k - i + radius]
    G.setflags(write=False)
    return G, radius


@lru_cache(maxsize=16)
def _basis(size: int, sigma: float) -> np.ndarray:
    G, _ = _smoothing(size, sigma)
    values, vectors = np.linalg.eigh(G @ G.T)
    values, vectors = np.clip(values[::-1], 0.0, None), vectors[:, ::-1]
    # a sign per eigenvector that no LAPACK build can flip: its largest entry positive
    vectors = vectors * np.where(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(size)] < 0, -1.0, 1.0)
    rank = int(np.searchsorted(np.cumsum(values) / values.sum(), 1.0 - BASIS_LOSS)) + 1
    basis = vectors[:, :rank] * np.sqrt(values[:rank])
    basis.setflags(write=False)
    return basis


BASIS_LOSS = 1e-4  # the share of the field's variance left out per axis


def elastic_basis(size: int, sigma: float) -> np.ndarray:
    """B (size, r) with B B.T = G G.T (G the blur of `smoothing_matrix`) up to the BASIS_LOSS share
    of its trace. Simard's field G_y N G_x.T, N uniform in [-1, 1] (variance 1/3), has covariance
    (G_x G_x.T) x (G_y G_y.T) / 3; so has B_y Z B_x.T for Z normal with variance 1/3 (r_y, r_x): the
    same field distribution (Gaussian rather than a sum of uniforms) from r_y r_x numbers instead of
    H W (7 x 7 instead of 28 x 28 for sigma 4)."""
    return _basis(int(size), float(sigma))


def smoothing_matrix(size: int, sigma: float) -> tuple[np.ndarray, int]:
    """(G, radius): the (size, size) matrix of a zero-padded Gaussian blur of std `sigma`, truncated at
    radius = min(ceil(3 sigma), size - 1); field @ G.T blurs rows, G @ field columns."""
    return _smoothing(int(size), float(sigma))


# ---- the sampling -----------------------------------------------------------------------------------
def apply(
    X: Array, affine: np.ndarray, noise: np.ndarray | None, spec: Augment, *, xp: Namespace | None = None
) -> Array:
    """X (n, H*W) -> a new augmented array (n, H*W) in X's namespace, device and dtype, from the
    host parameters of `draw`. The fused kernel for NumPy float input when Numba is installed;
    `apply_generic` otherwise (the same numbers up to rounding)."""
    _check_batch(X, affine, noise, spec)
    if xp is None:
        xp, _ = get_namespace(X)
    kernels = _kernels()
    if (
        kernels is not None
        and is_numpy_namespace(xp)
        and isinstance(X, np.ndarray)
        and X.dtype in (np.float32, np.float64)
    ):
        X = np.ascontiguousarray(X)
        out = np.empty_like(X)
        apply_kernel(kernels.augment_rows, X, np.arange(X.shape[0], dtype=np.int64), affine, noise, spec, out)
        return out
    return apply_generic(X, affine, noise, spec, xp=xp)


def elastic_field(noise: np.ndarray, spec: Augment, *, xp: Namespace, device: Device, dtype: DType) -> Array:
    """alpha * B_y @ noise @ B_x.T: Simard's displacement field (n, 2, H, W) in pixels, in namespace
    xp, from `draw`'s noise (two batched matrix products with the bases of `elastic_basis`)."""
    height, width = spec.image_shape
    B_y = from_host(elastic_basis(height, spec.elastic_sigma), xp=xp, device=device, dtype=dtype)
    B_x = from_host(elastic_basis(width, spec.elastic_sigma), xp=xp, device=device, dtype=dtype)
    raw = from_host(noise, xp=xp, device=device, dtype=dtype)
    return spec.elastic_alpha * (B_y @ (raw @ xp.matrix_transpose(B_x)))


def apply_kernel(
    kernel: Callable[..., None],
    X: np.ndarray,
    rows: np.ndarray,
    affine: np.ndarray,
    noise: np.ndarray | None,
    spec: Augment,
    out: np.ndarray,
) -> None:
    """out[i] = the augmented X[rows[i]] (NumPy) through an `augment_rows` kernel (checked or
    unchecked): field, affine map and sampling fused, one image at a time."""
    height, width = spec.image_shape
    basis_y, basis_x = _bases(height, width, spec.elastic_sigma, X.dtype.str)
    if noise is None:
        noise = np.zeros((0, 2, basis_y.shape[1], basis_x.shape[1]), dtype=np.float32)
    kernel(X, rows, affine, noise, basis_y, basis_x, spec.elastic_alpha, height, width, out)


@lru_cache(maxsize=16)
def _bases(height: int, width: int, sigma: float, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.ascontiguousarray(elastic_basis(height, sigma), dtype=dtype),
        np.ascontiguousarray(elastic_basis(width, sigma), dtype=dtype),
    )


def apply_generic(
    X: Array, affine: np.ndarray, noise: np.ndarray | None, spec: Augment, *, xp: Namespace
) -> Array:
    """The sampling in the array API: the source points, then four gathers and a bilinear mix."""
    n = X.shape[0]
    height, width = spec.image_shape
    device, dtype = get_namespace(X)[1], X.dtype
    if n == 0:
        return xp.asarray(X, copy=True)
    a = from_host(affine, xp=xp, device=device, dtype=dtype)
    x = xp.reshape(xp.arange(width, dtype=dtype, device=device), (1, 1, width))
    y = xp.reshape(xp.arange(height, dtype=dtype, device=device), (1, height, 1))

    def col(k: int) -> Array:
        return xp.reshape(a[:, k], (n, 1, 1))

    source_x = col(0) * x + col(1) * y + col(2)
    source_y = col(3) * x + col(4) * y + col(5)
    if noise is not None:
        field = elastic_field(noise, spec, xp=xp, device=device, dtype=dtype)
        source_x = source_x + field[:, 0, ...]
        source_y = source_y + field[:, 1, ...]
    # far outside reads 0 either way; clipping keeps the integer conversion defined
    source_x = xp.clip(source_x, -2.0, float(width + 1))
    source_y = xp.clip(source_y, -2.0, float(height + 1))
    x0, y0 = xp.floor(source_x), xp.floor(source_y)
    fx, fy = source_x - x0, source_y - y0
    integer = index_dtype(xp, device)  # int64, but int32 on JAX without 64-bit types
    x0, y0 = xp.astype(x0, integer), xp.astype(y0, integer)
    flat = xp.reshape(X, (n * height * width,))
    base = xp.reshape(xp.arange(n, dtype=integer, device=device) * (height * width), (n, 1, 1))
    out = xp.zeros((n, height, width), dtype=dtype, device=device)
    zero = xp.zeros((), dtype=dtype, device=device)
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
            index = base + xp.clip(yi, 0, height - 1) * width + xp.clip(xi, 0, width - 1)
            values = xp.reshape(xp.take(flat, xp.reshape(index, (-1,)), axis=0), (n, height, width))
            out = out + xp.where(inside, wy * wx * values, zero)
    return xp.reshape(out, (n, height * width))


def augment(X: Array, spec: Any = None, *, seed: int | None = None, rng: Generator | None = None) -> Array:
    """A randomly distorted copy of the images X (n, H*W): parameters drawn from `rng` or
    `np.random.default_rng(seed)`, in X's namespace, device and dtype. spec: as `check_augment`
    takes it (None: the defaults). A list or tuple of rows becomes a NumPy array, as in `mlp.fit`."""
    spec = Augment() if spec is None else check_augment(spec)
    if spec is None:
        raise ValueError("augment(X, spec) needs a spec; 'none' turns augmentation off only in fit")
    X = _images(X, spec)
    if rng is None:
        rng = np.random.default_rng(seed)
    affine, noise = draw(spec, rng, X.shape[0])
    return apply(X, affine, noise, spec)


def _images(X: Array, spec: Augment) -> Array:
    """X as `augment` takes it: any array-API array, or a list/tuple of rows made a NumPy array (as
    `mlp.fit` does); a TypeError or ValueError says what is wrong with anything else."""
    X = as_array(X, "X")
    kind = dtype_name(X.dtype)
    if kind == "bool" or not kind.startswith(("float", "int", "uint")):
        raise TypeError(
            f"augment needs X of real numbers (float or integer pixels), got dtype {kind}; pass an array "
            "or a list of rows of numbers"
        )
    if len(X.shape) != 2:
        raise ValueError(
            f"augment needs X of shape (n_images, {spec.n_features}): one row of "
            f"{spec.image_shape[0]}x{spec.image_shape[1]} pixels per image, got shape {tuple(X.shape)}"
        )
    return X


def _check_batch(X: Array, affine: np.ndarray, noise: np.ndarray | None, spec: Augment) -> None:
    if len(X.shape) != 2 or X.shape[1] != spec.n_features:
        raise ValueError(
            f"augmentation needs rows of {spec.image_shape[0]}x{spec.image_shape[1]} = {spec.n_features} "
            f"pixels (image_shape), got X of shape {tuple(X.shape)}"
        )
    if affine.shape != (X.shape[0], 6):
        raise ValueError(f"affine must have shape ({X.shape[0]}, 6), got {affine.shape}")
    ranks = tuple(elastic_basis(size, spec.elastic_sigma).shape[1] for size in spec.image_shape)
    if spec.elastic != (noise is not None) or (noise is not None and noise.shape != (X.shape[0], 2, *ranks)):
        raise ValueError("noise must be draw()'s elastic noise for the same spec and rows")


def _kernels() -> Any:
    try:
        import mlp_kernels
    except ImportError:
        return None
    return mlp_kernels


def check_images(spec: Augment | None, n_features: int) -> None:
    """A ValueError saying how to fix a spec whose image_shape does not match the data."""
    if spec is not None and spec.n_features != n_features:
        h, w = spec.image_shape
        raise ValueError(
            f"augment needs image rows: X has {n_features} features but image_shape {h}x{w} has "
            f"{spec.n_features} pixels; pass augment={{'image_shape': (height, width)}} or turn it off"
        )


# ---- in training: one batch per step, drawn from (epoch key, step) ----------------------------------
class BatchAugmenter:
    """The distortions of a training run. Each epoch draws one key from the trainer's generator; the
    batch of step s takes its numbers from `np.random.default_rng([key, s])`, so a batch can be made
    ahead (in another thread) and a resumed or pickled run draws the same ones. Over MPI every rank
    draws the whole global batch's numbers and keeps its rows, so the ranks augment exactly what one
    process would."""

    def __init__(self, spec: Augment) -> None:
        self.spec = spec

    def params(
        self, key: int, step: int, batch_rows: int, part: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(affine, noise) for step `step` of an epoch with `key`: batch_rows rows, cut to the
        half-open row range `part` (relative to the batch) when given."""
        affine, noise = draw(self.spec, np.random.default_rng([key, step]), batch_rows)
        if part is not None:
            affine = affine[part[0] : part[1]]
            noise = None if noise is None else noise[part[0] : part[1]]
        return affine, noise

    def batch(
        self,
        X_batch: Array,
        key: int,
        step: int,
        batch_rows: int,
        part: tuple[int, int] | None = None,
        *,
        xp: Namespace | None = None,
    ) -> Array:
        """The augmented batch (generic engines): a new array in X_batch's namespace."""
        affine, noise = self.params(key, step, batch_rows, part)
        return apply(X_batch, affine, noise, self.spec, xp=xp)


class Prefetcher(Generic[T]):
    """Runs make(step) for steps 0..count-1 one step ahead in a single background thread: while the
    caller trains on step s, step s+1 is made. `make` must write into a buffer that the caller no
    longer reads (two alternating buffers are enough). Iterating yields make's results in order;
    an exception in make is raised in the caller."""

    def __init__(self, make: Callable[[int], T], count: int, *, background: bool = True) -> None:
        self.make, self.count, self.background = make, count, background

    def __iter__(self) -> abc.Generator[T, None, None]:
        if not self.background or self.count <= 1:
            for step in range(self.count):
                yield self.make(step)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlp-augment") as pool:
            future = pool.submit(self.make, 0)
            try:
                for step in range(self.count):
                    result = future.result()
                    if step + 1 < self.count:
                        future = pool.submit(self.make, step + 1)
                    yield result
            finally:
                future.cancel()
