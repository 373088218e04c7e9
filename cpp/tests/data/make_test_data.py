"""Regenerate the small fixtures of cpp/tests/test_units.cpp (run from anywhere with NumPy):

    python cpp/tests/data/make_test_data.py

gzip files exercising each DEFLATE block type, and .npz archives written by NumPy itself (named *.bin
because the repository ignores *.npz outside tests/data). Deterministic: mtime 0, fixed content.
"""

import io
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def text(n):
    """Deterministic, compressible but varied bytes (so zlib picks dynamic Huffman blocks)."""
    words = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"zeta", b"eta", b"theta", b"\x00\xff", b"\n"]
    out, state = bytearray(), 12345
    while len(out) < n:
        state = (state * 1103515245 + 12345) % (1 << 31)
        out += words[state % len(words)] + bytes([32 + state % 50])
    return bytes(out[:n])


def gz(data, level=9, strategy=zlib.Z_DEFAULT_STRATEGY):
    c = zlib.compressobj(level, zlib.DEFLATED, 31, 9, strategy)  # wbits 31: gzip wrapper
    blob = c.compress(data) + c.flush()
    return blob[:4] + b"\0\0\0\0" + blob[8:]  # mtime 0 (zlib already writes 0; be explicit)


def tiny_images(n, seed):
    """n 8x8 uint8 images of 3 classes (a bright band of rows per class, plus noise)."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 3).astype(np.uint8)
    X = rng.integers(0, 60, size=(n, 8, 8))
    for k in range(3):
        X[y == k, 2 * k + 1 : 2 * k + 4, :] += 150
    return X.astype(np.uint8), y


def write_mlpd(path, X, y):
    header = b"MLPD" + np.array([1, len(X), X.shape[1], X.shape[2]], dtype="<u4").tobytes()
    path.write_bytes(header + X.tobytes() + y.tobytes())


def write_values(path):
    """tiny_values.bin: an .npz (named .bin, see above) of real-valued targets for `mlp-cpp train
    --data FILE.npz`: X_train (240, 4), y_train (240, 2), X_test (60, 4), y_test (60, 2), float64,
    two smooth functions of the inputs (cli_test.cmake copies it to a .npz name)."""
    rng = np.random.default_rng(7)
    X = rng.uniform(-1, 1, size=(300, 4))
    Y = np.stack([np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2], 0.5 * X[:, 3] ** 2 - X[:, 0]], axis=1)
    buffer = io.BytesIO()
    np.savez(buffer, X_train=X[:240], y_train=Y[:240], X_test=X[240:], y_test=Y[240:])
    path.write_bytes(buffer.getvalue())


def main():
    write_values(HERE / "tiny_values.bin")
    tiny = HERE / "tiny"
    tiny.mkdir(exist_ok=True)
    write_mlpd(tiny / "train.mlpd", *tiny_images(300, 1))
    write_mlpd(tiny / "test.mlpd", *tiny_images(90, 2))

    data = text(20000)
    (HERE / "plain.bin").write_bytes(data)
    (HERE / "dynamic.gz").write_bytes(gz(data, 9))
    (HERE / "fixed.gz").write_bytes(gz(data[:3000], 9, zlib.Z_FIXED))
    (HERE / "stored.gz").write_bytes(gz(data[:3000], 0))
    (HERE / "multi.gz").write_bytes(gz(data[:10000], 6) + gz(data[10000:], 1))  # two members
    good = gz(data, 9)
    (HERE / "truncated.gz").write_bytes(good[: len(good) // 2])
    bad = bytearray(good)
    bad[-8] ^= 0xFF  # CRC-32 field
    (HERE / "badcrc.gz").write_bytes(bytes(bad))

    W = np.arange(12, dtype=np.float32).reshape(3, 4) / 8
    b = np.array([0.5, -1.0, 2.0, 1e-3], dtype=np.float64)
    meta = np.frombuffer(b'{"format": "mlp-model", "format_version": 1}', dtype=np.uint8)
    F = np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))
    for name, saver in (("numpy_savez.bin", np.savez), ("numpy_savez_compressed.bin", np.savez_compressed)):
        buffer = io.BytesIO()
        saver(buffer, W=W, b=b, metadata=meta, F=F)
        (HERE / name).write_bytes(buffer.getvalue())


if __name__ == "__main__":
    main()
