"""Image augmentation in one pass per image: row gather, affine map plus displacement, bilinear sampling.

The generic array-API version is ``mlp.augment.apply_generic``; this kernel computes the same
numbers in the same order (up to the rounding of its summation order), for NumPy on the CPU.
Images are rows of X, row-major (height, width); pixels outside the image read as 0.  The caller
checks shapes and dtypes; compiled ``nogil`` so a training loop can run it in a background thread.
"""
import math

from ._config import jit


@jit
def augment_rows(X, rows, affine, field, height, width, out):
    """out[b] = X[rows[b]] distorted: pixel (x, y) of out reads X at
    (a0 x + a1 y + a2 + dx[y, x], a3 x + a4 y + a5 + dy[y, x]), bilinear, 0 outside.

    X (N, H*W) float32/float64; rows int64 (B,); affine float64 (B, 6); field (B, 2, H, W) of X's
    dtype, the displacements dx = field[b, 0], dy = field[b, 1] in pixels (or (0, 2, H, W): none);
    out (B, H*W) of X's dtype.
    """
    T = X.dtype.type
    elastic = field.shape[0] > 0
    low_x, high_x = T(-2.0), T(width + 1)
    low_y, high_y = T(-2.0), T(height + 1)
    one, zero = T(1), T(0)
    for b in range(rows.shape[0]):
        r = rows[b]
        a0, a1, a2 = T(affine[b, 0]), T(affine[b, 1]), T(affine[b, 2])
        a3, a4, a5 = T(affine[b, 3]), T(affine[b, 4]), T(affine[b, 5])
        for i in range(height):
            yf = T(i)
            for j in range(width):
                xf = T(j)
                sx = a0 * xf + a1 * yf + a2
                sy = a3 * xf + a4 * yf + a5
                if elastic:
                    sx += field[b, 0, i, j]
                    sy += field[b, 1, i, j]
                sx = min(max(sx, low_x), high_x)
                sy = min(max(sy, low_y), high_y)
                x0f, y0f = math.floor(sx), math.floor(sy)
                fx, fy = sx - T(x0f), sy - T(y0f)
                x0, y0 = int(x0f), int(y0f)
                v = zero
                for cy in range(2):
                    yi = y0 + cy
                    if yi < 0 or yi >= height:
                        continue
                    wy = fy if cy == 1 else one - fy
                    for cx in range(2):
                        xi = x0 + cx
                        if xi < 0 or xi >= width:
                            continue
                        wx = fx if cx == 1 else one - fx
                        v += wy * wx * X[r, yi * width + xi]
                out[b, i * width + j] = v
