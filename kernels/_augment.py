"""Image augmentation in one pass per image: row gather, elastic field, affine map, bilinear sampling.

The generic array-API version is ``mlp.augment.apply_generic``; this kernel computes the same
numbers in the same order (up to the rounding of its summation order), for NumPy on the CPU.
Images are rows of X, row-major (height, width); pixels outside the image read as 0.  The caller
checks shapes and dtypes; compiled ``nogil`` so a training loop can run it in a background thread.
"""

import numpy as np

from ._config import jit


@jit
def _field(noise, basis_y, basis_x, alpha, tmp, out):
    """out = alpha * basis_y @ (noise @ basis_x.T): noise (r_y, r_x), basis_y (H, r_y), basis_x (W, r_x),
    tmp (r_y, W) scratch, out (H, W); the inner loops run along W (vectorised)."""
    rank_y, rank_x = noise.shape
    height, width = out.shape
    T = out.dtype.type
    for k in range(rank_y):
        for j in range(width):
            s = T(0)
            for m in range(rank_x):
                s += T(noise[k, m]) * basis_x[j, m]
            tmp[k, j] = s
    for i in range(height):
        for j in range(width):
            out[i, j] = T(0)
        for k in range(rank_y):
            g = basis_y[i, k]
            for j in range(width):
                out[i, j] += g * tmp[k, j]
        for j in range(width):
            out[i, j] *= alpha


@jit
def augment_rows(X, rows, affine, noise, basis_y, basis_x, alpha, height, width, out):
    """out[b] = X[rows[b]] distorted: pixel (x, y) of out reads X at
    (a0 x + a1 y + a2 + dx[y, x], a3 x + a4 y + a5 + dy[y, x]), bilinear, 0 outside.

    X (N, H*W) float32/float64; rows int64 (B,); affine float64 (B, 6); noise float32 (B, 2, r_y, r_x)
    (or (0, 2, r_y, r_x): no displacement); basis_y (H, r_y), basis_x (W, r_x) of X's dtype; the
    displacement (dx, dy) = alpha * basis_y @ noise[b, c] @ basis_x.T for c = 0, 1; out (B, H*W).
    """
    T = X.dtype.type
    elastic = noise.shape[0] > 0  # without: dx = dy = 0
    tmp = np.empty((noise.shape[2], width), dtype=X.dtype)
    dx = np.zeros((height, width), dtype=X.dtype)
    dy = np.zeros((height, width), dtype=X.dtype)
    a = T(alpha)
    low_x, high_x = T(-2.0), T(width + 1)
    low_y, high_y = T(-2.0), T(height + 1)
    one, zero = T(1), T(0)
    # one row of output at a time: first the source points, weights and indices (branch-free, so the
    # compiler vectorises it), then the four reads per pixel
    w00 = np.empty(width, dtype=X.dtype)
    w01, w10, w11 = np.empty_like(w00), np.empty_like(w00), np.empty_like(w00)
    i00 = np.empty(width, dtype=np.int64)
    i01, i10, i11 = np.empty_like(i00), np.empty_like(i00), np.empty_like(i00)
    for b in range(rows.shape[0]):
        r = rows[b]
        if elastic:
            _field(noise[b, 0], basis_y, basis_x, a, tmp, dx)
            _field(noise[b, 1], basis_y, basis_x, a, tmp, dy)
        a0, a1, a2 = T(affine[b, 0]), T(affine[b, 1]), T(affine[b, 2])
        a3, a4, a5 = T(affine[b, 3]), T(affine[b, 4]), T(affine[b, 5])
        for i in range(height):
            yf = T(i)
            for j in range(width):
                xf = T(j)
                sx = a0 * xf + a1 * yf + a2 + dx[i, j]
                sy = a3 * xf + a4 * yf + a5 + dy[i, j]
                sx = min(max(sx, low_x), high_x)
                sy = min(max(sy, low_y), high_y)
                x0, y0 = int(sx + T(2)) - 2, int(sy + T(2)) - 2  # floor: sx + 2 >= 0 truncates down
                fx, fy = sx - T(x0), sy - T(y0)
                # weight 0 outside the image; indices clamped so that every read is inside
                wx0 = one - fx if 0 <= x0 < width else zero
                wx1 = fx if -1 <= x0 < width - 1 else zero
                wy0 = one - fy if 0 <= y0 < height else zero
                wy1 = fy if -1 <= y0 < height - 1 else zero
                xa, xb = min(max(x0, 0), width - 1), min(max(x0 + 1, 0), width - 1)
                ya, yb = min(max(y0, 0), height - 1) * width, min(max(y0 + 1, 0), height - 1) * width
                w00[j], w01[j], w10[j], w11[j] = wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1
                i00[j], i01[j], i10[j], i11[j] = ya + xa, ya + xb, yb + xa, yb + xb
            base = i * width
            for j in range(width):
                out[b, base + j] = (
                    w00[j] * X[r, i00[j]]
                    + w01[j] * X[r, i01[j]]
                    + w10[j] * X[r, i10[j]]
                    + w11[j] * X[r, i11[j]]
                )
